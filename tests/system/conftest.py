"""Fixtures for system tests on real Debian 12 test hosts (see tests/testhost.py).

Prepare once per machine (as root): ``bash .ci/testhosts-setup.sh``.

* ``testhost_image``  (session) the image rootfs; skips when tools/image are missing, but
  fails instead when the CI environment variable is set.
* ``booted_host``     (function) a started ``BootedHost`` (systemd PID 1), stopped after.
* ``chroot_host``     (function) a started ``ChrootHost`` (no init), stopped after.
* ``trueup_wheel``    (session) the wheel built from this checkout.
* ``local_repo``      (session) the local apt repository for hosts with a private network.

Tests using these fixtures get the ``host`` marker automatically (``-m "not host"`` skips
them). When a test fails, the booted host's failed units and journal tail are printed in
the teardown section of the report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import testhost  # noqa: E402

REPO_ROOT = TESTS_DIR.parent
HOST_FIXTURES = {"testhost_image", "booted_host", "chroot_host", "local_repo"}
_CALL_FAILED = pytest.StashKey[bool]()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"test hosts unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"test hosts unavailable: {reason}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HOST_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.host)
            item.add_marker(pytest.mark.slow)  # a booted host takes seconds to start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed


@pytest.fixture(scope="session")
def testhost_image() -> Path:
    problems = testhost.missing_prerequisites()
    if problems:
        _unavailable("; ".join(problems) + " (run: bash .ci/testhosts-setup.sh)")
    try:
        image = testhost.find_image()
    except testhost.ImageMissing as exc:
        _unavailable(str(exc))
    testhost.cleanup_stale()
    return image


@pytest.fixture(scope="session")
def local_repo(testhost_image: Path) -> Path:
    """The apt file repository (.ci/testhosts-setup.sh builds it beside the image)."""
    try:
        return testhost.find_repo()
    except testhost.ImageMissing as exc:
        _unavailable(str(exc))


@pytest.fixture
def booted_host(testhost_image: Path, request: pytest.FixtureRequest):
    host = testhost.BootedHost(testhost_image)
    host.start()
    try:
        yield host
    finally:
        if request.node.stash.get(_CALL_FAILED, False) and host.running:
            print(f"=== diagnostics of {host.name} ===\n{host.diagnostics()}")
        host.stop()


@pytest.fixture
def chroot_host(testhost_image: Path):
    host = testhost.ChrootHost(testhost_image)
    host.start()
    try:
        yield host
    finally:
        host.stop()


def _ignore_for_build(directory: str, names: list[str]) -> set[str]:
    skip = {".git", "build", "dist", ".venv", "venv", "node_modules", "__pycache__"}
    return {
        n
        for n in names
        if n in skip or n.endswith((".egg-info", "_cache")) or n.startswith(".pytest")
    }


@pytest.fixture(scope="session")
def trueup_wheel(tmp_path_factory: pytest.TempPathFactory, testhost_image: Path) -> Path:
    """Build the trueup wheel from the checkout (a copy, so the tree gets no build/ dir).

    Depends on ``testhost_image`` only so that a machine without test hosts skips (or
    fails) before spending seconds on a build.
    """
    if not (REPO_ROOT / "pyproject.toml").exists():
        pytest.skip("no pyproject.toml in the checkout")
    base = tmp_path_factory.mktemp("trueup-wheel")
    src = base / "src"
    shutil.copytree(REPO_ROOT, src, ignore=_ignore_for_build, symlinks=True)
    out = base / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"building the trueup wheel failed:\n{proc.stdout}\n{proc.stderr}")
    wheels = sorted(out.glob("trueup-*.whl"))
    assert wheels, f"no wheel in {out}: {list(out.iterdir())}"
    return wheels[-1]
