"""trueup watch: drift repair of the owning resources only, debounce, fighting writers,
SIGHUP / SIGTERM, coalesced triggers, and the run lock shared with every other entry point.
Real inotify, real processes; the files live in the test's scratch folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def test_a_hand_edit_is_restored_by_its_resource_and_its_notifications_only(watch, tmp_path):
    bundle, out = _bundle(tmp_path)
    w = watch(str(bundle))
    wait_for(lambda: w.runs("start"))
    wait_for(lambda: (out / "notes").exists())
    other = os.stat(out / "b.conf").st_mtime_ns
    time.sleep(0.3)  # the first run's own writes have been seen (and ignored)
    (out / "a.conf").write_text("edited by hand\n")
    wait_for(lambda: (out / "a.conf").read_text() == "a\n")
    (repair,) = wait_for(lambda: w.runs("drift"))
    ran = {r["resource"]: r["status"] for r in repair["resources"]}
    assert ran == {f"file:{out}/a.conf": "changed", "command:a-changed": "changed"}
    assert repair["repair"] == [f"file:{out}/a.conf"]
    assert (out / "notes").read_text() == "notified\nnotified\n"
    assert os.stat(out / "b.conf").st_mtime_ns == other
    time.sleep(1)
    assert len(w.runs("drift")) == 1  # its own repair write was no new event
    assert w.stop() == 0


def test_a_hundred_edits_in_a_second_make_at_most_two_repairs(watch, tmp_path):
    bundle, out = _bundle(tmp_path)
    w = watch(str(bundle))
    wait_for(lambda: w.runs("start"))
    time.sleep(0.3)
    for i in range(100):
        (out / "b.conf").write_text(f"edit {i}\n")
        time.sleep(0.008)
    wait_for(lambda: (out / "b.conf").read_text() == "b\n")
    time.sleep(1.5)
    repairs = w.runs("drift")
    assert 1 <= len(repairs) <= 2, [r["repair"] for r in repairs]
    assert w.stop() == 0


def test_a_fighting_writer_is_backed_off_and_reported(watch, tmp_path):
    bundle, out = _bundle(tmp_path)
    w = watch(str(bundle), "--debounce", "0.05", "--fight-limit", "3")
    wait_for(lambda: w.runs("start"))
    ident = f"file:{out}/b.conf"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "being fought over" not in w.output():
        (out / "b.conf").write_text("the other writer's\n")
        time.sleep(0.4)
    assert f"{ident} is being fought over" in w.output()
    status = json.loads((w.state / "watch.json").read_text())
    assert ident in status["fighting"] and status["fighting"][ident]["backoff_s"] == 60
    repairs = len(w.runs("drift"))
    for _ in range(5):  # backed off: no more repairs, no busy loop
        (out / "b.conf").write_text("the other writer's\n")
        time.sleep(0.3)
    assert len(w.runs("drift")) == repairs == 3  # the 4th change in a minute: backed off
    assert (out / "b.conf").read_text() == "the other writer's\n"
    assert w.stop() == 0


def test_sighup_runs_once_and_triggers_during_a_run_coalesce(watch, tmp_path):
    began = tmp_path / "began"
    bundle, out = _bundle(tmp_path, f"""
          - command: slow
            run: [/bin/sh, -c, "echo x >> {began}; sleep 1.5"]
        """)
    w = watch(str(bundle))
    wait_for(lambda: w.runs("start"), timeout=60)
    w.signal(signal.SIGHUP)
    wait_for(lambda: w.runs("SIGHUP"), timeout=60)
    time.sleep(2.5)
    assert len(w.runs()) == 2  # start, and one run for the SIGHUP
    w.signal(signal.SIGHUP)
    wait_for(lambda: began.read_text().count("x") == 3)  # the third run is in its command
    for _ in range(3):
        w.signal(signal.SIGHUP)
        time.sleep(0.05)
    wait_for(lambda: len(w.runs()) == 4, timeout=60)
    time.sleep(3)
    assert len(w.runs()) == 4  # three SIGHUPs during a run: exactly one more run
    assert w.stop() == 0


def test_sigterm_lets_the_resource_finish_keeps_the_report_and_exits_0(watch, tmp_path):
    slow = tmp_path / "slow"
    bundle, out = _bundle(tmp_path, f"""
          - command: slow
            run: [/bin/sh, -c, "echo started > {slow}; sleep 2; echo done >> {slow}"]
          - file: {tmp_path}/after
            content: "x\\n"
        """)
    w = watch(str(bundle))
    wait_for(lambda: (tmp_path / "slow").exists(), timeout=60)
    w.signal(signal.SIGTERM)
    assert w.proc.wait(30) == 0
    assert (tmp_path / "slow").read_text() == "started\ndone\n"  # the command finished
    assert not (tmp_path / "after").exists()
    (report,) = w.runs()
    assert report["interrupted"] == "SIGTERM"
    assert f"file:{tmp_path}/after" in report["not_run"]
    assert {r["resource"]: r["status"] for r in report["resources"]}["command:slow"] == "changed"


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
