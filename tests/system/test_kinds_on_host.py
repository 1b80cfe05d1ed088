"""The conformance contract of every SYSTEM kind's EXAMPLES, on booted Debian 12 hosts.

tests/conformance/test_contract.py converges the other kinds on the developer's machine;
kinds that change the whole system (packages, services, users, cron, sysctl ...) are proven
here instead, each example on its own fresh booted host, through the real CLI installed in
the host from the wheel:

* ``trueup plan --detailed-exitcodes`` exits 2 (changes) and changes nothing on the host;
* ``trueup run`` converges (exit 2) and does change the host;
* a second ``trueup run`` and then ``trueup plan`` report 0 changes (exit 0) and change
  nothing.

Example keys starting with '_' prepare the host first: ``_unit`` is a unit file body
installed as /etc/systemd/system/<name>.service (without a daemon-reload: the service kind
must cope with a unit systemd has not loaded yet); ``_files`` {absolute path: content (str or
bytes)} writes files on the host; ``_wheels`` {distribution: version} puts a wheel of each
(tests/wheels.py) into /srv/wheels. An unknown hint fails the test, so a new
one cannot be silently ignored.

The hosts have their own network namespace (the sysctl example sets net.core.somaxconn,
which in the machine's namespace would change the machine) and install packages from the
local apt repository. Chroot hosts would be cheaper for some kinds, but they share the
machine's network namespace, and a booted host costs ~0.3 s more.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agenthost import TRUEUP, Outcome, snapshot, snapshot_diff, start_agent_host, trueup
from wheels import make_wheel

from agent.resources import load_all

KINDS = load_all()
SYSTEM_KINDS = {kind: cls for kind, cls in KINDS.items() if cls.SYSTEM}
CASES = [(kind, i) for kind, cls in SYSTEM_KINDS.items() for i in range(len(cls.EXAMPLES))]
HINTS = {"_unit", "_files", "_wheels"}
BUNDLE = "/srv/bundle"

pytestmark = pytest.mark.host


def test_every_system_kind_has_examples() -> None:
    expected = {"package", "service", "user", "group", "cron", "sysctl"}
    assert expected <= set(SYSTEM_KINDS), sorted(SYSTEM_KINDS)
    for kind, cls in SYSTEM_KINDS.items():
        assert cls.EXAMPLES, f"SYSTEM kind {kind} has no EXAMPLES to converge on a host"


def _expect(outcome: Outcome, code: int, status: str, what: str) -> None:
    assert outcome.returncode == code, f"{what}: wanted exit {code}\n{outcome}"
    assert outcome.report is not None, f"{what}: no JSON report\n{outcome}"
    (res,) = outcome.report["resources"]
    assert res["status"] == status, f"{what}: {json.dumps(res, indent=2)}"
    if status == "unchanged":
        assert not res.get("changes"), res


@pytest.mark.parametrize(("kind", "index"), CASES, ids=[f"{k}-{i}" for k, i in CASES])
def test_example_converges_on_a_booted_host(kind: str, index: int, testhost_image: Path,
                                            local_repo: Path, trueup_wheel: Path,
                                            tmp_path: Path) -> None:
    example = SYSTEM_KINDS[kind].EXAMPLES[index]
    unknown = {key for key in example if key.startswith("_")} - HINTS
    assert not unknown, f"set-up hints this test does not know: {sorted(unknown)}"
    spec = {key: value for key, value in example.items() if not key.startswith("_")}

    host = start_agent_host(testhost_image, local_repo, trueup_wheel, recipes=False)
    try:
        if "_unit" in example:
            host.write_file(f"/etc/systemd/system/{example[kind]}.service", example["_unit"])
        for path, content in example.get("_files", {}).items():
            host.write_file(path, content)
        if "_wheels" in example:
            for name, version in example["_wheels"].items():
                make_wheel(tmp_path / "wheels", name, version)
            host.put(tmp_path / "wheels", "/srv/wheels")
        host.write_file(f"{BUNDLE}/example/recipe.yml",
                        json.dumps({"resources": [spec]}, indent=2) + "\n")
        args = (BUNDLE, "--runlist", "example", "--detailed-exitcodes")

        fresh = snapshot(host)
        _expect(trueup(host, "plan", *args), 2, "changed", "plan on a fresh host")
        after_plan = snapshot(host)
        assert after_plan == fresh, "plan changed the host:\n" + snapshot_diff(fresh, after_plan)

        _expect(trueup(host, "run", *args), 2, "changed", "first run")
        converged = snapshot(host)
        assert converged != fresh, "the run reported a change but the host is the same"

        _expect(trueup(host, "run", *args), 0, "unchanged", "second run")
        again = snapshot(host)
        assert again == converged, ("the second run changed the host:\n"
                                    + snapshot_diff(converged, again))
        _expect(trueup(host, "plan", *args), 0, "unchanged", "plan after converging")
        assert snapshot(host) == converged

        # the human output says so too
        plain = trueup(host, "plan", *args, json_report=False)
        assert plain.returncode == 0, plain
        assert "0 would change, 0 failed, 1 unchanged" in plain.stdout, plain
    except BaseException:
        print(f"=== diagnostics of {host.name} ({TRUEUP}) ===\n{host.diagnostics()}")
        raise
    finally:
        host.stop()
