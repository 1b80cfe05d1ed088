"""trueup verify on a real booted Debian 12 host: after converging recipes/base and
recipes/web every check passes; after a manual drift it exits 1 naming the failed check.

testinfra is the distribution's optional ``verify`` extra: it is installed into the
host's trueup venv from a wheelhouse built on the outer machine, as an operator would
with ``pip install 'trueup[verify]'``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from agenthost import BUNDLE, start_agent_host, trueup
from testhost import DEFAULT_VENV, BootedHost, ensure_wheelhouse

pytestmark = [pytest.mark.host, pytest.mark.slow]

RUN = (BUNDLE, "--runlist", "base,web")
VERIFY_EXTRA = ["pytest>=8,<10", "pytest-testinfra>=10,<11"]


@pytest.fixture(scope="module")
def converged_host(testhost_image: Path, local_repo: Path,
                   trueup_wheel: Path) -> Iterator[BootedHost]:
    host = start_agent_host(testhost_image, local_repo, trueup_wheel)
    try:
        wheelhouse = ensure_wheelhouse(VERIFY_EXTRA)
        host.run([f"{DEFAULT_VENV}/bin/pip", "install", "-q", "--no-index", "--find-links",
                  host._wheelhouse_inside(wheelhouse), *VERIFY_EXTRA], timeout=600)
        first = trueup(host, "run", *RUN)
        assert first.returncode == 0 and first.report["totals"]["failed"] == 0, first
        yield host
    finally:
        host.stop()


def test_verify_passes_on_a_converged_host_and_names_the_drifted_check(
        converged_host: BootedHost) -> None:
    host = converged_host
    ok = trueup(host, "verify", *RUN, json_report=False)
    assert ok.returncode == 0, ok
    assert "trueup verify: 9 passed, 0 failed (base, web)" in ok.stdout, ok

    host.run(["systemctl", "stop", "nginx"])  # manual drift
    bad = trueup(host, "verify", *RUN, json_report=False)
    assert bad.returncode == 1, bad
    failed = [line.split()[1] for line in bad.stdout.splitlines()
              if line.startswith("failed ")]
    assert "web/tests/test_web.py::test_nginx_running_and_enabled[local]" in failed, bad
    assert all(name.startswith("web/") for name in failed), failed
    result = json.loads(host.read_file("/var/lib/trueup/reports/last_verify.json"))
    assert result["exit_code"] == 1 and result["totals"]["failed"] == len(failed)
