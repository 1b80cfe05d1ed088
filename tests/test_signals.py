"""SIGTERM and SIGINT stop a run cleanly: the running command's whole process group
goes, a report marked interrupted is kept, the lock is freed, and the exit code is
128 + the signal. The next run converges the rest."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.aws.secrets import SecretStore
from agent.compile.loader import Bundle
from agent.compile.prepare import Options, prepare
from agent.config import Config
from agent.engine.backups import Backups
from agent.engine.interrupt import interrupted_fields, interrupted_line
from agent.engine.runner import Runner
from agent.errors import Interrupted, ResourceError
from agent.host.facts import Facts
from agent.host.system import Completed, System
from tests.helpers import REPO, write_bundle

# a command whose child (the sleep) writes nothing and lives for a minute
SLOW = """\
    resources:
      - file: "{{ attributes.root }}/first"
        content: "1\\n"
      - command: slow
        run: [/bin/sh, -c, 'sleep {{ attributes.nap }} & echo $! > "$0"; wait', "{pidfile}"]
      - file: "{{ attributes.root }}/second"
        content: "2\\n"
      - file: "{{ attributes.root }}/third"
        content: "3\\n"
        requires: ["file:{{ attributes.root }}/second"]
"""


def wait_for_pid(pidfile: Path, proc: subprocess.Popen | None = None,
                 timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(pidfile.read_text())
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"trueup ended first: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{pidfile} never appeared")


def group_gone(pgid: int, timeout: float = 10) -> bool:
    """Whether no live process of group ``pgid`` is left."""
    return _gone(lambda: any(group == pgid for _, group in _live_processes()), timeout)


def process_gone(pid: int, timeout: float = 10) -> bool:
    """Whether process ``pid`` has ended."""
    return _gone(lambda: any(p == pid for p, _ in _live_processes()), timeout)


def _live_processes() -> list[tuple[int, int]]:
    """(pid, process group) of every process that has not ended. An ended child of an
    ended parent stays a zombie until PID 1 reaps it, and some inits reap only every
    few seconds; a zombie runs nothing, so it counts as gone."""
    live = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rpartition(")")[2].split()
                if fields[0] not in ("Z", "X"):  # state, then ppid, then pgrp
                    live.append((int(entry), int(fields[2])))
    return live


def _gone(running, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running():
            return True
        time.sleep(0.05)
    return False


def kill_quietly(pid: int) -> None:
    """Cleanup: one process by its pid, never a group this test might belong to."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_a_timed_out_command_takes_its_whole_process_group_with_it(tmp_path):
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    pid = None
    try:
        with pytest.raises(ResourceError, match=r"^/bin/sh timed out after 0\.5s$"):
            System().run(["/bin/sh", "-c", 'sleep 30 & echo $! > "$0"; wait', str(pidfile)],
                         timeout=0.5)
        pid = int(pidfile.read_text())
        assert time.monotonic() - started < 10, "waited for the orphaned sleep"
        assert process_gone(pid), "the command's child outlived the timeout"
    finally:
        if pid is None and pidfile.exists():
            pid = int(pidfile.read_text())
        if pid is not None:
            kill_quietly(pid)


def test_commands_run_in_their_own_process_group(tmp_path):
    done = System().run(["/bin/sh", "-c", "ps -o pgid= -p $$; ps -o sid= -p $$"])
    pgid, sid = (int(x) for x in done.stdout.split())
    assert pgid != os.getpgrp() and pgid == sid  # a session of its own, led by the command


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_run_cleanly_and_the_next_run_converges_the_rest(
        tmp_path, env, trueup, signum, code):
    target, pidfile = tmp_path / "target", tmp_path / "sleep.pid"
    target.mkdir()
    bundle = write_bundle(tmp_path / "bundle", {"slow": SLOW.replace("{pidfile}", str(pidfile))},
                          runlist="slow", attributes=f"root: {target}\nnap: 60\n")
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", str(bundle),
                             "--detailed-exitcodes"], cwd=str(REPO), text=True,
                            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid = None
    try:
        pid = wait_for_pid(pidfile, proc)
        pgid = os.getpgid(pid)
        assert pgid != os.getpgrp(), "the command shares the test's process group"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == code, stdout + stderr
        assert group_gone(pgid), "the command's process group outlived the run"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid is not None:
            kill_quietly(pid)

    name = signal.Signals(signum).name
    assert "Traceback" not in stderr
    assert stderr.strip() == f"trueup: interrupted by {name}; 1 resource done, 3 not run"
    report = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "reports/last_run.json").read_text())
    assert report["interrupted"] == name and report["exit_code"] == code
    assert [r["resource"] for r in report["resources"]] == [f"file:{target}/first"]
    assert report["interrupted_during"] == "command:slow"
    assert report["not_run"] == ["command:slow", f"file:{target}/second", f"file:{target}/third"]
    assert not (target / "second").exists()
    shown = trueup("report")
    assert f"exit {code}\ninterrupted by {name} during command:slow; 3 resources not run\n" \
        in shown.stdout, shown.stdout

    # the lock is free (no --lock-timeout: a held lock would exit 75 at once)
    again = trueup("run", str(bundle), "-a", "nap=0", "--detailed-exitcodes", timeout=60)
    assert again.returncode == 2, again.stdout + again.stderr
    assert (target / "second").read_text() == "2\n" and (target / "third").read_text() == "3\n"
    last = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "reports/last_run.json").read_text())
    assert "interrupted" not in last and last["exit_code"] == 2


def test_a_signal_while_a_guard_runs_stops_the_guard_too(tmp_path, env):
    target, pidfile = tmp_path / "target", tmp_path / "guard.pid"
    recipe = f"""\
        resources:
          - file: "{target}"
            content: "guarded\\n"
            only_if: [/bin/sh, -c, 'sleep 60 & echo $! > "$0"; wait', "{pidfile}"]
    """
    bundle = write_bundle(tmp_path / "bundle", {"g": recipe}, runlist="g")
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", str(bundle), "--json"],
                            cwd=str(REPO), env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = None
    try:
        pid = wait_for_pid(pidfile, proc)
        pgid = os.getpgid(pid)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 143, stderr
        assert group_gone(pgid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid is not None:
            kill_quietly(pid)
    assert stderr.strip() == "trueup: interrupted by SIGTERM; 0 resources done, 1 not run"
    # --json still prints the report, marked interrupted
    assert json.loads(stdout)["interrupted"] == "SIGTERM"
    assert not target.exists()


class SignalDuring(System):
    """A host where running ``argv[0] == name`` is cut short by a signal."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def run(self, argv, **kwargs) -> Completed:
        if argv[0] == self.name:
            raise Interrupted(signal.SIGTERM)
        return super().run(argv, **kwargs)


def test_the_runner_knows_what_an_interruption_left_undone(tmp_path):
    target = tmp_path / "target"
    resources = [
        {"file": f"{target}/a", "content": "a\n", "notify": "command:late run"},
        {"command": "late", "run": ["/bin/true"], "refresh_only": True},
        {"command": "mid", "run": ["/interrupted/here"]},
        {"file": f"{target}/b", "content": "b\n"},
    ]
    bundle = tmp_path / "bundle"
    (bundle / "r").mkdir(parents=True)
    (bundle / "r" / "recipe.yml").write_text(json.dumps({"resources": resources}))
    target.mkdir()
    system = SignalDuring("/interrupted/here")
    prepared = prepare(Options(source=str(bundle), runlist="r"),
                       Config(state_dir=str(tmp_path / "state")), Bundle(str(bundle)), system,
                       Backups(str(tmp_path / "backups")), Facts(), SecretStore())
    runner = Runner(prepared.catalog, system)
    with pytest.raises(Interrupted) as caught:
        runner.run()
    assert [r.ident for r in runner.finished()] == [f"file:{target}/a", "command:late"]
    fields = interrupted_fields(caught.value, runner)
    assert fields == {"interrupted": "SIGTERM", "exit_code": 143,
                      "not_run": ["command:mid", f"file:{target}/b"],
                      "interrupted_during": "command:mid",
                      "notifications_not_run": ["command:late run"]}
    report = {**fields, "totals": {"total": 2}}
    assert interrupted_line(report) == ("trueup: interrupted by SIGTERM; 2 resources done, "
                                        "2 not run, 1 notification not sent")
