"""Output piped into a reader that stops early (``trueup kinds | head -1``): no traceback.

A command whose output is its product exits 141 (128 + SIGPIPE, what a program
killed by SIGPIPE reports); ``run`` and ``plan`` finish the converge, keep the
report and exit with the converge result, whatever happened to their console.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, write_bundle


def run_with_closed_stdout(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run trueup with stdout a pipe nobody reads any more; its exit code and stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "agent", *args], cwd=str(REPO),
                              env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def many_files(tmp_path: Path, count: int = 300) -> tuple[Path, Path]:
    """A bundle whose run prints far more than a pipe's buffer holds."""
    target = tmp_path / "target"
    lines = [f'  - directory: "{target}"\n']
    lines += [f'  - file: "{target}/f{i:03d}"\n    content: "{i}\\n"\n' for i in range(count)]
    bundle = write_bundle(tmp_path / "bundle", {"r": "resources:\n" + "".join(lines)},
                          runlist="r")
    return bundle, target


@pytest.mark.parametrize("args", [["kinds"], ["kinds", "--json"], ["kinds", "file"]],
                         ids=["kinds", "kinds --json", "kinds file"])
def test_output_command_into_a_closed_pipe_exits_141_quietly(env, args):
    code, stderr = run_with_closed_stdout(env, *args)
    assert stderr == ""
    assert code == 141


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]], ids=["--help", "run --help"])
def test_help_into_a_closed_pipe_is_quiet(env, args):
    # argparse drops a help text it cannot write, and exits 0 as usual
    assert run_with_closed_stdout(env, *args) == (0, "")


def test_report_into_a_closed_pipe_exits_141_quietly(tmp_path, env, trueup):
    bundle, _ = many_files(tmp_path, count=20)
    assert trueup("run", str(bundle)).returncode == 0
    for args in (["report"], ["report", "--json"]):
        code, stderr = run_with_closed_stdout(env, *args)
        assert (code, stderr) == (141, ""), args


@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["console", "json"])
def test_run_into_a_closed_pipe_converges_and_keeps_its_exit_code(tmp_path, env, extra):
    bundle, target = many_files(tmp_path)
    code, stderr = run_with_closed_stdout(env, "run", str(bundle), "--detailed-exitcodes",
                                          *extra)
    assert stderr == ""
    assert code == 2
    assert sorted(p.name for p in target.iterdir())[-1] == "f299"  # the whole run happened
    report = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "reports/last_run.json").read_text())
    assert report["exit_code"] == 2 and report["totals"]["changed"] == 301


def test_run_piped_into_head_finishes_quietly(tmp_path, env):
    bundle, target = many_files(tmp_path)
    done = subprocess.run(["/bin/sh", "-c", '"$0" -m agent run "$1" | head -1', sys.executable,
                           str(bundle)], cwd=str(REPO), capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.stderr == ""
    assert len(done.stdout.splitlines()) == 1
    assert len(list(target.iterdir())) == 300
    report = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "reports/last_run.json").read_text())
    assert report["totals"]["changed"] == 301


def test_kinds_piped_into_head_is_quiet(env):
    done = subprocess.run(["/bin/sh", "-c", '"$0" -m agent kinds | head -1', sys.executable],
                          cwd=str(REPO), capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.stderr == "" and len(done.stdout.splitlines()) == 1


def test_run_whose_stdout_and_stderr_are_gone_still_keeps_its_exit_code(tmp_path, env):
    bundle, target = many_files(tmp_path, count=5)
    reports = Path(env["TRUEUP_STATE_DIR"]) / "reports"
    reports.mkdir(parents=True)
    (reports / "history").write_text("a file: storing the report warns on stderr\n")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "agent", "run", str(bundle),
                               "--detailed-exitcodes"], cwd=str(REPO), timeout=120,
                              env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                              stdout=write_end, stderr=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 2
    assert len(list(target.iterdir())) == 5
