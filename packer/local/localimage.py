"""The local image build: the steps that packer/local/local.pkr.hcl runs with shell-local.

An image here is an overlay on the OS-only test image (``.ci/testhosts-setup.sh``): the
build writes into ``OUT/upper``, and the baked image is ``OUT/upper`` over the base,
mounted read-only at ``OUT/rootfs`` when a host boots from it. Nothing is copied whole.

    python3 localimage.py prepare OUT BASE AMI_DIR WHEELS BUNDLE
        mount OUT/build (overlay, writable) and copy ami/, the wheels and the bundle in
    python3 localimage.py bake OUT [--runlist a,b] [--apt-repo DIR]
        boot OUT/build writable (systemd-nspawn, private network), run ami/provision.sh
        (install.sh, units, trueup bake) and ami/seal.sh inside, shut it down cleanly
    python3 localimage.py finish OUT        unmount the build root; OUT/upper is the image
    python3 localimage.py mount OUT         OUT/rootfs: the image, read-only (print path)
    python3 localimage.py clean OUT         unmount everything and remove OUT

Runs as root (mounts, systemd-nspawn). The booted-host harness is tests/testhost.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = "/var/tmp/trueup-build"  # inside the image: ami/, wheels/
BUNDLE = "/srv/trueup/bundle"  # inside the image: the bundle it was baked from


def _meta(out: Path) -> dict:
    return json.loads((out / "image.json").read_text())


def _mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mountinfo") as fh:
        return any(line.split()[4] == target for line in fh)


def _umount(path: Path) -> None:
    if path.exists() and _mounted(path):
        subprocess.run(["umount", str(path)], check=True)


def prepare(out: Path, base: Path, ami: Path, wheels: Path, bundle: Path) -> None:
    if not (base / "usr/bin").is_dir():
        sys.exit(f"localimage: {base} is not a rootfs")
    for sub in ("upper", "work", "build"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / "image.json").write_text(json.dumps({"base": str(base.resolve())}) + "\n")
    opts = f"lowerdir={base.resolve()},upperdir={out.resolve()}/upper,workdir={out.resolve()}/work"
    subprocess.run(["mount", "-t", "overlay", "-o", opts, "trueup-bake", str(out / "build")],
                   check=True)
    root = out / "build"
    shutil.copytree(ami, root / BUILD.lstrip("/") / "ami", dirs_exist_ok=True)
    shutil.copytree(wheels, root / BUILD.lstrip("/") / "wheels", dirs_exist_ok=True)
    shutil.copytree(bundle, root / BUNDLE.lstrip("/"), dirs_exist_ok=True)
    print(f"localimage: build root {root} (over {base})")


def bake(out: Path, runlist: str, apt_repo: str, warm: bool) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from testhost import BootedHost

    root = out / "build"
    wheels = sorted((root / BUILD.lstrip("/") / "wheels").glob("trueup-*.whl"))
    if not wheels:
        sys.exit("localimage: no trueup-*.whl among the wheels")
    host = BootedHost(root, network="private", mask=(), volatile=False,
                      apt_repo=apt_repo or None, boot_timeout=120)
    host.start()
    try:
        if warm:  # the dependencies from the harness's cached venv: install.sh then
            host.install_wheel(wheels[-1])  # finds them and installs trueup only
        env = {"TRUEUP_WHEEL": f"{BUILD}/wheels/{wheels[-1].name}", "TRUEUP_BUNDLE": BUNDLE,
               "TRUEUP_RUNLIST": runlist}
        for script in ("provision.sh", "seal.sh"):
            if script == "seal.sh":  # who the build host was, to compare with its instances
                _record_build_host(host, out)
            done = host.run(["sh", f"{BUILD}/ami/{script}"], check=False, timeout=1200, env=env)
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            if done.returncode != 0:
                sys.exit(f"localimage: {script} exited {done.returncode}")
        host.run(["rm", "-rf", BUILD])
    finally:
        host.stop(graceful=True, timeout=30)


def _record_build_host(host: object, out: Path) -> None:
    keys = host.run(["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"]).stdout  # type: ignore[attr-defined]
    machine_id = host.run(["cat", "/etc/machine-id"]).stdout.strip()  # type: ignore[attr-defined]
    (out / "build-host.json").write_text(json.dumps({"machine_id": machine_id,
                                                     "host_keys": keys.split("\n")}) + "\n")


def finish(out: Path) -> None:
    _umount(out / "build")
    shutil.rmtree(out / "work", ignore_errors=True)
    (out / "build").rmdir()
    print(f"localimage: image {out / 'upper'} over {_meta(out)['base']}")


def mount(out: Path) -> Path:
    rootfs = out / "rootfs"
    rootfs.mkdir(exist_ok=True)
    if not _mounted(rootfs):
        opts = f"lowerdir={out.resolve()}/upper:{_meta(out)['base']}"
        subprocess.run(["mount", "-t", "overlay", "-o", opts, "trueup-baked", str(rootfs)],
                       check=True)
    return rootfs


def clean(out: Path) -> None:
    for sub in ("rootfs", "build"):
        _umount(out / sub)
    shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="localimage.py")
    sub = p.add_subparsers(dest="step", required=True)
    pre = sub.add_parser("prepare")
    for name in ("out", "base", "ami", "wheels", "bundle"):
        pre.add_argument(name, type=Path)
    bk = sub.add_parser("bake")
    bk.add_argument("out", type=Path)
    bk.add_argument("--runlist", default="")
    bk.add_argument("--apt-repo", default="")
    bk.add_argument("--warm-venv", action="store_true")
    for name in ("finish", "mount", "clean"):
        sub.add_parser(name).add_argument("out", type=Path)
    args = p.parse_args(argv)
    if args.step == "prepare":
        prepare(args.out, args.base, args.ami, args.wheels, args.bundle)
    elif args.step == "bake":
        bake(args.out, args.runlist, args.apt_repo, args.warm_venv)
    elif args.step == "finish":
        finish(args.out)
    elif args.step == "mount":
        print(mount(args.out))
    else:
        clean(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
