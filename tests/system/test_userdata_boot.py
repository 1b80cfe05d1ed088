"""First boot from `trueup userdata` with cloud-init (NoCloud), a reboot, and the shutdown
event at poweroff, on one booted Debian 12 host whose root survives its stops.

Every root is an overlay with its own upper folder (so a stop and a start is a reboot of
the same machine, and what the host wrote can be read from outside). A first boot "bakes"
the cloud image: cloud-init from the local apt repository, NoCloud only. Each instance of it
boots with a NoCloud seed whose user data is `trueup userdata --wheel ...` (the wheel and
its dependencies bound at /srv/wheels, the bundle at /srv/recipes): the shell script, and
in a second instance the `#cloud-config` form.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from agenthost import run_recipe_checks
from testhost import BootedHost, ensure_wheelhouse, wheel_requirements

from tests.helpers import REPO, run_cli

pytestmark = [pytest.mark.host, pytest.mark.slow]

SEED = "/var/lib/cloud/seed/nocloud"
CLOUD_CFG = """datasource_list: [NoCloud, None]
network: {config: disabled}
locale: false
preserve_hostname: true
manage_etc_hosts: false
"""
COUNT_RECIPE = """resources:
  - command: count-{event}
    run: [/bin/sh, -c, "echo {event} >> /var/lib/trueup-test-{event}.count"]
"""


def _bundle(folder: Path) -> Path:
    bundle = folder / "bundle"
    shutil.copytree(REPO / "recipes", bundle, ignore=shutil.ignore_patterns("__pycache__"))
    for event in ("setup", "shutdown"):
        (bundle / f"count-{event}").mkdir()
        (bundle / f"count-{event}" / "recipe.yml").write_text(COUNT_RECIPE.format(event=event))
    (bundle / "runlist.setup").write_text("base\nweb\ncount-setup\n")
    (bundle / "runlist.shutdown").write_text("count-shutdown\n")
    return bundle


def _wheels(folder: Path, wheel: Path) -> Path:
    """A wheelhouse: the trueup wheel and every dependency (install.sh then needs no index)."""
    wheels = folder / "wheels"
    wheels.mkdir()
    for dep in ensure_wheelhouse(wheel_requirements(wheel)).glob("*.whl"):
        shutil.copy(dep, wheels)
    shutil.copy(wheel, wheels)
    return wheels


@pytest.fixture(scope="module")
def cloud_image(testhost_image: Path, local_repo: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The test image with cloud-init (NoCloud only) installed: the upper folder of one
    boot, laid over the image as the lower layer of every instance below."""
    base = tmp_path_factory.mktemp("cloud-image")
    root = _overlay(base, str(testhost_image), upper=base / "layer")
    try:
        with BootedHost(root, volatile=False, network="private", apt_repo=local_repo) as bake:
            bake.run(["apt-get", "update", "-q"], timeout=300)
            bake.run(["apt-get", "install", "-y", "-q", "cloud-init"], timeout=600)
            bake.write_file("/etc/cloud/cloud.cfg.d/99-trueup-test.cfg", CLOUD_CFG)
            bake.run(["cloud-init", "clean", "--logs"])
            bake.stop(graceful=True, timeout=60)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
    yield base / "layer"


def _overlay(base: Path, lower: str, upper: Path) -> Path:
    """Mount an overlay root at BASE/root: ``lower`` (layers, top first) under ``upper``."""
    work, root = base / "work", base / "root"
    for folder in (upper, work, root):
        folder.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "overlay", "-o", f"lowerdir={lower},upperdir={upper},"
                    f"workdir={work}", "trueup-userdata", str(root)], check=True)
    return root


@contextlib.contextmanager
def _instance(name: str, cloud_image: Path, testhost_image: Path, local_repo: Path,
              trueup_wheel: Path, tmp_path_factory: pytest.TempPathFactory,
              *formats: str) -> Iterator[dict]:
    """A new instance of the cloud image whose NoCloud user data is ``trueup userdata
    --wheel ... FORMATS``; its root survives stops (a stop and a start is a reboot)."""
    base = tmp_path_factory.mktemp(name)
    upper = base / "upper"
    root = _overlay(base, f"{cloud_image}:{testhost_image}", upper=upper)
    try:
        wheel = _wheels(base, trueup_wheel)
        userdata = run_cli("userdata", *formats, "--wheel", f"/srv/wheels/{trueup_wheel.name}",
                           "--source", "/srv/recipes", "--env", "test")
        assert userdata.returncode == 0, userdata.stderr
        seed = base / "seed"
        seed.mkdir()
        (seed / "user-data").write_text(userdata.stdout)
        (seed / "meta-data").write_text("instance-id: i-0123456789abcdef0\n"
                                        f"local-hostname: {name}\n")
        binds = [(str(seed), SEED), (str(wheel), "/srv/wheels"),
                 (str(_bundle(base)), "/srv/recipes")]
        yield {"root": root, "upper": upper, "binds": binds, "userdata": userdata.stdout,
               "repo": local_repo}
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


@pytest.fixture(scope="module")
def machine(cloud_image: Path, testhost_image: Path, local_repo: Path, trueup_wheel: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    with _instance("userdata-boot", cloud_image, testhost_image, local_repo, trueup_wheel,
                   tmp_path_factory) as instance:
        yield instance


def _boot(machine: dict) -> BootedHost:
    # ssh.service is not masked: base manages sshd; a private network has port 22 to itself
    host = BootedHost(machine["root"], volatile=False, network="private", mask=(),
                      apt_repo=machine["repo"], binds_ro=machine["binds"], boot_timeout=900)
    host.start()
    return host


def _lines(host: BootedHost, path: str) -> list[str]:
    done = host.run(["cat", path], check=False)
    return done.stdout.splitlines()


def _converged_at_first_boot(host: BootedHost) -> None:
    """cloud-init finished; its run of the user data converged the setup run list once
    (exit 0), the recipes pass their testinfra checks, the agent's units are enabled."""
    status = host.run(["cloud-init", "status", "--long"], check=False)
    assert "status: done" in status.stdout, status.stdout + host.diagnostics()
    report = json.loads(host.read_file("/var/lib/trueup/reports/history/"
                                       + _first_report(host)))
    assert report["event"] == "setup" and report["exit_code"] == 0, report
    assert _lines(host, "/var/lib/trueup-test-setup.count") == ["setup"]
    checks = run_recipe_checks(host, "base", "web")
    assert checks.returncode == 0, checks.stdout + checks.stderr
    for unit in ("trueup-watch.service", "trueup-shutdown.service"):
        enabled = host.run(["systemctl", "is-enabled", unit], check=False)
        assert enabled.stdout.strip() == "enabled", unit


def test_first_boot_converges_once_and_shutdown_runs_at_poweroff(machine: dict) -> None:
    assert len(machine["userdata"].encode()) < 16384
    host = _boot(machine)
    try:
        _converged_at_first_boot(host)
        active = host.run(["systemctl", "is-active", "trueup-shutdown.service"], check=False)
        assert active.stdout.strip() == "active"
        log = host.read_file("/var/log/trueup/userdata.log").decode()
        assert "trueup-userdata: done (setup exit 0)" in log

        cloud_config = run_cli("userdata", "--format", "cloud-config", "--wheel",
                               "/srv/wheels/trueup.whl", "--source", "/srv/recipes")
        host.write_file("/tmp/cloud-config.yaml", cloud_config.stdout)
        schema = host.run(["cloud-init", "schema", "--config-file", "/tmp/cloud-config.yaml"],
                          check=False)
        assert schema.returncode == 0 and "Valid cloud-config" in schema.stdout, schema

        again = host.run(["bash", "/var/lib/cloud/instance/scripts/part-001"], check=False,
                         timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "setup already ran on i-0123456789abcdef0" in again.stdout
        assert _lines(host, "/var/lib/trueup-test-setup.count") == ["setup"]
    finally:
        host.stop(graceful=True, timeout=180)
    # poweroff ran the shutdown event; its marker is in the machine's persistent state
    count = machine["upper"] / "var/lib/trueup-test-shutdown.count"
    assert count.read_text() == "shutdown\n"

    host = _boot(machine)  # a reboot of the same instance
    try:
        assert _lines(host, "/var/lib/trueup-test-setup.count") == ["setup"]  # not again
        log = host.read_file("/var/log/trueup/userdata.log").decode()
        assert log.count("trueup-userdata: start") == 2  # first boot + the manual run only
        enabled = host.run(["systemctl", "is-enabled", "trueup-watch.service"], check=False)
        assert enabled.stdout.strip() == "enabled"
    finally:
        host.stop(graceful=True, timeout=180)
    assert count.read_text() == "shutdown\nshutdown\n"


def _first_report(host: BootedHost) -> str:
    names = host.run(["ls", "/var/lib/trueup/reports/history"]).stdout.split()
    return sorted(names)[0]


def test_cloud_config_user_data_converges_at_first_boot(
        cloud_image: Path, testhost_image: Path, local_repo: Path, trueup_wheel: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """``--format cloud-config``: cloud-init writes the script (write_files) and runs it
    (runcmd); the instance converges like the shell form's."""
    with _instance("cloud-config-boot", cloud_image, testhost_image, local_repo, trueup_wheel,
                   tmp_path_factory, "--format", "cloud-config") as instance:
        assert instance["userdata"].startswith("#cloud-config\n")
        assert len(instance["userdata"].encode()) < 16384
        host = _boot(instance)
        try:
            _converged_at_first_boot(host)
        finally:
            host.stop(timeout=60)
