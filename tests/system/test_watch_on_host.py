"""trueup watch on a booted host, as a systemd service runs it (Type=exec, KillMode=mixed):
drift repair of the owning resource and its notifications only, debounce, a fighting writer,
SIGHUP and coalesced triggers, SIGTERM in the middle of a run, and the release pointer
polled on moto.

One host serves the module (it shares the machine's network namespace, so the daemon in it
reaches the moto server on 127.0.0.1); every test starts its own daemon as a transient unit
with its own state dir and stops it at the end. Edits, writers and signals come from inside
the host, as an operator's would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from agenthost import TRUEUP, diagnosed_agent_host, main_start, write_recipe
from testhost import BootedHost

from tests.aws.conftest import BUCKET, ENV, SOURCE
from tests.helpers import write_bundle
from tests.watchd import wait_for

_wait = partial(wait_for, timeout=60.0, step=0.1)  # a host call per try: not too often

pytestmark = [pytest.mark.host, pytest.mark.slow]

UNIT = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"

# Every report in a state dir's history, oldest first, as one JSON list (one host call).
_READ_RUNS = """
import json, os, sys
folder = os.path.join(sys.argv[1], "reports", "history")
out = []
for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
    try:
        with open(os.path.join(folder, name)) as f:
            out.append(json.load(f))
    except (OSError, ValueError):
        pass
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def host(testhost_image: Path, local_repo: Path, trueup_wheel: Path,
         request) -> Iterator[BootedHost]:
    # the machine's network: moto is on its loopback
    yield from diagnosed_agent_host(testhost_image, local_repo, trueup_wheel, request,
                                    recipes=False, network="host", mask=("ssh.service",))


class Daemon:
    """``trueup watch`` as the transient unit ``NAME.service`` in the host."""

    def __init__(self, host: BootedHost, name: str, *args: str, env: dict[str, str] | None = None):
        self.host = host
        self.unit = f"{name}.service"
        self.state = f"/var/lib/{name}"
        setenv = [f"--setenv={k}={v}" for k, v in {
            "TRUEUP_STATE_DIR": self.state, "PYTHONUNBUFFERED": "1", **(env or {})}.items()]
        host.run(["systemd-run", f"--unit={name}", "--property=Type=exec",
                  "--property=KillMode=mixed", "--property=TimeoutStopSec=60", *setenv,
                  "--", TRUEUP, "watch", *args, "--splay", "0"])

    def runs(self, trigger: str | None = None) -> list[dict[str, Any]]:
        every = json.loads(self.host.run(["python3", "-c", _READ_RUNS, self.state]).stdout)
        return [r for r in every if trigger is None or r.get("trigger") == trigger]

    def journal(self) -> str:
        return self.host.run(["journalctl", "-u", self.unit, "--no-pager", "-o", "cat"]).stdout

    def signal(self, name: str) -> None:
        self.host.run(["systemctl", "kill", f"--signal={name}", "--kill-whom=main", self.unit])

    def show(self, *props: str) -> dict[str, str]:
        out = self.host.run(["systemctl", "show", *(f"-p{p}" for p in props), self.unit]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def cpu_ticks(self) -> int:
        """User + system CPU time of the daemon's process so far, in clock ticks."""
        pid = self.show("MainPID")["MainPID"]
        fields = self.host.read_file(f"/proc/{pid}/stat").decode().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def stop(self) -> int:
        """``systemctl stop`` (SIGTERM to the daemon); the exit code of its main process.

        A transient unit that ended well is unloaded at once, so this reads systemd's own
        journal lines: "Main process exited, code=exited, status=N/..." for a code other
        than 0 (or a signal), "Deactivated successfully." for 0.
        """
        self.host.run(["systemctl", "stop", self.unit], timeout=90)
        self.host.run(["journalctl", "--sync"])
        log = self.journal()
        for line in log.splitlines():
            if "Main process exited" in line:
                code = line.split("status=", 1)[1].split("/", 1)[0]
                return int(code) if "code=exited" in line else -1
        assert f"{self.unit}: Deactivated successfully." in log, log[-3000:]
        return 0

    def close(self) -> None:
        self.host.run(["systemctl", "stop", self.unit], check=False, timeout=90)
        self.host.run(["systemctl", "reset-failed", self.unit], check=False)


@pytest.fixture
def daemon(host: BootedHost, request) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Daemon:
        d = Daemon(host, f"trueup-watch-{request.node.name[5:40]}-{len(started)}".replace(
            "_", "-"), *args, env=env)
        started.append(d)
        return d

    yield start
    for d in started:
        if request.session.testsfailed:
            print(f"--- journal of {d.unit} ---\n{d.journal()[-4000:]}")
        d.close()


def _two_files(host: BootedHost, name: str, extra: list[dict[str, Any]] = ()) -> str:
    """A recipe managing two files under /srv/NAME; a change to a.conf notifies a command
    that appends to ``notes``. Returns the folder."""
    out = f"/srv/{name}"
    write_recipe(host, name, {"resources": [
        {"directory": out},
        {"file": f"{out}/a.conf", "content": "a\n", "notify": "command:a-changed run"},
        {"file": f"{out}/b.conf", "content": "b\n"},
        {"command": "a-changed", "run": ["/bin/sh", "-c", f"echo notified >> {out}/notes"],
         "refresh_only": True},
        *extra,
    ]})
    return out


def _ran(report: dict[str, Any]) -> dict[str, str]:
    return {r["resource"]: r["status"] for r in report["resources"]}


def _mtime(host: BootedHost, path: str) -> str:
    return host.run(["stat", "-c", "%y", path]).stdout


def test_a_hand_edit_is_restored_by_its_resource_and_its_notifications_only(
        host: BootedHost, daemon) -> None:
    write_recipe(host, "app", {"resources": [
        {"directory": "/etc/demo"},
        {"file": "/etc/systemd/system/demo.service", "content": UNIT},
        {"file": "/etc/demo/a.conf", "content": "a\n", "notify": "service:demo restart"},
        {"file": "/etc/demo/b.conf", "content": "b\n"},
        {"service": "demo", "state": "running", "enabled": True},
    ]})
    d = daemon("/srv/recipes", "--runlist", "app")
    _wait(lambda: d.runs("start"))
    started = main_start(host, "demo.service")
    other = _mtime(host, "/etc/demo/b.conf")
    time.sleep(1)

    host.write_file("/etc/demo/a.conf", "edited by hand\n")
    _wait(lambda: host.read_file("/etc/demo/a.conf") == b"a\n")
    (repair,) = _wait(lambda: d.runs("drift"))
    assert _ran(repair) == {"file:/etc/demo/a.conf": "changed", "service:demo": "changed"}
    assert repair["repair"] == ["file:/etc/demo/a.conf"]
    assert main_start(host, "demo.service") != started  # restarted by the notification
    assert _mtime(host, "/etc/demo/b.conf") == other
    time.sleep(1)
    assert len(d.runs("drift")) == 1  # its own repair write was no new event
    assert d.stop() == 0
    assert "trueup watch: stopped" in d.journal()


def test_a_hundred_edits_in_a_second_make_at_most_two_repairs(host: BootedHost, daemon) -> None:
    out = _two_files(host, "burst")
    d = daemon("/srv/recipes", "--runlist", "burst")
    _wait(lambda: d.runs("start"))
    time.sleep(0.5)
    edits = ("import time, sys\n"
             "start = time.monotonic()\n"
             "for i in range(100):\n"
             "    open(sys.argv[1], 'w').write(f'edit {i}\\n')\n"
             "    time.sleep(0.008)\n"
             "print(time.monotonic() - start)\n")
    took = float(host.run(["python3", "-c", edits, f"{out}/b.conf"]).stdout)
    assert took < 1.5, f"the 100 edits took {took:.2f} s inside the host"
    _wait(lambda: host.read_file(f"{out}/b.conf") == b"b\n")
    time.sleep(2)
    repairs = d.runs("drift")
    assert 1 <= len(repairs) <= 2, [r["repair"] for r in repairs]
    assert all(r["repair"] == [f"file:{out}/b.conf"] for r in repairs)
    assert d.stop() == 0


def test_a_fighting_writer_is_backed_off_and_reported(host: BootedHost, daemon) -> None:
    out = _two_files(host, "fight")
    ident = f"file:{out}/b.conf"
    d = daemon("/srv/recipes", "--runlist", "fight", "--debounce", "0.05", "--fight-limit", "3")
    _wait(lambda: d.runs("start"))
    writer = "trueup-test-writer"
    host.run(["systemd-run", f"--unit={writer}", "--", "/bin/sh", "-c",
              f"while true; do echo \"the other writer's\" > {out}/b.conf; sleep 0.4; done"])
    try:
        _wait(lambda: f"{ident} is being fought over" in d.journal(), timeout=30)
        status = json.loads(host.read_file(f"{d.state}/watch.json"))
        assert status["fighting"][ident]["backoff_s"] == 60
        repairs = len(d.runs("drift"))
        assert repairs == 3  # the 4th repair in a minute was refused: backed off
        time.sleep(2.5)  # the writer goes on; the daemon leaves it alone (no busy loop)
        assert len(d.runs("drift")) == repairs
        assert host.read_file(f"{out}/b.conf") == b"the other writer's\n"
        ticks = d.cpu_ticks()
        time.sleep(2)
        assert d.cpu_ticks() - ticks < 50  # under a quarter of a CPU while the writer goes on
    finally:
        host.run(["systemctl", "stop", writer], check=False)
    assert d.stop() == 0


def test_sighup_runs_once_and_triggers_during_a_run_coalesce(host: BootedHost, daemon) -> None:
    out = _two_files(host, "hup", [
        {"command": "slow", "run": ["/bin/sh", "-c", "echo x >> /srv/hup/began; sleep 1.5"]}])
    d = daemon("/srv/recipes", "--runlist", "hup")
    _wait(lambda: d.runs("start"))
    d.signal("HUP")
    _wait(lambda: d.runs("SIGHUP"))
    time.sleep(2.5)
    assert len(d.runs()) == 2  # the start, and one run for the SIGHUP
    d.signal("HUP")
    _wait(lambda: host.read_file(f"{out}/began").count(b"x") == 3)  # the 3rd run is in `slow`
    for _ in range(3):
        d.signal("HUP")
        time.sleep(0.05)
    _wait(lambda: len(d.runs()) == 4)
    time.sleep(3)
    assert [r["trigger"] for r in d.runs()] == ["start", "SIGHUP", "SIGHUP", "SIGHUP"]
    assert d.stop() == 0


def test_sigterm_during_a_run_finishes_the_resource_keeps_the_report_and_exits_0(
        host: BootedHost, daemon) -> None:
    _two_files(host, "term", [
        {"command": "slow", "run": ["/bin/sh", "-c", "echo started > /srv/term/slow; sleep 2; "
                                                     "echo done >> /srv/term/slow"]},
        {"file": "/srv/term/after", "content": "x\n"}])
    d = daemon("/srv/recipes", "--runlist", "term")
    _wait(lambda: host.run(["test", "-e", "/srv/term/slow"], check=False).returncode == 0)
    assert d.stop() == 0  # systemctl stop: SIGTERM while `slow` runs
    assert host.read_file("/srv/term/slow") == b"started\ndone\n"  # the command finished
    assert host.run(["test", "-e", "/srv/term/after"], check=False).returncode == 1
    (report,) = d.runs()
    assert report["interrupted"] == "SIGTERM"
    assert "file:/srv/term/after" in report["not_run"]
    assert _ran(report)["command:slow"] == "changed"
    assert json.loads(host.read_file(f"{d.state}/reports/last_run.json")) == report


@pytest.mark.aws
def test_a_new_release_pointer_is_converged_within_one_poll(host: BootedHost, daemon, aws,
                                                            trueup, tmp_path: Path) -> None:
    aws.client("s3").create_bucket(Bucket=BUCKET)

    def publish(version: str) -> None:
        bundle = write_bundle(tmp_path / version, {"app": f"""
            resources:
              - file: /srv/release
                content: "{version}\\n"
            """}, runlist="app")
        done = trueup("publish", str(bundle), "--bucket", BUCKET, "--env", ENV,
                      "--bundle-version", version)
        assert done.returncode == 0, done.stdout + done.stderr

    publish("v1")
    d = daemon(SOURCE, "--poll", "2", env=aws.env())
    _wait(lambda: d.runs("start"))
    assert host.read_file("/srv/release") == b"v1\n"
    time.sleep(2.5)  # the daemon has read the pointer at least once since
    aws.clear_requests()
    publish("v2")
    (run,) = _wait(lambda: d.runs("pointer"), step=0.05)
    assert host.read_file("/srv/release") == b"v2\n"
    assert run["exit_code"] == 0
    # converged at the first poll after the publish: between the pointer's PutParameter and
    # the fetch of the new bundle, exactly one GetParameter (a missed poll would add one)
    ops = [r.operation for r in aws.requests()]
    put = len(ops) - 1 - ops[::-1].index("PutParameter")
    fetch = ops.index("GetObject", put)
    assert ops[put + 1:fetch].count("GetParameter") == 1, ops[put:]
    assert "moved to v2" in d.journal()

    aws.clear_requests()
    time.sleep(5)
    idle = aws.requests()
    assert idle, "the daemon stopped polling"
    assert {r.operation for r in idle} == {"GetParameter"}  # no walk of the tree, no S3
    assert len(idle) <= 3  # one per 2 s poll period
    assert len(d.runs()) == 2
    assert d.stop() == 0
