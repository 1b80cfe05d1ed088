"""``loop:`` and ``when:``: plan, run, validate and their errors, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.compile.loops import LoopError, condition, loop_items
from agent.compile.render import Renderer
from tests.helpers import snapshot, write_bundle

SITES = """\
    attributes:
      app:
        tls: false
        sites:
          - {name: alpha, port: 8001, enabled: true}
          - {name: beta, port: 8002, enabled: false}
          - {name: gamma, port: 8003, enabled: true}
        caches: {img: "0750", css: "0755"}
    resources:
      - directory: "{{ attributes.root }}"
      - template: "{{ attributes.root }}/{{ item.name }}.conf"
        source: site.conf.j2
        loop: "{{ attributes.app.sites }}"
        when: item.enabled
      - directory: "{{ attributes.root }}/cache-{{ item.key }}"
        mode: "{{ item.value }}"
        loop: "{{ attributes.app.caches }}"
      - file: "{{ attributes.root }}/tls.conf"
        content: "ssl on\\n"
        when: "{{ attributes.app.tls }}"
      - file: "{{ attributes.root }}/host-{{ loop_index }}"
        content: "{{ item }}\\n"
        loop: [one, two]
        when: facts.cpus >= 1
      - file: "{{ attributes.root }}/never"
        content: "x\\n"
        when: "{{ facts.cpus < 1 }}"
"""
SITE_TEMPLATE = "server {{ item.name }} on {{ item.port }} (#{{ loop_index }})\n"


def make(tmp_path: Path, recipe: str = SITES, template: str = SITE_TEMPLATE,
         **recipes: str) -> tuple[Path, Path]:
    target = tmp_path / "target"
    bundle = write_bundle(tmp_path / "bundle", {"site": recipe, **recipes},
                          templates={"site/site.conf.j2": template}, runlist="site",
                          attributes=f"root: {target}\n")
    return bundle, target


def test_plan_shows_each_item_and_what_conditions_keep_out(tmp_path, trueup):
    bundle, target = make(tmp_path)
    out = trueup("plan", str(bundle), "--detailed-exitcodes")
    assert out.returncode == 2, out.stdout + out.stderr
    for name in ("alpha.conf", "gamma.conf", "cache-img", "cache-css", "host-0", "host-1"):
        assert any(line.startswith("would change") and f"{target}/{name} " in line
                   for line in out.stdout.splitlines()), name
    assert "+server alpha on 8001 (#0)" in out.stdout
    assert "+server gamma on 8003 (#2)" in out.stdout
    lines = {line.split()[1]: line for line in out.stdout.splitlines()
             if line.startswith("skipped ")}
    assert set(lines) == {f"template:{target}/beta.conf", f"file:{target}/tls.conf",
                          f"file:{target}/never"}
    assert "when: item.enabled is false for item 1" in lines[f"template:{target}/beta.conf"]
    assert "3 skipped by condition" in out.stdout
    assert not target.exists()


def test_run_converges_the_items_then_changes_nothing(tmp_path, trueup, env):
    bundle, target = make(tmp_path)
    first = trueup("run", str(bundle), "--detailed-exitcodes")
    assert first.returncode == 2, first.stdout + first.stderr
    assert sorted(p.name for p in target.iterdir()) == [
        "alpha.conf", "cache-css", "cache-img", "gamma.conf", "host-0", "host-1"]
    assert (target / "gamma.conf").read_text() == "server gamma on 8003 (#2)\n"
    assert (target / "host-1").read_text() == "two\n"
    assert (target / "cache-img").stat().st_mode & 0o7777 == 0o750
    assert (target / "cache-css").stat().st_mode & 0o7777 == 0o755
    assert "7 changed, 0 failed, 3 skipped by condition" in first.stdout
    # a run lists them in its report, not one by one
    assert not any(line.startswith("skipped") for line in first.stdout.splitlines())

    before = snapshot(target)
    second = trueup("run", str(bundle), "--detailed-exitcodes")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 changed, 0 failed, 3 skipped by condition, 7 unchanged" in second.stdout
    assert snapshot(target) == before

    report = json.loads(Path(env["TRUEUP_STATE_DIR"], "reports/last_run.json").read_text())
    kept_out = {r["resource"]: r for r in report["resources"]
                if r["status"] == "skipped-by-condition"}
    assert set(kept_out) == {f"template:{target}/beta.conf", f"file:{target}/tls.conf",
                             f"file:{target}/never"}
    assert kept_out[f"file:{target}/tls.conf"]["reason"] == \
        "when: {{ attributes.app.tls }} is false"
    assert kept_out[f"file:{target}/tls.conf"]["declared_at"].endswith("site/recipe.yml:18")
    assert report["totals"]["skipped-by-condition"] == 3
    shown = trueup("report")
    assert "3 skipped by condition" in shown.stdout, shown.stdout + shown.stderr


def test_attributes_decide_the_condition(tmp_path, trueup):
    bundle, target = make(tmp_path)
    out = trueup("run", str(bundle), "-a", "app.tls=true")
    assert out.returncode == 0, out.stdout + out.stderr
    assert (target / "tls.conf").read_text() == "ssl on\n"


def test_validate_accepts_loops_and_conditions(tmp_path, trueup):
    bundle, _ = make(tmp_path)
    out = trueup("validate", str(bundle))
    assert out.returncode == 0, out.stdout + out.stderr


def test_duplicate_identity_names_both_items(tmp_path, trueup):
    recipe = """\
        attributes:
          users: [{name: ann, role: web}, {name: bob, role: db}, {name: cy, role: web}]
        resources:
          - file: "{{ attributes.root }}/{{ item.role }}"
            content: "{{ item.name }}\\n"
            loop: "{{ attributes.users }}"
    """
    bundle, target = make(tmp_path, recipe)
    for command in ("run", "plan", "validate"):
        out = trueup(command, str(bundle))
        assert out.returncode == 1, out.stdout + out.stderr
        assert (f"site/recipe.yml:4: duplicate resource file:{target}/web: "
                'item 0 ({"name": "ann", "role": "web"}) and item 2 ({"name": "cy", '
                '"role": "web"}) of this loop both render to that name') in out.stderr
    assert not target.exists()


def test_a_loop_item_clashing_with_another_resource_names_both(tmp_path, trueup):
    recipe = """\
        resources:
          - file: "{{ attributes.root }}/a"
            content: "x"
          - file: "{{ attributes.root }}/{{ item }}"
            content: "y"
            loop: [b, a]
    """
    bundle, target = make(tmp_path, recipe)
    out = trueup("validate", str(bundle))
    assert out.returncode == 1
    assert (f"recipe.yml:4: duplicate resource file:{target}/a (item 1 (\"a\")): already "
            "declared at ") in out.stderr
    assert "recipe.yml:2" in out.stderr


@pytest.mark.parametrize(("fields", "line", "message"), [
    ('loop: "{{ attributes.nope }}"', 4, "loop: 'attributes' has no attribute 'nope'"),
    ("loop: 5", 4, "loop must be a list (or a mapping), not int 5"),
    ('loop: "{{ 5 }}"', 4, "loop must be a list (or a mapping), not int 5"),
    ("when: attributes.nope", 4, "when: 'attributes' has no attribute 'nope'"),
    ("when: \"{{ 'maybe' }}\"", 4, "when gave the string \"maybe\", which is neither true "
                                  "nor false"),
    ("when: [a]", 4, "when must be an expression such as"),
    ("when: 'attributes.root ==='", 4, "when: unexpected '='"),
])
def test_bad_loop_or_condition_is_one_precise_error(tmp_path, trueup, fields, line, message):
    recipe = f"""\
        resources:
          - file: "{{{{ attributes.root }}}}/x"
            content: "x"
            {fields}
    """
    bundle, target = make(tmp_path, recipe)
    for command in ("validate", "run"):
        out = trueup(command, str(bundle))
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"site/recipe.yml:{line}: " in out.stderr
        assert message in out.stderr, out.stderr
    assert not target.exists()


def test_a_resource_kept_out_is_still_checked_for_its_shape(tmp_path, trueup):
    recipe = """\
        resources:
          - file: /nowhere/x
            contnet: "x"
            when: false
    """
    bundle, _ = make(tmp_path, recipe)
    out = trueup("validate", str(bundle))
    assert out.returncode == 1
    assert "recipe.yml:3: unknown field 'contnet' for file (did you mean 'content'?)" \
        in out.stderr


def test_references_to_a_kept_out_resource_are_dropped_but_typos_are_not(tmp_path, trueup):
    recipe = """\
        resources:
          - command: reload-app
            run: [/bin/true]
            refresh_only: true
            when: false
          - file: "{{ attributes.root }}"
            content: "x\\n"
            requires: command:reload-app
            notify: command:reload-app run
    """
    bundle, target = make(tmp_path, recipe)
    out = trueup("run", str(bundle), "--detailed-exitcodes")
    assert out.returncode == 2, out.stdout + out.stderr
    assert target.read_text() == "x\n"
    typo = make(tmp_path / "typo", recipe.replace("requires: command:reload-app",
                                                  "requires: command:reload-ap"))[0]
    out = trueup("validate", str(typo))
    assert out.returncode == 1
    assert "requires 'command:reload-ap' names no declared resource" in out.stderr


def test_when_on_a_recipe_keeps_all_its_resources_out(tmp_path, trueup, env):
    extra = """\
        when: "{{ facts.os_family == 'no-such-family' }}"
        resources:
          - file: "{{ attributes.root }}-extra"
            content: "x\\n"
    """
    site = """\
        depends: [extra]
        resources:
          - file: "{{ attributes.root }}"
            content: "site\\n"
            requires: "file:{{ attributes.root }}-extra"
    """
    bundle, target = make(tmp_path, site, extra=extra)
    out = trueup("plan", str(bundle))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "skipped      recipe:extra  by condition (when: {{ facts.os_family" in out.stdout
    assert f"skipped      file:{target}-extra  by condition (recipe extra" in out.stdout
    out = trueup("run", str(bundle))
    assert out.returncode == 0, out.stdout + out.stderr
    assert target.read_text() == "site\n"
    assert not Path(f"{target}-extra").exists()
    bad = make(tmp_path / "bad", site, extra=extra.replace("facts.os_family", "facts.nope"))[0]
    out = trueup("validate", str(bad))
    assert out.returncode == 1
    assert "extra/recipe.yml:1: when: " in out.stderr and "nope" in out.stderr


def test_a_sensitive_loop_never_shows_its_items(tmp_path, trueup):
    recipe = """\
        resources:
          - file: "{{ attributes.root }}"
            content: "{{ item }}"
            sensitive: true
            loop: [hunter2-canary, hunter2-canary]
    """
    bundle, _ = make(tmp_path, recipe)
    out = trueup("validate", str(bundle))
    assert out.returncode == 1
    assert "item 0 and item 1 of this loop both render" in out.stderr
    assert "hunter2" not in out.stderr + out.stdout


# --- the evaluation itself ------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (True, True), (False, False), ("attributes.on", True), ("{{ attributes.off }}", False),
    ("not attributes.on", False), ("attributes.word == 'yes'", True),
    ("{{ attributes.word }}", True), ("{{ attributes.list }}", True),
    ("{{ attributes.empty }}", False), ("attributes.n > 2", True),
    ("{{ 'off' }}", False), ("{{ none }}", False),
])
def test_condition_values(raw, expected):
    renderer = Renderer({"on": True, "off": False, "word": "yes", "list": [1], "empty": [],
                         "n": 3}, None)
    assert condition(raw, renderer) is expected


def test_a_mapping_loops_over_its_entries_in_order():
    renderer = Renderer({"m": {"b": 1, "a": 2}}, None)
    assert loop_items("{{ attributes.m }}", renderer) == [{"key": "b", "value": 1},
                                                          {"key": "a", "value": 2}]
    assert loop_items(["{{ attributes.m.a }}", "x"], renderer) == [2, "x"]
    with pytest.raises(LoopError, match="loop must be a list"):
        loop_items("plain text", renderer)
