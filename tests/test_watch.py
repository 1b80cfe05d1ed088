"""trueup watch on this machine: the run lock shared with every other entry point, option
errors, ``--reboot allow``, and watchdog kept off every other command. Drift repair,
debounce, fighting writers, signals and the pointer poll run on a booted host
(tests/system/test_watch_on_host.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ssmdoc
from tests.helpers import REPO, write_bundle
from tests.watchd import Watch, wait_for

pytestmark = pytest.mark.slow


def _bundle(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    """Two managed files in a folder the first run creates (watched once it exists)."""
    out = tmp_path / "out" / "conf.d"
    out.parent.mkdir()
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - directory: {out}
          - file: {out}/a.conf
            content: "a\\n"
            notify: command:a-changed run
          - file: {out}/b.conf
            content: "b\\n"
          - command: a-changed
            run: [/bin/sh, -c, "echo notified >> {out}/notes"]
            refresh_only: true
        {extra}"""}, runlist="app")
    return bundle, out


@pytest.fixture
def watch(env, tmp_path):
    started: list[Watch] = []

    def start(*args: str) -> Watch:
        w = Watch(env, *args, "--splay", "0", log=tmp_path / f"watch{len(started)}.log")
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def test_daemon_manual_run_and_ssm_script_never_overlap(watch, tmp_path, env):
    """Three entry points started together: the lock holders never overlap, every one ran."""
    log = tmp_path / "holders"
    bundle, out = _bundle(tmp_path, f"""
          - command: hold
            run: [/bin/sh, -c, "echo start $$ >> {log}; sleep 1; echo end $$ >> {log}"]
        """)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "trueup").write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} "
                                    "-m agent \"$@\"\n")
    (bin_dir / "trueup").chmod(0o755)
    full = {**os.environ, **env, "PYTHONPATH": str(REPO),
            "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    script = ssmdoc.write_script(tmp_path / "ssm", Source=str(bundle))
    w = watch(str(bundle))
    manual = subprocess.Popen([sys.executable, "-m", "agent", "run", str(bundle),
                               "--lock-timeout", "120"], env=full, cwd=str(REPO),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ssm = subprocess.Popen(["sh", str(script)], env=full, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    assert manual.wait(180) == 0, manual.stderr.read()
    assert ssm.wait(180) == 0, ssm.stdout.read()
    wait_for(lambda: w.runs("start"), timeout=120)
    w.signal(signal.SIGHUP)
    wait_for(lambda: w.runs("SIGHUP"), timeout=120)
    assert w.stop() == 0
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len(lines) == 8  # 4 runs: manual, SSM, the daemon's start and its SIGHUP
    holders = set()
    for (first, pid1), (second, pid2) in zip(lines[::2], lines[1::2], strict=True):
        assert (first, second) == ("start", "end") and pid1 == pid2, lines  # never nested
        holders.add(pid1)
    assert len(holders) == 4


def test_a_noop_run_does_not_import_watchdog(tmp_path, env):
    bundle, _ = _bundle(tmp_path)
    code = ("import sys; from agent.cli import main; rc = main(['plan', sys.argv[1]]); "
            "sys.exit(90 if 'watchdog' in sys.modules else rc)")
    done = subprocess.run([sys.executable, "-c", code, str(bundle)], capture_output=True,
                          text=True, env={**os.environ, **env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--interval", "0"], "--interval and --poll must be more than 0"),
    (["--debounce", "nan"], "--debounce must be a finite number"),
    (["--fight-limit", "0"], "--fight-limit 1 or more"),
])
def test_bad_watch_options_are_one_error(trueup, tmp_path, args, message):
    done = trueup("watch", str(tmp_path), *args)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert message in line


def test_with_reboot_allow_the_daemon_reboots_after_a_run_that_asks(env, tmp_path):
    log = tmp_path / "systemctl.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    (bin_dir / "systemctl").chmod(0o755)
    flag = tmp_path / "reboot-required"
    flag.write_text("")
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - reboot: pending
            if_exists: {flag}
        """}, runlist="app")
    w = Watch({**env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, str(bundle), "--splay", "0",
              "--reboot", "allow", log=tmp_path / "watch.log")
    try:
        wait_for(lambda: log.exists() and log.read_text() == "reboot\n")
        (run,) = w.runs("start")
        assert run["exit_code"] == 194 and run["reboot"]["action"] == "reboot"
    finally:
        assert w.stop() == 0
