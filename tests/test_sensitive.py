"""Sensitive resources of every kind: none of their values in output, reports, state or logs.

The promise is kept by the engine (agent/engine/sensitive.py), not by each kind. Two
tests per kind show it: its SENSITIVE_EXAMPLE, with a canary in the values it shows,
goes through the real command line (converged where this host allows; the SYSTEM kinds,
which change the whole host, are planned); and a fake check that returns the canary goes
through the real runner, report and ``trueup report``.
"""

from __future__ import annotations

import io
import json
import re
import stat
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.aws.secrets import SecretStore
from agent.compile.loader import Bundle
from agent.compile.prepare import Options, prepare
from agent.config import Config
from agent.engine import report as reports
from agent.engine import sensitive
from agent.engine.backups import Backups
from agent.engine.runner import Runner
from agent.errors import ResourceError
from agent.host.facts import Facts
from agent.host.system import System
from agent.model import Change
from agent.redact import HIDDEN
from agent.resources import Resource, load_all
from tests.helpers import example_bundle, fill, write_bundle

KINDS = load_all()
CANARY = "58213407"  # digits: fit free text, names and numeric fields (uid, gid, sysctl value)
# kinds whose example holds a canary (a service shows nothing but its name, its identity)
WITH_CANARY = [k for k, c in KINDS.items() if "{canary}" in json.dumps(c.SENSITIVE_EXAMPLE)]


def _bundle(cls: type[Resource], tmp_path: Path) -> Path:
    tree = tmp_path / "t"
    tree.mkdir()
    example = fill(cls.SENSITIVE_EXAMPLE, tmp=str(tree), canary=CANARY)
    return example_bundle(example, tree, tmp_path / "bundle")


def _state_files(state: Path) -> dict[str, str]:
    """Every file under the state dir (reports, history, caches, backups): its text."""
    return {str(p): p.read_bytes().decode("utf-8", "replace")
            for p in state.rglob("*") if p.is_file()}


def _assert_no_canary(texts: dict[str, str], kind: str) -> None:
    for where, text in texts.items():
        assert CANARY not in text, f"{kind}: the canary leaked into {where}"


def test_every_kind_has_a_sensitive_example() -> None:
    for kind, cls in KINDS.items():
        example = cls.SENSITIVE_EXAMPLE
        assert next(iter(example), None) == kind, f"{kind} has no SENSITIVE_EXAMPLE"
        assert example.get("sensitive") is True, kind
    assert set(KINDS) - set(WITH_CANARY) == {"service"}


@pytest.mark.parametrize("kind", WITH_CANARY)
def test_sensitive_example_leaks_nowhere(kind: str, tmp_path: Path, trueup, env) -> None:
    cls = KINDS[kind]
    bundle = str(_bundle(cls, tmp_path))
    log = tmp_path / "trueup.log"
    debug = {"TRUEUP_LOG_LEVEL": "DEBUG", "TRUEUP_LOG_FILE": str(log)}
    outputs = {"plan": trueup("plan", bundle, env=debug),
               "plan --json": trueup("plan", bundle, "--json", env=debug)}
    if not cls.SYSTEM:  # SYSTEM kinds converge on booted hosts only (tests/system)
        outputs["run --diff"] = trueup("run", bundle, "--diff", env=debug)
        outputs["run --json"] = trueup("run", bundle, "--json", env=debug)
    outputs["report"] = trueup("report", env=debug)
    outputs["report --json"] = trueup("report", "--json", env=debug)

    texts = {name: out.stdout + out.stderr for name, out in outputs.items()}
    texts["log file"] = log.read_text()
    state = Path(env["TRUEUP_STATE_DIR"])
    texts.update(_state_files(state))
    assert any("history" in where for where in texts)
    _assert_no_canary(texts, kind)
    (planned,) = json.loads(outputs["plan --json"].stdout)["resources"]
    assert planned["status"] in ("changed", "failed"), f"{kind}: nothing to show: {planned}"
    if planned["status"] == "changed" and any(c["field"] != "state"
                                              for c in planned["changes"]):
        assert "(sensitive" in outputs["plan"].stdout  # says what it hides
    _assert_backups_private(state, expected=not cls.SYSTEM and "_setup" in cls.SENSITIVE_EXAMPLE)


def _assert_backups_private(state: Path, expected: bool) -> None:
    kept = [p for p in (state / "backup").rglob("*") if p.is_file()]
    assert bool(kept) == expected, kept
    for path in kept:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent


def _compile(cls: type[Resource], tmp_path: Path) -> tuple:
    bundle = _bundle(cls, tmp_path)
    prepared = prepare(Options(source=str(bundle), runlist="r"),
                       Config(state_dir=str(tmp_path / "scratch")), Bundle(str(bundle)),
                       System(), Backups(str(tmp_path / "backups")), Facts(), SecretStore())
    (node,) = prepared.catalog.nodes
    assert node.res.sensitive
    return prepared.catalog, node.res


@pytest.mark.parametrize("outcome", ["noop", "applied", "failed"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_engine_masks_what_any_kind_returns(kind: str, outcome: str, tmp_path: Path,
                                                trueup, env) -> None:
    catalog, res = _compile(KINDS[kind], tmp_path)
    plan = [Change("secret", f"old-{CANARY}", f"new-{CANARY}", f"-old-{CANARY}\n+new-{CANARY}\n")]
    checks = iter([plan, []])
    applied: list[list[Change]] = []

    def apply(changes: list[Change]) -> None:
        applied.append(changes)
        if outcome == "failed":
            raise ResourceError(f"exited with status 3: token {CANARY} refused")

    res.check = lambda: next(checks)  # the fake check: whatever a kind might return
    res.apply = apply
    noop = outcome == "noop"
    out = io.StringIO()
    console = reports.Console(out, "never", show_diff=True, noop=noop)
    (result,) = Runner(catalog, System(), noop=noop, on_result=console.result).run()
    report = reports.build({"run_id": "fake", "mode": "noop" if noop else "run"}, [result],
                           time.time())
    report["exit_code"] = 4 if outcome == "failed" else 0
    reports.store(env["TRUEUP_STATE_DIR"], report, keep=5)
    console.summary(report)

    shown = {"console": out.getvalue(), "--json": reports.dumps(report)}
    for args in (("report",), ("report", "--json")):
        done = trueup(*args)
        assert done.returncode == 0, done.stderr
        shown[" ".join(args)] = done.stdout + done.stderr
    shown.update(_state_files(Path(env["TRUEUP_STATE_DIR"])))
    _assert_no_canary(shown, kind)
    assert applied == ([] if noop else [plan])  # apply was given the real values
    assert result.changes == [Change("secret", HIDDEN, HIDDEN)]
    assert result.error == ("exited with status 3" if outcome == "failed" else None)
    assert f"{res.ident}  secret (sensitive)" in shown["console"]
    assert f"{res.ident}  secret (sensitive)" in shown["report"]


def test_failed_notification_of_a_sensitive_resource_keeps_its_secret(tmp_path, trueup, env):
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - file: {tmp_path}/conf
            content: "x\\n"
            notify: command:reload
          - command: reload
            run: [/bin/sh, -c, 'echo "token $0 refused" >&2; exit 3', "{CANARY}"]
            refresh_only: true
            sensitive: true
        """}, runlist="app")
    out = trueup("run", str(bundle))
    texts = {"run": out.stdout + out.stderr, "report": trueup("report").stdout}
    texts.update(_state_files(Path(env["TRUEUP_STATE_DIR"])))
    _assert_no_canary(texts, "command")
    assert out.returncode == 4
    assert "failed       command:reload  run triggered by file:" in out.stdout
    assert "run failed: exited with status 3" in out.stdout


def test_a_first_clause_holding_a_value_gives_way_to_a_generic_error(tmp_path, trueup):
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - directory: {tmp_path}/private
            owner: no-such-user-{CANARY}
            sensitive: true
        """}, runlist="app")
    (tmp_path / "private").mkdir()  # so check looks the owner up: "no such user '...'"
    out = trueup("plan", str(bundle))
    assert CANARY not in out.stdout + out.stderr
    assert "failed (details hidden: the resource is sensitive)" in out.stdout


def test_parse_cache_holds_no_recipe_with_a_sensitive_resource(tmp_path, trueup, env):
    parsed = Path(env["TRUEUP_STATE_DIR"]) / "cache" / "parsed"
    recipe = f"""
        resources:
          - file: {tmp_path}/token
            content: "{CANARY}"
        """
    bundle = write_bundle(tmp_path / "bundle", {"app": recipe}, runlist="app")
    assert trueup("plan", str(bundle)).returncode == 0
    def cached() -> list[Path]:
        return [p for p in parsed.rglob("*") if p.is_file()]

    assert len(cached()) == 1  # an ordinary recipe is cached
    (bundle / "app" / "recipe.yml").write_text(
        (bundle / "app" / "recipe.yml").read_text() + "    sensitive: true\n")
    assert trueup("plan", str(bundle)).returncode == 0
    assert cached() == []  # and its entry goes once it holds a sensitive one


@given(st.text(alphabet=st.sampled_from("ab :;|\n\t\r\x85")))
def test_a_sensitive_error_keeps_what_came_before_the_first_separator(message):
    res = SimpleNamespace(sensitive=True, spec={}, ident="command:x")
    expected = re.split(r"[:;|\n]", message, maxsplit=1)[0].strip()
    assert sensitive.shown_error(res, message) == (expected or sensitive.GENERIC_ERROR)
