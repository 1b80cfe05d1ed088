"""The SSM document's script on a booted host, parameters substituted as the SSM agent does,
run as a service as the agent runs it: success, failure with the run's summary, and 194 for
a reboot; after the reboot (a new boot of the same machine) the document's next run resumes.

/opt/trueup, /var/lib/trueup and /srv/data (what the recipes manage) are folders of this
machine bound into the host, so they survive the reboot, as an instance's disk does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from testhost import BootedHost

from tests import ssmdoc
from tests.helpers import write_bundle

pytestmark = [pytest.mark.host, pytest.mark.slow]

SCRIPT_DIR = "/var/lib/amazon/ssm/i-0123/document/orchestration/cmd/awsrunShellScript/trueup"


def _bundles(folder: Path) -> Path:
    root = folder / "bundles"
    write_bundle(root / "good", {"app": """
        resources:
          - file: /srv/data/trueup-good
            content: "good\\n"
        """}, runlist="app")
    write_bundle(root / "reboot", {"app": """
        resources:
          - reboot: new-kernel
            reason: a new kernel
          - file: /srv/data/trueup-kernel
            content: "installed\\n"
            notify: reboot:new-kernel now
          - file: /srv/data/trueup-after-reboot
            content: "converged after the reboot\\n"
        """}, runlist="app")
    return root


def _boot(image: Path, disks: list[tuple[str, str]], bundles: Path) -> BootedHost:
    host = BootedHost(image, network="private", binds=disks,
                      binds_ro=[(str(bundles), "/srv/bundles")])
    host.start()
    return host


def _ssm(host: BootedHost, tmp_path: Path, **params: str):
    """The document's step as the SSM agent runs it: its script file, sh, a unit."""
    host.write_file(f"{SCRIPT_DIR}/_script.sh", ssmdoc.script(**params), mode=0o700)
    return host.run_unit(["sh", f"{SCRIPT_DIR}/_script.sh"], check=False)


def test_document_exit_codes_and_the_run_after_a_reboot(testhost_image: Path, trueup_wheel: Path,
                                                        tmp_path: Path) -> None:
    disks = []
    for name, inner in (("opt", "/opt/trueup"), ("state", "/var/lib/trueup"),
                        ("data", "/srv/data")):
        (tmp_path / name).mkdir()
        disks.append((str(tmp_path / name), inner))
    bundles = _bundles(tmp_path)
    host = _boot(testhost_image, disks, bundles)
    try:
        host.install_wheel(trueup_wheel)
        good = _ssm(host, tmp_path, Source="/srv/bundles/good")
        assert good.returncode == 0, good.stdout + good.stderr
        assert host.read_file("/srv/data/trueup-good") == b"good\n"

        bad = _ssm(host, tmp_path, Source="/srv/bundles/missing")
        assert bad.returncode == 1
        summary = bad.stdout.split("trueup-run: FAILED (exit 1); summary of the run:")[1]
        assert "/srv/bundles/missing" in summary

        asks = _ssm(host, tmp_path, Source="/srv/bundles/reboot")
        assert asks.returncode == 194, asks.stdout + asks.stderr
        assert "the SSM agent reboots the instance" in asks.stdout
        assert not (tmp_path / "data" / "trueup-after-reboot").exists()
        host.run(["systemctl", "reboot"], check=False)  # what the SSM agent does on 194
    finally:
        host.stop(graceful=True)
    assert (tmp_path / "state" / "reboot-pending.json").exists()

    host = _boot(testhost_image, disks, bundles)  # the same machine, booted again
    try:
        again = _ssm(host, tmp_path, Source="/srv/bundles/reboot")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "trueup: resumed after the reboot that reboot:new-kernel asked for" in \
            again.stdout + again.stderr
        assert host.read_file("/srv/data/trueup-after-reboot") == b"converged after the reboot\n"
    finally:
        host.stop()
    assert not (tmp_path / "state" / "reboot-pending.json").exists()
