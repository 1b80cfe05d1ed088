"""trueup run / plan / report end to end through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import REPO, snapshot, write_bundle

SITE = """\
    description: a small site
    attributes:
      site: {port: 8080, name: demo}
    resources:
      - directory: "{{ attributes.root }}/etc"
        mode: "0755"
      - template: "{{ attributes.root }}/etc/site.conf"
        source: site.conf.j2
        mode: "0640"
        variables: {workers: 2}
      - file: "{{ attributes.root }}/etc/motd"
        content: "hello {{ attributes.site.name }}\\n"
      - file: "{{ attributes.root }}/etc/logo.txt"
        source: logo.txt
      - link: "{{ attributes.root }}/current"
        to: "{{ attributes.root }}/etc/site.conf"
      - command: stamp
        run: [/bin/sh, -c, 'echo done > "$0"', "{{ attributes.root }}/stamp"]
        creates: "{{ attributes.root }}/stamp"
"""


def make_site(tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "target"
    bundle = write_bundle(tmp_path / "bundle", {"site": SITE},
                          templates={"site/site.conf.j2": "port = {{ attributes.site.port }}\n"
                                     "workers = {{ workers }}\n"},
                          files={"site/logo.txt": "LOGO\n"}, runlist="site",
                          attributes=f"root: {target}\n")
    return bundle, target


def test_second_run_changes_nothing_and_touches_nothing(tmp_path, trueup):
    bundle, target = make_site(tmp_path)
    first = trueup("run", str(bundle), "--detailed-exitcodes")
    assert first.returncode == 2, first.stderr
    assert "6 changed, 0 failed" in first.stdout
    assert (target / "etc/site.conf").read_text() == "port = 8080\nworkers = 2\n"
    assert (target / "etc/site.conf").stat().st_mode & 0o7777 == 0o640
    assert (target / "current").readlink() == target / "etc/site.conf"
    assert (target / "stamp").read_text() == "done\n"
    before = snapshot(target)
    second = trueup("run", "--source", str(bundle), "--detailed-exitcodes")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 changed, 0 failed, 6 unchanged" in second.stdout
    assert snapshot(target) == before  # same inode, mtime and ctime for every entry


def test_plan_shows_unified_diff_and_changes_nothing(tmp_path, trueup):
    bundle, target = make_site(tmp_path)
    assert trueup("run", str(bundle)).returncode == 0
    (bundle / "site/templates/site.conf.j2").write_text(
        "port = {{ attributes.site.port }}\nworkers = {{ workers * 2 }}\n")
    before = snapshot(target)
    plan = trueup("plan", str(bundle), "--detailed-exitcodes")
    assert plan.returncode == 2, plan.stderr
    assert f"--- {target}/etc/site.conf (current)" in plan.stdout
    assert f"+++ {target}/etc/site.conf (declared)" in plan.stdout
    assert "-workers = 2" in plan.stdout and "+workers = 4" in plan.stdout
    assert "1 would change" in plan.stdout
    assert snapshot(target) == before
    assert trueup("run", str(bundle), "--detailed-exitcodes").returncode == 2
    assert (target / "etc/site.conf").read_text() == "port = 8080\nworkers = 4\n"


def test_noop_flag_equals_plan(tmp_path, trueup):
    bundle, target = make_site(tmp_path)
    out = trueup("run", str(bundle), "--noop", "--json")
    assert out.returncode == 0
    report = json.loads(out.stdout)
    assert report["mode"] == "noop"
    assert report["totals"]["changed"] == 6
    assert not target.exists()


def test_report_records_each_resource(tmp_path, trueup, env):
    bundle, _ = make_site(tmp_path)
    trueup("run", str(bundle))
    shown = trueup("report", "--json")
    report = json.loads(shown.stdout)
    assert report["exit_code"] == 0 and report["mode"] == "run"
    assert report["runlist"] == ["site"]
    statuses = {r["resource"]: r["status"] for r in report["resources"]}
    assert len(statuses) == 6 and set(statuses.values()) == {"changed"}
    assert all("duration_ms" in r for r in report["resources"])
    human = trueup("report")
    assert "changed" in human.stdout and "totals:" in human.stdout
    history = Path(env["TRUEUP_STATE_DIR"]) / "reports" / "history"
    trueup("run", str(bundle))
    assert len(list(history.iterdir())) == 2


def test_history_is_bounded(tmp_path, trueup, env):
    bundle, _ = make_site(tmp_path)
    for _ in range(4):
        trueup("run", str(bundle), env={"TRUEUP_HISTORY": "3"})
    history = Path(env["TRUEUP_STATE_DIR"]) / "reports" / "history"
    assert len(list(history.iterdir())) == 3


def test_json_output_is_the_report(tmp_path, trueup):
    bundle, _ = make_site(tmp_path)
    out = trueup("run", str(bundle), "--json")
    report = json.loads(out.stdout)
    assert report["totals"]["changed"] == 6 and report["totals"]["total"] == 6


def test_backups_keep_replaced_content(tmp_path, trueup, env):
    bundle, target = make_site(tmp_path)
    trueup("run", str(bundle))
    motd = target / "etc/motd"
    for i in range(7):
        motd.write_text(f"local edit {i}\n")
        assert trueup("run", str(bundle), env={"TRUEUP_BACKUPS": "3"}).returncode == 0
        assert motd.read_text() == "hello demo\n"
    kept = Path(env["TRUEUP_STATE_DIR"]) / "backup" / str(motd).lstrip("/")
    contents = sorted(p.read_text() for p in kept.iterdir())
    assert contents == ["local edit 4\n", "local edit 5\n", "local edit 6\n"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in kept.iterdir())


def test_source_from_config_and_runlist_flag(tmp_path, trueup, env):
    bundle, target = make_site(tmp_path)
    config = Path(env["TRUEUP_CONFIG"])
    config.write_text(f'source = "{bundle}"\n')
    out = trueup("run", "--runlist", "site")
    assert out.returncode == 0, out.stderr
    assert (target / "etc/motd").exists()


def test_example_bundle_converges_then_is_idempotent(tmp_path, trueup):
    dest = tmp_path / "hello"
    first = trueup("run", str(REPO / "recipes"), "-a", f"hello.dir={dest}",
                   "--detailed-exitcodes")
    assert first.returncode == 2, first.stdout + first.stderr
    assert (dest / "motd").read_text().startswith("Hello from trueup, ")
    assert (dest / "reloads.log").read_text().count("reloaded") == 1
    before = snapshot(dest)
    second = trueup("run", str(REPO / "recipes"), "-a", f"hello.dir={dest}",
                    "--detailed-exitcodes")
    assert second.returncode == 0 and "0 changed" in second.stdout
    assert snapshot(dest) == before


def test_kinds_lists_every_type_with_its_docstring(trueup):
    from agent.resources import load_all

    out = trueup("kinds")
    assert out.returncode == 0
    for kind, cls in load_all().items():
        assert f"{kind}\n" in out.stdout
        first_line = cls.__doc__.strip().splitlines()[0]
        assert first_line in out.stdout


def test_facts_prints_json(trueup):
    facts = json.loads(trueup("facts").stdout)
    assert facts["cpus"] >= 1 and facts["os_family"] and facts["hostname"]
    assert "env" not in facts
