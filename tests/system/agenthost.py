"""trueup inside a booted test host: start one, run the CLI there, read what happened.

Shared by the system tests that converge recipes or resource kinds for real. Every host
started here has its own network namespace (``network="private"``): recipes set ``net.*``
sysctls, which in the machine's namespace would change the machine itself. Packages come
from the local apt repository that ``.ci/testhosts-setup.sh`` builds (``find_repo()``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testhost import REPO_ROOT, BootedHost

TRUEUP = "/opt/trueup/venv/bin/trueup"
BUNDLE = "/srv/recipes"  # the repository's recipes/, copied into the host


def start_agent_host(image: Path, repo: Path, wheel: Path, *, recipes: bool = True,
                     network: str = "private", mask: tuple[str, ...] = ()) -> BootedHost:
    """A booted host (private network, local apt repo) with trueup installed from ``wheel``.

    ``ssh.service`` is not masked by default: the base recipe manages sshd, and with a
    private network namespace port 22 clashes with nothing. A host on the machine's
    network (``network="host"``, to reach a server on its loopback) must mask it.
    """
    host = BootedHost(image, network=network, mask=mask, apt_repo=repo)
    host.start()
    try:
        host.install_wheel(wheel)
        if recipes:
            host.put(REPO_ROOT / "recipes", BUNDLE)
    except BaseException:
        host.stop()
        raise
    return host


def diagnosed_agent_host(image: Path, repo: Path, wheel: Path, request: Any,
                         **options: Any) -> Iterator[BootedHost]:
    """:func:`start_agent_host` (with its keyword ``options``) for a fixture
    (``yield from``): the host is stopped after its tests, and its journal and failed
    units are printed if one of them failed."""
    failed_before = request.session.testsfailed
    host = start_agent_host(image, repo, wheel, **options)
    try:
        yield host
    finally:
        if request.session.testsfailed > failed_before and host.running:
            capture = request.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled():  # teardown output would be hidden
                print(f"\n=== diagnostics of {host.name} ===\n{host.diagnostics()}")
        host.stop()


@dataclass
class Outcome:
    """One trueup invocation: exit code, output and (with --json) the report."""

    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def statuses(self) -> dict[str, str]:
        assert self.report is not None, "run with json=True"
        return {r["resource"]: r["status"] for r in self.report["resources"]}

    def changed(self) -> set[str]:
        return {ident for ident, status in self.statuses().items() if status == "changed"}

    def resource(self, ident: str) -> dict[str, Any]:
        assert self.report is not None
        for res in self.report["resources"]:
            if res["resource"] == ident:
                return res
        raise AssertionError(f"{ident} not in the report: {sorted(self.statuses())}")

    def __str__(self) -> str:
        return (f"exit {self.returncode}\n--- stdout ---\n{self.stdout[-6000:]}\n"
                f"--- stderr ---\n{self.stderr[-3000:]}")


def trueup(host: BootedHost, *args: str, json_report: bool = True,
           timeout: float = 600) -> Outcome:
    """Run ``trueup ARGS`` inside the host as a transient systemd service (as in production:
    its own unit in system.slice), with ``--json`` unless told otherwise."""
    argv = [TRUEUP, *args] + (["--json"] if json_report else [])
    done = host.run_unit(argv, check=False, timeout=timeout)
    report = None
    if json_report and done.stdout.strip().startswith("{"):
        report = json.loads(done.stdout)
    return Outcome(done.returncode, done.stdout, done.stderr, report)


def write_recipe(host: BootedHost, name: str, recipe: dict[str, Any]) -> None:
    """Add recipe ``name`` to the host's bundle (JSON is YAML)."""
    host.write_file(f"{BUNDLE}/{name}/recipe.yml", json.dumps(recipe, indent=2) + "\n")


# A fingerprint of everything a resource kind or recipe may change: packages, users and
# groups, files under /etc, /home, /var/www and /srv (owner, mode, size, mtime, content),
# unit states, the sysctl the recipes manage. trueup's own state (/var/lib/trueup) and the
# bundle copied in are left out.
_SNAPSHOT = r"""
set -eu
echo '## packages'
dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' | sort
echo '## files'
find /etc /home /var/www /srv /usr/local -xdev \
    \( -path /srv/repo -o -path /srv/recipes -o -path /etc/ld.so.cache \) -prune -o \
    -printf '%p %y %m %U:%G %s %T@ %l\n' 2>/dev/null | sort
echo '## content'
find /etc /home /var/www -xdev -path /etc/ld.so.cache -prune -o -type f \
    -exec md5sum {} + 2>/dev/null | sort -k2
echo '## units'
systemctl list-units --all --plain --no-legend --no-pager \
    | awk '$1 !~ /^run-/ {print $1, $2, $3, $4}' | sort
systemctl list-unit-files --plain --no-legend --no-pager | sort
echo '## sysctl'
cat /proc/sys/net/core/somaxconn
"""


def snapshot(host: BootedHost) -> str:
    return host.run(["/bin/sh", "-c", _SNAPSHOT], timeout=120).stdout


def snapshot_diff(before: str, after: str, limit: int = 40) -> str:
    """The lines that differ, for assertion messages."""
    import difflib

    lines = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                   "before", "after", lineterm="", n=0)
             if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return "\n".join(lines[:limit]) + (f"\n... {len(lines) - limit} more" if len(lines) > limit
                                       else "")


# --- the journal and unit starts ----------------------------------------------------------

def journal_cursor(host: BootedHost) -> str:
    """The cursor of the journal's newest entry (a mark to count events after)."""
    host.run(["logger", "-t", "trueup-test", "mark"])
    host.run(["journalctl", "--sync"])
    out = host.run(["journalctl", "-n", "1", "-o", "json", "--no-pager"]).stdout
    return json.loads(out.splitlines()[-1])["__CURSOR"]


def unit_events(host: BootedHost, unit: str, after: str) -> list[str]:
    """What systemd logged for ``unit`` after the cursor: "starting", "started", "stopping",
    "stopped", "reloading", "reloaded" (from the stable catalog MESSAGE_IDs)."""
    ids = {
        "7d4958e842da4a758f6c1cdc7b36dcc5": "starting",
        "39f53479d3a045ac8e11786248231fbf": "started",
        "de5b426a63be47a7b6ac3eaac82e2f6f": "stopping",
        "9d1aaa27d60140bd96365438aad20286": "stopped",
        "d34d037fff1847e6ae669a370e694725": "reloading",
        "7b05ebc668384222baa8881179cfda54": "reloaded",
    }
    host.run(["journalctl", "--sync"])
    # No journal matches here: journalctl 252 with --after-cursor and matches skips the
    # first matching entry when the cursor's own entry does not match.
    out = host.run(["journalctl", f"--after-cursor={after}", "-o", "json", "--no-pager"],
                   timeout=60).stdout
    events = []
    for line in out.splitlines():
        entry = json.loads(line)
        if entry.get("_PID") == "1" and entry.get("UNIT") == unit:
            kind = ids.get(entry.get("MESSAGE_ID", ""))
            if kind:
                events.append(kind)
    return events


def main_start(host: BootedHost, unit: str) -> int:
    """When the unit's main process last started (monotonic µs); changes on every start."""
    out = host.run(["systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "--value",
                    unit]).stdout
    return int(out.strip() or 0)


def is_active(host: BootedHost, unit: str) -> bool:
    return host.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0


def http_status(host: BootedHost, url: str) -> str:
    """The HTTP status code of ``url`` fetched inside the host (python, not curl: the
    recipes install curl, so a test of them must not depend on it)."""
    code = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        "    print(urllib.request.urlopen(sys.argv[1], timeout=10).status)\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
        "except OSError as e:\n"
        "    print('error', e)\n"
    )
    return host.run(["python3", "-c", code, url]).stdout.strip()


def run_recipe_checks(host: BootedHost, *recipes: str) -> subprocess.CompletedProcess[str]:
    """Run the recipes' own testinfra checks (``recipes/<name>/tests``) against the host,
    the way an operator would: ``pytest recipes/<name>/tests --hosts=nsenter://<host>``.

    ``-p testhost`` loads the harness, which registers the ``nsenter`` backend.
    """
    paths = [f"recipes/{name}/tests" for name in recipes]
    argv = [sys.executable, "-m", "pytest", *paths, f"--hosts=nsenter://{host.name}",
            "-p", "testhost", "-p", "no:cacheprovider", "-q", "-rA", "--tb=line",
            "--no-header"]
    env = {"PYTHONPATH": str(REPO_ROOT / "tests"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
