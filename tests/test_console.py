"""What a person sees: the live line on a terminal, and ``trueup report`` printed like the run."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, write_bundle

ERASE = "\r\x1b[K"


def _slow_bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - command: slow
            run: [sleep, "2"]
          - file: {tmp_path}/after
        """}, runlist="app")


def _run_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; everything it wrote."""
    main, child = pty.openpty()
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "agent", *args], stdin=child, stdout=child,
                            stderr=child, env=full_env, cwd=str(REPO))
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def test_a_slow_resource_shows_a_live_line_on_a_terminal(tmp_path, env):
    text = _run_on_a_terminal(["run", str(_slow_bundle(tmp_path)), "--color", "never"], env)
    assert f"{ERASE}applying command:slow (1s)" in text  # drawn after a second, refreshed
    last_live = text.rindex("applying command:slow")
    done = text.index("command:slow  run sleep 2")
    assert last_live < text.rindex(ERASE, 0, done) < done  # erased before the result line
    assert "applying file:" not in text  # a fast resource gets none


def test_no_live_line_without_a_terminal(tmp_path, trueup):
    bundle = _slow_bundle(tmp_path)
    for out in (trueup("run", str(bundle)), trueup("run", str(bundle), "--json")):
        assert out.returncode == 0, out.stderr
        assert "applying" not in out.stdout + out.stderr
        assert "\x1b" not in out.stdout + out.stderr


def test_report_prints_the_run_lines_again(tmp_path, trueup):
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - file: {tmp_path}/motd
            content: "hi\\n"
            mode: "0640"
          - command: broken
            run: [/bin/sh, -c, 'echo boom >&2; exit 3']
          - file: {tmp_path}/needs-broken
            requires: [command:broken]
          - file: {tmp_path}/quiet
        """}, runlist="app")
    (tmp_path / "quiet").write_text("")
    run = trueup("run", str(bundle))
    assert run.returncode == 4
    report = trueup("report")
    assert report.returncode == 0, report.stderr
    heading, *lines, totals = report.stdout.splitlines()
    *resource_lines, summary = run.stdout.splitlines()
    assert lines == resource_lines  # the same Console formats both
    assert len(lines) == 3 and "exited with status 3: boom" in lines[1]
    assert heading.startswith("run ") and "(run)" in heading and heading.endswith("exit 4")
    assert totals.startswith("totals: 1 changed, 1 failed, 1 skipped, 1 unchanged (4 resources)")
    assert totals.split(": ", 1)[1] == summary.split(": ", 1)[1]
