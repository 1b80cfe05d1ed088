"""The two ported roles (recipes/nginx, recipes/node_exporter) on a booted Debian 12 host.

For each recipe, on one host (private network, local apt repository): the first run
converges (exit 2), the recipe's own testinfra suite passes (what nginxinc's nginx role and
cloudalchemy's node_exporter role check), a second run reports 0 changes, and ``/`` is still
root:root 0755. The recipes use the kinds, loops and conditions, never a shell ``command``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from agenthost import BUNDLE, diagnosed_agent_host, run_recipe_checks, trueup
from testhost import REPO_ROOT, BootedHost

pytestmark = pytest.mark.host

PORTS = ["node_exporter", "nginx"]


@pytest.fixture(scope="module")
def host(testhost_image: Path, local_repo: Path, trueup_wheel: Path,
         request: pytest.FixtureRequest) -> Iterator[BootedHost]:
    yield from diagnosed_agent_host(testhost_image, local_repo, trueup_wheel, request)


@pytest.mark.parametrize("recipe", PORTS)
def test_the_recipe_uses_kinds_not_commands(recipe: str) -> None:
    data = yaml.safe_load((REPO_ROOT / "recipes" / recipe / "recipe.yml").read_text())
    kinds = {next(iter(res)) for res in data["resources"]}
    assert "command" not in kinds, kinds
    assert any("loop" in res for res in data["resources"])
    assert any("when" in res for res in data["resources"])


@pytest.mark.parametrize("recipe", PORTS)
def test_the_port_converges_passes_its_checks_and_then_changes_nothing(
        host: BootedHost, recipe: str) -> None:
    args = (BUNDLE, "--runlist", recipe, "--detailed-exitcodes")
    first = trueup(host, "run", *args)
    failed = [(r["resource"], r.get("error")) for r in (first.report or {}).get("resources", [])
              if r.get("error")]
    assert first.returncode == 2, (failed, str(first)[-2000:])
    checks = run_recipe_checks(host, recipe)
    passed = re.search(r"(\d+) passed", checks.stdout)
    assert checks.returncode == 0 and passed and int(passed.group(1)) >= 6, (
        checks.stdout[-4000:] + checks.stderr[-2000:])
    second = trueup(host, "run", *args)
    changed = [(r["resource"], r.get("changes"), r.get("error"))
               for r in (second.report or {}).get("resources", [])
               if r["status"] not in ("unchanged", "skipped-by-condition")]
    assert second.returncode == 0 and not changed, (changed, str(second)[-2000:])
    assert host.run(["stat", "-c", "%U:%G %a", "/"]).stdout.strip() == "root:root 755"
