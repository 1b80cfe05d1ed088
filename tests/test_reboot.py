"""The reboot kind, exit 194 and the resume marker: what a run asked for and what the next
run makes of it (the real reboot under SSM is tests/system/test_ssm_document.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.engine import reboot as reboots
from tests.helpers import write_bundle


def _bundle(tmp_path: Path, action: str = "request", *, if_exists: str = "") -> Path:
    out = tmp_path / "out"
    guard = f"\n    if_exists: {if_exists}" if if_exists else ""
    return write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - directory: {out}
          - file: {out}/conf
            content: "new\\n"
            notify: [reboot:kernel {action}, command:after-conf run]
          - reboot: kernel
            reason: a new kernel{guard}
          - file: {out}/later
            content: "later\\n"
          - command: after-conf
            run: [/bin/sh, -c, "echo ran >> {out}/notified"]
            refresh_only: true
        """}, runlist="app")


def _report(done) -> dict:
    return json.loads(done.stdout)


def test_request_converges_everything_then_exits_194_with_a_marker(tmp_path, trueup, env):
    bundle = _bundle(tmp_path)
    done = trueup("run", str(bundle), "--json")
    assert done.returncode == 194, done.stderr
    report = _report(done)
    assert report["exit_code"] == 194
    assert report["reboot"] == {"resource": "reboot:kernel", "when": "end",
                                "reason": "a new kernel", "action": "exit 194"}
    assert (tmp_path / "out" / "later").read_text() == "later\n"
    assert (tmp_path / "out" / "notified").read_text() == "ran\n"  # delayed notification ran
    assert "reboot requested by reboot:kernel: a new kernel; exit 194" in done.stderr
    marker = json.loads((Path(env["TRUEUP_STATE_DIR"]) / reboots.MARKER).read_text())
    assert marker["run_id"] == report["run_id"]
    assert marker["boot_id"] == reboots.boot_id()
    assert (os.stat(Path(env["TRUEUP_STATE_DIR"]) / reboots.MARKER).st_mode & 0o777) == 0o600


def test_detailed_exitcodes_still_say_194(tmp_path, trueup):
    done = trueup("run", str(_bundle(tmp_path)), "--detailed-exitcodes")
    assert done.returncode == 194, done.stderr


def test_now_stops_the_run_after_the_notifier(tmp_path, trueup, env):
    done = trueup("run", str(_bundle(tmp_path, "now")), "--json")
    assert done.returncode == 194, done.stderr
    report = _report(done)
    assert report["reboot"]["when"] == "now"
    assert not (tmp_path / "out" / "later").exists()
    assert not (tmp_path / "out" / "notified").exists()
    assert f"file:{tmp_path}/out/later" in report["not_run"]
    assert report["notifications_not_run"] == ["command:after-conf run"]
    marker = reboots.read_marker(env["TRUEUP_STATE_DIR"])
    assert f"file:{tmp_path}/out/later" in marker["not_run"]


def test_a_run_in_the_same_boot_keeps_the_request_and_exits_194_again(tmp_path, trueup, env):
    bundle = _bundle(tmp_path)
    first = _report(trueup("run", str(bundle), "--json"))
    done = trueup("run", str(bundle), "--json")
    assert done.returncode == 194, done.stderr
    report = _report(done)
    assert report["totals"]["changed"] == 0
    assert report["reboot"]["pending_since"] == first["run_id"]
    assert "has not happened yet" in done.stderr
    assert "resumed" not in report
    assert reboots.read_marker(env["TRUEUP_STATE_DIR"]) is not None


def test_the_run_after_the_reboot_resumes_and_converges_what_is_left(tmp_path, trueup, env):
    bundle = _bundle(tmp_path, "now")
    first = _report(trueup("run", str(bundle), "--json"))
    state = Path(env["TRUEUP_STATE_DIR"])
    marker = json.loads((state / reboots.MARKER).read_text())
    marker["boot_id"] = "an-earlier-boot"  # as after a reboot: the boot id is a new one
    (state / reboots.MARKER).write_text(json.dumps(marker))

    done = trueup("run", str(bundle), "--json")
    assert done.returncode == 0, done.stderr
    report = _report(done)
    assert report["resumed"]["run_id"] == first["run_id"]
    assert report["resumed"]["resource"] == "reboot:kernel"
    assert f"resumed after the reboot that reboot:kernel asked for (run {first['run_id']})" \
        in done.stderr
    assert (tmp_path / "out" / "later").read_text() == "later\n"  # what was left
    assert "reboot" not in report
    assert not (state / reboots.MARKER).exists()
    again = trueup("run", str(bundle), "--json")
    assert again.returncode == 0 and "resumed" not in _report(again)


def test_noop_and_plan_never_ask_for_a_reboot(tmp_path, trueup, env):
    bundle = _bundle(tmp_path)
    for args in (("plan", str(bundle)), ("run", "--noop", str(bundle))):
        done = trueup(*args)
        assert done.returncode == 0, done.stderr
        assert "reboot:kernel" in done.stdout  # shown as what would happen
    assert reboots.read_marker(env["TRUEUP_STATE_DIR"]) is None


def test_if_exists_asks_only_while_the_file_is_there(tmp_path, trueup):
    flag = tmp_path / "reboot-required"
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - reboot: pending-upgrades
            if_exists: {flag}
        """}, runlist="app")
    assert trueup("run", str(bundle)).returncode == 0
    flag.write_text("")
    done = trueup("run", str(bundle), "--json")
    assert done.returncode == 194
    assert _report(done)["reboot"]["resource"] == "reboot:pending-upgrades"


def test_allow_reboots_after_the_report_is_written(tmp_path, trueup, env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    state = Path(env["TRUEUP_STATE_DIR"])
    fake = bin_dir / "systemctl"
    # records its arguments and whether the report was already there
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n"
                    f"test -f {state}/reports/last_run.json && echo report-kept >> {log}\n")
    fake.chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    done = trueup("run", str(_bundle(tmp_path)), "--reboot", "allow", env={"PATH": path})
    assert done.returncode == 194, done.stderr
    assert log.read_text() == "reboot\nreport-kept\n"
    assert "rebooting now" in done.stderr


@pytest.mark.parametrize(("spec", "message"), [
    ("if_exists: run/reboot-required", "if_exists must be an absolute path"),
    ("at: later", "at must be one of end, now"),
])
def test_bad_reboot_spec_is_one_error_naming_the_line(tmp_path, trueup, spec, message):
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - reboot: k
            {spec}
        """}, runlist="app")
    done = trueup("run", str(bundle))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert message in line and "app/recipe.yml:" in line, line


def test_a_bad_notify_action_names_the_allowed_ones(tmp_path, trueup):
    done = trueup("run", str(_bundle(tmp_path, "later")))
    assert done.returncode == 1
    assert "request" in done.stderr and "now" in done.stderr
