"""Time trueup on booted Debian 12 test hosts: base + web first run and no-op, 50 packages.

    .venv/bin/python bench/hosts.py [--hosts 3] [--noops 5] [--out bench/HOSTS.md]

Needs root and the test-host image and apt repository (``bash .ci/testhosts-setup.sh``).
Each host is fresh (systemd-nspawn, private network namespace, packages from the local
apt repository), trueup is installed from a wheel of this checkout, and every timed
command is ``trueup run`` inside the host as a transient systemd service, as in
production. The wall clock is taken inside the host around the trueup process (start-up,
imports, loading and the report included; the nsenter/systemd-run plumbing excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "system")]

import testhost  # noqa: E402
from agenthost import BUNDLE, TRUEUP, start_agent_host, write_recipe  # noqa: E402

TIMER = (
    "import json, subprocess, sys, time\n"
    "t = time.monotonic()\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "wall = time.monotonic() - t\n"
    "print(json.dumps({'wall': wall, 'rc': done.returncode, 'out': done.stdout,\n"
    "                  'err': done.stderr[-2000:]}))\n"
)


def timed(host: testhost.BootedHost, *args: str) -> tuple[float, dict]:
    """Wall seconds of ``trueup ARGS --json`` inside the host, and its report."""
    res = host.run_unit(["python3", "-c", TIMER, TRUEUP, *args, "--json"], timeout=900)
    data = json.loads(res.stdout)
    if data["rc"] not in (0, 2):
        raise SystemExit(f"trueup {' '.join(args)} exited {data['rc']}:\n{data['out'][-3000:]}"
                         f"\n{data['err']}")
    return data["wall"], json.loads(data["out"])


def build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "dist", "__pycache__", "*.egg-info",
                                  ".pytest_cache", "results")
    shutil.copytree(ROOT, src, ignore=skip, symlinks=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp / "dist"), str(src)], check=True)
    return next((tmp / "dist").glob("trueup-*.whl"))


def fmt(values: list[float]) -> str:
    return (f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f}, "
            f"n={len(values)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=3, help="fresh hosts (first runs)")
    ap.add_argument("--noops", type=int, default=5, help="no-op runs on each host")
    ap.add_argument("--out", default=str(ROOT / "bench" / "HOSTS.md"))
    opts = ap.parse_args()
    problems = testhost.missing_prerequisites()
    if problems:
        raise SystemExit("; ".join(problems))
    image, repo = testhost.find_image(), testhost.find_repo()
    load_before = os.getloadavg()
    first, noop, first_internal, noop_internal = [], [], [], []
    fifty, fifty_reads, boot, install = [], [], [], []
    first_reads: dict = {}
    noop_reads: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        for _ in range(opts.hosts):
            t0 = time.monotonic()
            host = start_agent_host(image, repo, wheel)
            install.append(time.monotonic() - t0)
            boot.append(host.boot_seconds or 0.0)
            try:
                wall, report = timed(host, "run", BUNDLE, "--runlist", "base,web")
                assert report["totals"]["failed"] == 0, report["totals"]
                first.append(wall)
                first_internal.append(report["duration_s"])
                first_reads = report.get("facts", {}).get("reads", {})
                for _ in range(opts.noops):
                    wall, report = timed(host, "run", BUNDLE, "--runlist", "base,web")
                    assert report["totals"]["changed"] == 0, report["totals"]
                    noop.append(wall)
                    noop_internal.append(report["duration_s"])
                    noop_reads = report.get("facts", {}).get("reads", {})
                installed = host.run(["dpkg-query", "-W", "-f",
                                      "${db:Status-Abbrev} ${Package}\n"]).stdout
                names = sorted(line.split()[1] for line in installed.splitlines()
                               if line.startswith("ii"))[:50]
                write_recipe(host, "fifty", {"resources": [{"package": n} for n in names]})
                for _ in range(opts.noops):
                    wall, report = timed(host, "run", BUNDLE, "--runlist", "fifty")
                    assert report["totals"]["unchanged"] == 50, report["totals"]
                    fifty.append(wall)
                    fifty_reads.append(report["facts"]["reads"].get("deb.DebPackages"))
            finally:
                host.stop()
    load_after = os.getloadavg()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    first_what = ("**first run**, base + web on a fresh host (18 resources; apt installs sudo, "
                  "curl, less, tzdata, nginx and their dependencies from the local repository)")
    rows = [
        (first_what, fmt(first), f"{statistics.median(first_internal):.2f} s"),
        ("**no-op run**, base + web, converged host", fmt(noop),
         f"{statistics.median(noop_internal):.2f} s"),
        ("no-op run of 50 `package:` resources (all installed)", fmt(fifty), ""),
    ]
    table = "\n".join(f"| {what} | {wall} | {own} |" for what, wall, own in rows)
    text = f"""# trueup on booted test hosts

Measured by `bench/hosts.py` on {when}: {os.cpu_count()} cores, load average
{load_before[0]:.2f} before and {load_after[0]:.2f} after ({platform.node()}). Each host is
a fresh Debian 12 booted with systemd-nspawn (volatile overlay of the cached image, own
network namespace, packages from the local apt repository built by
`.ci/testhosts-setup.sh`), with trueup installed from a wheel of this checkout into
/opt/trueup/venv. Every figure is the wall clock of `trueup run ... --json` inside the
host, run as a transient systemd service: median (min-max, n).

| what | wall | trueup's own `duration_s` (median) |
|---|---|---|
{table}

- Package fact (`dpkg -l`, pyinfra's `deb.DebPackages`) reads in the 50-package no-op run:
  **{sorted(set(fifty_reads))}** per run (all {len(fifty_reads)} runs). The test
  `tests/system/test_recipes.py::test_noop_run_of_50_packages_reads_the_package_fact_once`
  asserts it, and the JSON report shows it under `facts.reads`.
- Fact reads in a base + web no-op run: `{json.dumps(noop_reads, sort_keys=True)}`
  (a fact with arguments counts once per argument: `files.Directory` per user home,
  `systemd.*` per service). In the first run:
  `{json.dumps(first_reads, sort_keys=True)}`: facts are read again after a resource
  changed what they describe (a package install forgets them all: maintainer scripts add
  users, start services ...).
- Host set-up, not included above: boot {fmt(boot)}; boot + venv restore + wheel
  install + recipes copied in {fmt(install)}.
- The first run's time is mostly apt (dpkg unpacking, nginx's postinst); the local file
  repository takes the network out of it, so an instance fetching from a mirror is slower.
"""
    Path(opts.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
