"""On a booted Debian 12 host: a restart absorbs the reloads of its run (counted in the
journal), and the machine facts (init, systemd_version, virtual, mounts) as a recipe sees them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agenthost import TRUEUP, is_active, journal_cursor, start_agent_host, trueup, unit_events

pytestmark = pytest.mark.host

UNIT = "trueup-notify.service"
UNIT_FILE = """\
[Unit]
Description=trueup notification test
[Service]
ExecStart=/bin/sleep infinity
ExecReload=/bin/true
[Install]
WantedBy=multi-user.target
"""
BUNDLE = "/srv/bundle"


@pytest.fixture(scope="module")
def host(testhost_image: Path, local_repo: Path, trueup_wheel: Path):
    booted = start_agent_host(testhost_image, local_repo, trueup_wheel, recipes=False)
    try:
        yield booted
    except BaseException:
        print(f"=== diagnostics of {booted.name} ({TRUEUP}) ===\n{booted.diagnostics()}")
        raise
    finally:
        booted.stop()


def _recipe(version: str, notify: list[str]) -> dict:
    files = [{"file": f"/etc/trueup-notify/{i}.conf", "content": f"{version}\n",
              "notify": f"service:trueup-notify {action}"} for i, action in enumerate(notify)]
    return {"resources": [{"directory": "/etc/trueup-notify"}, *files,
                          {"service": "trueup-notify", "state": "running"}]}


def _restarted_once(events: list[str]) -> None:
    """One stop and one start (a simple service logs no "starting"), no reload at all."""
    assert [e for e in events if e in ("stopped", "started", "reloading", "reloaded")] == [
        "stopped", "started"], events


def test_a_service_restarted_in_a_run_is_not_reloaded_in_it(host) -> None:
    host.write_file(f"/etc/systemd/system/{UNIT}", UNIT_FILE)
    host.run(["systemctl", "daemon-reload"])
    host.run(["systemctl", "start", UNIT])
    assert is_active(host, UNIT)
    args = (BUNDLE, "--runlist", "notify", "--detailed-exitcodes")

    # a reload, then a restart, then a reload again, all delayed
    host.write_file(f"{BUNDLE}/notify/recipe.yml",
                    json.dumps(_recipe("v1", ["reload", "restart", "reload"])))
    cursor = journal_cursor(host)
    first = trueup(host, "run", *args)
    assert first.returncode == 2, first
    _restarted_once(unit_events(host, UNIT, cursor))
    service = first.resource("service:trueup-notify")
    changes = {c["field"]: c["after"] for c in service["changes"]}
    assert changes["restart"] == "triggered by file:/etc/trueup-notify/1.conf", service
    assert changes["reload"].startswith("not needed: restarted by this run"), service

    # an immediate restart, then a delayed reload
    recipe = _recipe("v2", ["restart", "reload"])
    recipe["resources"][1]["immediately"] = True
    host.write_file(f"{BUNDLE}/notify/recipe.yml", json.dumps(recipe))
    cursor = journal_cursor(host)
    second = trueup(host, "run", *args)
    assert second.returncode == 2, second
    _restarted_once(unit_events(host, UNIT, cursor))

    # nothing changed: nothing notified
    cursor = journal_cursor(host)
    third = trueup(host, "run", *args)
    assert third.returncode == 0, third
    assert unit_events(host, UNIT, cursor) == []


def test_machine_facts_on_a_booted_host(host) -> None:
    facts = json.loads(trueup(host, "facts", json_report=False).stdout)
    assert facts["init"] == "systemd"
    assert facts["systemd_version"] == 252  # Debian 12
    assert facts["virtual"] == {"kind": "container", "type": "systemd-nspawn"}
    assert any(m["mount"] == "/" for m in facts["mounts"]), facts["mounts"]
    assert facts["selinux"]["enabled"] is False

    host.write_file(f"{BUNDLE}/facts/recipe.yml", json.dumps({"resources": [
        {"file": "/etc/trueup-facts", "content": "systemd {{ facts.systemd_version }}\n",
         "when": "facts.init == 'systemd' and facts.virtual.kind == 'container'"},
        {"file": "/etc/trueup-vm-only", "content": "x\n", "when": "facts.virtual.kind == 'vm'"},
    ]}))
    out = trueup(host, "run", BUNDLE, "--runlist", "facts", "--detailed-exitcodes")
    assert out.returncode == 2, out
    assert host.read_file("/etc/trueup-facts") == b"systemd 252\n"
    assert out.statuses()["file:/etc/trueup-vm-only"] == "skipped-by-condition"
