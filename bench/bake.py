"""Fry vs bake: boot-to-ready of base+web on booted Debian 12 test hosts.

    .venv/bin/python bench/bake.py [--out bench/results/bake.json]

Needs root, packer, and the test-host image and apt repository (``bash
.ci/testhosts-setup.sh``; ``bash .ci/packer-setup.sh``). Both sides start from the same
OS-only image, in a private network namespace with packages from the local apt repository:

* **fry**: boot the OS-only image, install trueup (ami/install.sh, dependencies from the
  wheelhouse), converge recipes base and web fully (``trueup run``), until nginx answers.
* **bake**: the local Packer build (packer/local: bake phase, seal), then boot the baked
  image; its first-boot unit converges the boot phase; until nginx answers.

Each side is timed from the start of systemd-nspawn to nginx's first 200 on port 8080;
the converge figures are trueup's own ``duration_s``. Not a test: figures go to stdout
and ``--out`` (JSON), and into bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "system")]

import testhost  # noqa: E402
from agenthost import TRUEUP, http_status  # noqa: E402

STEP = ROOT / "packer" / "local" / "localimage.py"


def _ready(host: testhost.BootedHost, t0: float, timeout: float = 600) -> float:
    while time.monotonic() - t0 < timeout:
        if http_status(host, "http://127.0.0.1:8080/") == "200":
            return time.monotonic() - t0
        time.sleep(0.05)
    raise SystemExit("nginx never answered")


def _wheels(tmp: Path) -> tuple[Path, Path]:
    from hosts import build_wheel

    wheel = build_wheel(tmp)
    house = tmp / "wheels"
    shutil.copytree(testhost.ensure_wheelhouse(testhost.wheel_requirements(wheel)), house)
    shutil.copy(wheel, house)
    return wheel, house


def fry(image: Path, repo: Path, house: Path, wheel: Path) -> dict:
    t0 = time.monotonic()
    host = testhost.BootedHost(image, network="private", mask=(), apt_repo=repo,
                               binds_ro=[(str(house), "/srv/wheels"),
                                         (str(ROOT / "ami"), "/srv/ami"),
                                         (str(ROOT / "recipes"), "/srv/recipes")])
    host.start()
    try:
        booted = time.monotonic() - t0
        host.run(["sh", "/srv/ami/install.sh", f"/srv/wheels/{wheel.name}"], timeout=900)
        installed = time.monotonic() - t0
        run = host.run_unit([TRUEUP, "run", "/srv/recipes", "--runlist", "base,web", "--json"],
                            timeout=900)
        report = json.loads(run.stdout)
        ready = _ready(host, t0)
        return {"boot_s": round(booted, 2), "install_s": round(installed - booted, 2),
                "converge_s": report["duration_s"], "ready_s": round(ready, 2),
                "changed": report["totals"]["changed"]}
    finally:
        host.stop()


def bake(image: Path, repo: Path, house: Path, tmp: Path) -> dict:
    out = tmp / "img"
    t0 = time.monotonic()
    argv = ["packer", "build", "-color=false", f"-var=out={out}", f"-var=base={image}",
            f"-var=wheels={house}", f"-var=bundle={ROOT / 'recipes'}", "-var=runlist=base,web",
            f"-var=apt_repo={repo}", f"-var=python={sys.executable}", "."]
    subprocess.run(argv, cwd=ROOT / "packer" / "local", check=True, capture_output=True,
                   env={**os.environ, "CHECKPOINT_DISABLE": "1"}, timeout=1800)
    build_s = time.monotonic() - t0
    try:
        rootfs = Path(subprocess.run([sys.executable, str(STEP), "mount", str(out)], check=True,
                                     capture_output=True, text=True).stdout.strip())
        manifest = json.loads((rootfs / "var/lib/trueup/bake/manifest.json").read_text())
        baked_s = sum(r["duration_ms"] for r in manifest["resources"]) / 1000
        t1 = time.monotonic()
        host = testhost.BootedHost(rootfs, network="private", mask=(), apt_repo=repo,
                                   boot_timeout=300)
        host.start()
        try:
            booted = time.monotonic() - t1
            ready = _ready(host, t1)
            report = json.loads(host.run([TRUEUP, "report", "--json"]).stdout)
            return {"build_s": round(build_s, 2), "bake_converge_s": round(baked_s, 2),
                    "boot_s": round(booted, 2), "converge_s": report["duration_s"],
                    "ready_s": round(ready, 2), "changed": report["totals"]["changed"],
                    "phase": report["phase"]}
        finally:
            host.stop()
    finally:
        subprocess.run([sys.executable, str(STEP), "clean", str(out)], check=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="", help="also write the figures here (JSON)")
    args = p.parse_args()
    image, repo = testhost.find_image(), testhost.find_repo()
    with tempfile.TemporaryDirectory(prefix="trueup-bake-bench-") as name:
        tmp = Path(name)
        wheel, house = _wheels(tmp)
        load = os.getloadavg()
        fried = fry(image, repo, house, wheel)
        baked = bake(image, repo, house, tmp)
    ratio = baked["converge_s"] / fried["converge_s"] if fried["converge_s"] else None
    result = {"fry": fried, "bake": baked,
              "converge_ratio": round(ratio, 3) if ratio is not None else None,
              "ready_ratio": round(baked["ready_s"] / fried["ready_s"], 3),
              "loadavg_at_start": [round(x, 2) for x in load],
              "when": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
