"""package on a fresh cloud image: no apt lists, no ``update:`` in the recipe.

The booted host installs from the local apt repository (private network); its apt lists
are emptied first, as on an instance launched from a cloud image. ``update: auto`` (the
default) must refresh the index once in the first run, before the first install, and
never again while the index is fresh: not in a run that changes nothing, not in a run
that installs a package apt already knows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agenthost import TRUEUP, Outcome, start_agent_host, trueup

pytestmark = pytest.mark.host

BUNDLE = "/srv/bundle"
ARGS = (BUNDLE, "--runlist", "tools", "--detailed-exitcodes")
STAMP = "/var/lib/apt/periodic/update-success-stamp"
INSTALL = ('DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::="--force-confdef" '
           '-o Dpkg::Options::="--force-confold" install')
# every apt list (a file, or a link into a file: repository) and the stamp, with their
# mtimes: what a refresh rewrites
INDEX = (f"find /var/lib/apt/lists -maxdepth 1 ! -type d ! -name lock -printf '%p %T@\\n'; "
         f"find {STAMP} -printf '%p %T@\\n' 2>/dev/null; true")


def changes(outcome: Outcome, ident: str) -> list[tuple[str, str | None, str]]:
    return [(c["field"], c["before"], c["after"])
            for c in outcome.resource(ident).get("changes", [])]


def test_a_fresh_image_installs_without_update_and_refreshes_once(
        testhost_image: Path, local_repo: Path, trueup_wheel: Path) -> None:
    host = start_agent_host(testhost_image, local_repo, trueup_wheel, recipes=False)
    try:
        host.run(["/bin/sh", "-c", "find /var/lib/apt/lists -maxdepth 1 ! -type d ! -name lock "
                  f"-delete; rm -f {STAMP}"])
        assert "_Packages" not in host.run(["/bin/sh", "-c", INDEX]).stdout
        assert host.run(["dpkg", "-s", "jq"], check=False).returncode != 0
        host.write_file(f"{BUNDLE}/tools/recipe.yml", json.dumps(
            {"resources": [{"package": "jq"}, {"package": "hello"}]}, indent=2) + "\n")

        first = trueup(host, "run", *ARGS)
        assert first.returncode == 2, first
        assert changes(first, "package:jq") == [
            ("update", "no package lists", "apt-get update"),
            ("stamp", None, STAMP),
            ("command", None, f"{INSTALL} jq")]
        # once per run: the second package finds the index refreshed
        assert changes(first, "package:hello") == [("command", None, f"{INSTALL} hello")]
        host.run(["dpkg", "-s", "jq", "hello"])
        index = host.run(["/bin/sh", "-c", INDEX]).stdout
        assert "_Packages" in index and STAMP in index

        second = trueup(host, "run", *ARGS)
        assert second.returncode == 0, second
        assert second.statuses() == {"package:jq": "unchanged", "package:hello": "unchanged"}
        assert host.run(["/bin/sh", "-c", INDEX]).stdout == index, "the no-op run refreshed"

        # an install while the index is fresh (the stamp is new, whatever the lists' dates)
        host.run(["dpkg", "--remove", "hello"])
        third = trueup(host, "run", *ARGS)
        assert third.returncode == 2, third
        assert changes(third, "package:hello") == [("command", None, f"{INSTALL} hello")]
        assert host.run(["/bin/sh", "-c", INDEX]).stdout == index, "a fresh index was refreshed"
        host.run(["dpkg", "-s", "hello"])

        plan = trueup(host, "plan", *ARGS)
        assert plan.returncode == 0, plan
    except BaseException:
        print(f"=== diagnostics of {host.name} ({TRUEUP}) ===\n{host.diagnostics()}")
        raise
    finally:
        host.stop()
