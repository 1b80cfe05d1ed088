"""The local Packer build (packer/local) bakes base+web into a sealed image; hosts booted
from that image converge their boot phase.

One build per module (about a minute or two: the bake installs the packages). The image
is an overlay over the cached test image, removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agenthost import TRUEUP, http_status, is_active, run_recipe_checks, trueup
from testhost import REPO_ROOT, BootedHost, ensure_wheelhouse, wheel_requirements

pytestmark = [pytest.mark.host, pytest.mark.slow]

LOCAL = REPO_ROOT / "packer" / "local"
STEP = LOCAL / "localimage.py"
BAKED = {  # phase: bake in recipes/base and recipes/web
    "package:base-packages", "group:admins", "user:alice", "user:deploy",
    "file:/etc/sudoers.d/admins", "template:/etc/ssh/sshd_config", "link:/etc/localtime",
    "file:/etc/timezone", "package:nginx", "directory:/var/www/trueup",
    "file:/etc/nginx/snippets/trueup-headers.conf", "template:/etc/nginx/sites-available/default",
}
BOOT_OR_ANY = {"directory:/run/sshd", "service:ssh", "sysctl:net.core.somaxconn",
               "template:/etc/motd", "template:/var/www/trueup/index.html", "service:nginx"}
SITE = "template:/etc/nginx/sites-available/default"


@pytest.fixture(scope="module")
def image(testhost_image: Path, local_repo: Path, trueup_wheel: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The baked image's folder (OUT): the local Packer build of recipes base,web."""
    if shutil.which("packer") is None:
        pytest.fail("packer is not installed (.ci/packer-setup.sh installs it)")
    work = tmp_path_factory.mktemp("bake")
    wheels = work / "wheels"
    shutil.copytree(ensure_wheelhouse(wheel_requirements(trueup_wheel)), wheels)
    shutil.copy(trueup_wheel, wheels)
    out = Path(os.environ.get("TRUEUP_BAKED_IMAGE") or work / "img")
    prebuilt = (out / "upper").is_dir() and "TRUEUP_BAKED_IMAGE" in os.environ
    try:
        if not prebuilt:
            argv = ["packer", "build", "-color=false",
                    f"-var=out={out}", f"-var=base={testhost_image}", f"-var=wheels={wheels}",
                    f"-var=bundle={REPO_ROOT / 'recipes'}", "-var=runlist=base,web",
                    f"-var=apt_repo={local_repo}", f"-var=python={sys.executable}", "."]
            done = subprocess.run(argv, cwd=LOCAL, capture_output=True, text=True, timeout=1200,
                                  env={**os.environ, "CHECKPOINT_DISABLE": "1"})
            assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
            assert "trueup seal:" in done.stdout and "trueup bake: manifest" in done.stdout + \
                done.stderr
            # install.sh ran in a host with no network (loopback only): all from the wheels
            assert "trueup 0.1.0" in done.stdout and "already installed" not in done.stdout
        subprocess.run([sys.executable, str(STEP), "mount", str(out)], check=True,
                       capture_output=True)
        yield out
    finally:
        if not prebuilt:
            subprocess.run([sys.executable, str(STEP), "clean", str(out)], check=False)


@pytest.fixture(scope="module")
def booted(image: Path, local_repo: Path) -> Iterator[BootedHost]:
    """A host booted from the baked image (its first boot: trueup-firstboot.service ran)."""
    host = BootedHost(image / "rootfs", network="private", mask=(), apt_repo=local_repo,
                      boot_timeout=180)
    host.start()
    try:
        yield host
    finally:
        host.stop()


def test_the_sealed_image_holds_nothing_seal_removes(image: Path) -> None:
    root = image / "rootfs"
    assert not list((root / "etc/ssh").glob("ssh_host_*")), "SSH host keys in the image"
    assert (root / "etc/machine-id").read_text() == ""
    assert not (root / "var/lib/dbus/machine-id").is_file() or \
        (root / "var/lib/dbus/machine-id").is_symlink()
    cloud = root / "var/lib/cloud"
    assert not cloud.exists() or {p.name for p in cloud.iterdir()} <= {"seed"}
    # wtmp gets the build host's shutdown record after seal (systemd-update-utmp): no more
    logs = [p for p in (root / "var/log").rglob("*") if p.is_file() and not p.is_symlink()
            and p.stat().st_size and p.name != "wtmp"]
    assert logs == [], f"logs left with content: {logs}"
    for home in [root / "root", *(root / "home").iterdir()]:
        for name in (".bash_history", ".python_history", ".lesshst", ".viminfo"):
            assert not (home / name).exists()
        assert not (home / ".cache/pip").exists()
    assert list((root / "tmp").iterdir()) == [] and list((root / "var/tmp").iterdir()) == []
    state = root / "var/lib/trueup"
    assert {p.name for p in state.iterdir()} <= {"bake", "run.lock"}
    manifest = json.loads((state / "bake/manifest.json").read_text())
    assert manifest["exit_code"] == 0 and manifest["runlist"] == ["base", "web"]
    entries = {r["resource"]: r for r in manifest["resources"]}
    assert set(entries) >= BAKED and not (set(entries) & {"template:/etc/motd",
                                                         "template:/var/www/trueup/index.html"})
    assert all(len(e["digest"]) == 64 for e in entries.values())
    assert (root / "opt/trueup/venv/bin/trueup").exists()
    assert (root / "etc/systemd/system/multi-user.target.wants/trueup-firstboot.service"
            ).is_symlink()


def test_a_booted_instance_converges_its_boot_phase_with_its_own_identity(
        booted: BootedHost, image: Path) -> None:
    host = booted
    assert is_active(host, "trueup-firstboot.service")
    report = json.loads(host.run([TRUEUP, "report", "--json"]).stdout)
    assert report["phase"] == "boot" and report["exit_code"] == 0, report
    ran = {r["resource"] for r in report["resources"]}
    assert ran == BOOT_OR_ANY, ran  # nothing baked ran again
    assert report["left_image"] == []
    assert http_status(host, "http://127.0.0.1:8080/") == "200"
    checks = run_recipe_checks(host, "base", "web")
    assert checks.returncode == 0, checks.stdout[-4000:] + checks.stderr[-2000:]

    build = json.loads((image / "build-host.json").read_text())
    machine_id = host.run(["cat", "/etc/machine-id"]).stdout.strip()
    assert len(machine_id) == 32 and machine_id != build["machine_id"]
    keys = host.run(["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"]).stdout.split("\n")
    new = {k.split()[1] for k in keys if k.strip()}
    old = {k.split()[1] for k in build["host_keys"] if k.strip()}
    assert new and not (new & old), "the instance has the build host's SSH host keys"
    assert is_active(host, "ssh.service")


def test_install_sh_from_the_installed_package_is_idempotent_on_the_image(
        booted: BootedHost, trueup_wheel: Path) -> None:
    host = booted
    script = host.run([TRUEUP.replace("/bin/trueup", "/bin/python"), "-c",
                       "from agent.host.amifiles import ami_file; print(ami_file('install.sh'))"]
                      ).stdout.strip()
    assert script.startswith("/opt/trueup/venv/lib/") and script.endswith("/agent/ami/install.sh")
    host.put(trueup_wheel, f"/tmp/{trueup_wheel.name}")
    before = host.run(["stat", "-c", "%Y %i", "/opt/trueup/venv/bin/trueup"]).stdout
    again = host.run(["sh", script, f"/tmp/{trueup_wheel.name}"])  # the wheel that was baked
    assert "already installed" in again.stderr and again.stdout.strip() == "trueup 0.1.0"
    assert host.run(["stat", "-c", "%Y %i", "/opt/trueup/venv/bin/trueup"]).stdout == before
    assert host.run(["/usr/local/bin/trueup", "--version"]).stdout.strip() == "trueup 0.1.0"


def test_on_the_baked_image_a_full_run_changes_nothing_baked_and_boot_touches_boot_only(
        booted: BootedHost) -> None:
    full = trueup(booted, "run", "--runlist", "base,web")
    assert full.returncode == 0, full
    assert not (full.changed() & BAKED), full.changed()
    boot = trueup(booted, "run", "--phase", "boot")
    assert set(boot.statuses()) == BOOT_OR_ANY and boot.report["left_image"] == []


def test_a_newer_bundle_converges_exactly_the_baked_template_that_changed(
        booted: BootedHost) -> None:
    host = booted
    host.run(["cp", "-a", "/srv/trueup/bundle", "/srv/newer"])
    site = "/srv/newer/web/templates/site.conf.j2"
    host.write_file(site, host.read_file(site).decode() + "# release 2\n")
    res = trueup(host, "run", "/srv/newer", "--phase", "boot")
    assert res.returncode == 0, res
    assert res.report["left_image"] == [SITE]
    assert res.changed() & BAKED == {SITE}
    assert res.changed() <= {SITE, "service:nginx"}
    assert res.resource("service:nginx")["notified"] == [SITE]
    assert host.read_file("/etc/nginx/sites-available/default").decode().endswith(
        "# release 2\n")
    assert http_status(host, "http://127.0.0.1:8080/") == "200"


def test_plan_bake_report_on_the_image_uses_the_real_full_run(booted: BootedHost) -> None:
    trueup(booted, "run", "--runlist", "base,web")  # a full run to measure (order-proof)
    res = booted.run([TRUEUP, "plan", "--runlist", "base,web", "--bake-report", "--json"])
    report = json.loads(res.stdout)
    by = {s["strategy"]: s for s in report["strategies"]}
    assert by["os-only"]["resources"] == len(BAKED | BOOT_OR_ANY)
    assert by["split"]["resources"] == len(BOOT_OR_ANY)
    assert by["os-only"]["boot_s"] > by["split"]["boot_s"] > 0
    text = booted.run([TRUEUP, "plan", "--runlist", "base,web", "--bake-report"]).stdout
    assert "the recipes' bake/boot split" in text
