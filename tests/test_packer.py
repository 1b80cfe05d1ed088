"""Every Packer template folder under packer/ passes `packer validate` and
`packer fmt -check` with the packer CI installs (.ci/packer-setup.sh: Debian's 1.6.6),
offline. Plus what validate does not check: the provisioners' scripts exist and the
AMI sources keep the settings the image depends on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKER = REPO / "packer"
# folder → the -var values validate needs (variables without a default)
FOLDERS = {
    PACKER: [],
    PACKER / "local": ["-var=out=/nonexistent/out", "-var=base=/", "-var=wheels=/",
                       "-var=bundle=/"],
    PACKER / "plugins": None,  # current Packer only (required_plugins): fmt, no validate
}


def _packer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if shutil.which("packer") is None:
        if os.environ.get("CI"):
            pytest.fail("packer is not installed (.ci/packer-setup.sh)")
        pytest.skip("packer is not installed")
    argv = ["packer", *args]
    if os.geteuid() == 0 and shutil.which("unshare"):
        argv = ["unshare", "--net", *argv]  # validate must not need the network
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CHECKPOINT_DISABLE": "1"})


def test_every_template_folder_is_listed() -> None:
    folders = {p.parent for p in PACKER.rglob("*.pkr.hcl")}
    assert folders == set(FOLDERS)


@pytest.mark.parametrize("folder", list(FOLDERS), ids=lambda p: str(p.relative_to(REPO)))
def test_packer_fmt_check(folder: Path) -> None:
    res = _packer("fmt", "-check", "-diff", ".", cwd=folder)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("folder", [f for f, v in FOLDERS.items() if v is not None],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_packer_validate(folder: Path) -> None:
    res = _packer("validate", *FOLDERS[folder], ".", cwd=folder)
    assert res.returncode == 0, res.stdout + res.stderr


def test_validate_with_an_uploaded_wheel_and_bundle() -> None:
    res = _packer("validate", f"-var=trueup_wheel={REPO / 'ami'}",
                  f"-var=bundle_dir={REPO / 'recipes'}", "-var=bundle=/srv/trueup/bundle", ".",
                  cwd=PACKER)
    assert res.returncode == 0, res.stdout + res.stderr


def test_validate_refuses_a_bad_ami_prefix() -> None:
    res = _packer("validate", "-var=ami_prefix=bad*name", ".", cwd=PACKER)
    assert res.returncode == 1
    assert "The ami_prefix must be" in res.stdout + res.stderr


def test_the_ami_sources_keep_what_the_image_depends_on() -> None:
    text = (PACKER / "ami.pkr.hcl").read_text()
    sources = re.findall(r'source "amazon-ebs" "(\w+)" \{(.*?)\n\}', text, re.S)
    assert {name for name, _ in sources} == {"debian12", "al2023"}
    for _, body in sources:
        assert re.search(r"owners\s*=\s*\[\"\d{12}\"\]", body)
        assert re.search(r"most_recent\s*=\s*true", body)
        assert re.search(r"encrypt_boot\s*=\s*true", body)
        assert re.search(r"encrypted\s*=\s*true", body)
        assert "iam_instance_profile" in body
        assert "local.stamp" in body  # a timestamped AMI name
    assert '"trueup:bundle-sha256"' in text and '"trueup:bundle-version"' in text
    assert 'post-processor "manifest"' in text
    for script in re.findall(r'\$\{path\.root\}/\.\./(ami/[\w./-]+)', text):
        assert (REPO / script).exists(), script
    for name in ("provision.sh", "seal.sh", "install.sh"):
        assert f"ami/{name}" in text or name == "install.sh"
        assert (REPO / "ami" / name).exists()
