"""trueup ends without the interpreter's teardown (agent.cli.exit_now), and loses nothing.

The console script and ``python -m agent`` leave through ``os._exit`` once stdout and
stderr are flushed and the ``atexit`` handlers have run. These tests read the output
through a pipe, and through a pipe that is full (the reader waits before reading, so
trueup blocks on its last writes): every byte arrives, and the exit code is the run's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import REPO, write_bundle

PIPE_BUFFER = 64 * 1024  # Linux's default pipe capacity


def many_files(tmp_path: Path, count: int) -> tuple[Path, Path]:
    target = tmp_path / "target"
    lines = [f'  - directory: "{target}"\n']
    lines += [f'  - file: "{target}/file-with-a-long-name-{i:04d}"\n    content: "{i}\\n"\n'
              for i in range(count)]
    bundle = write_bundle(tmp_path / "bundle", {"r": "resources:\n" + "".join(lines)},
                          runlist="r")
    return bundle, target


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agent", *args], cwd=str(REPO),
                            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def last_report(env: dict[str, str]) -> dict:
    return json.loads((Path(env["TRUEUP_STATE_DIR"]) / "reports/last_run.json").read_text())


def test_json_report_through_a_full_pipe_arrives_whole(tmp_path, env):
    bundle, target = many_files(tmp_path, 600)
    proc = start(env, "run", str(bundle), "--json", "--detailed-exitcodes")
    time.sleep(1.5)  # nobody reads: the report fills the pipe and trueup waits on it
    out, err = proc.communicate(timeout=120)
    assert len(out) > PIPE_BUFFER  # the pipe was full at some point
    assert err == b""
    assert proc.returncode == 2
    assert json.loads(out) == last_report(env)
    assert len(list(target.iterdir())) == 600


def test_console_output_through_a_full_pipe_ends_with_the_summary(tmp_path, env):
    bundle, _ = many_files(tmp_path, 600)
    proc = start(env, "run", str(bundle))
    time.sleep(1.5)
    out, err = proc.communicate(timeout=120)
    lines = out.decode().splitlines()
    assert len(out) > PIPE_BUFFER
    assert proc.returncode == 0 and err == b""
    assert len(lines) == 602  # one line per resource, then the summary
    assert lines[-1].startswith("trueup run: 601 changed, 0 failed, 0 unchanged")


def test_no_op_through_a_pipe_says_everything(tmp_path, env):
    bundle, _ = many_files(tmp_path, 20)
    for expected in ("21 changed", "0 changed"):
        proc = start(env, "run", str(bundle))
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and err == b""
        assert out.decode().splitlines()[-1].startswith(f"trueup run: {expected}")


def test_an_error_through_a_pipe_keeps_exit_code_1_and_its_line(tmp_path, env):
    proc = start(env, "run", str(tmp_path / "missing"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and out == b""
    assert err.decode().startswith("trueup: error: ") and err.decode().count("\n") == 1


def test_exit_now_flushes_and_runs_the_exit_handlers(tmp_path):
    said = tmp_path / "said"
    code = ("import atexit, sys\n"
            "from agent.cli import exit_now\n"
            f"atexit.register(lambda: open({str(said)!r}, 'w').write('bye'))\n"
            "sys.stdout.write('unflushed out')\n"
            "sys.stderr.write('unflushed err')\n"
            "exit_now(3)\n"
            "print('never')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 3
    assert done.stdout == b"unflushed out" and done.stderr == b"unflushed err"
    assert said.read_text() == "bye"


def test_exit_now_waits_for_other_threads_like_the_interpreter(tmp_path):
    done_file = tmp_path / "thread-done"
    code = ("import threading, time\n"
            "from agent.cli import exit_now\n"
            "def work():\n"
            "    time.sleep(0.5)\n"
            f"    open({str(done_file)!r}, 'w').write('done')\n"
            "threading.Thread(target=work).start()\n"
            "exit_now(5)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 5
    assert done_file.read_text() == "done"
