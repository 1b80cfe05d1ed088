"""trueup bake, the bake manifest, the phase checks and a boot run on a baked machine.

Real CLI, real files under tmp_path (the booted-image end of this is in
tests/system/test_bake_image.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import snapshot, write_bundle


def _bundle(root: Path, out: Path, template: str = "v1\n") -> Path:
    return write_bundle(root, {"app": f"""\
        resources:
          - directory: {out}
            phase: any
          - file: {out}/motd
            content: "baked"
            phase: bake
          - template: {out}/app.conf
            source: app.conf.j2
            phase: bake
            notify: command:reload
          - command: reload
            run: [/bin/sh, -c, "echo reloaded >> {out}/reloads"]
            refresh_only: true
            phase: boot
          - file: {out}/boot
            content: "at boot"
            phase: boot
        """}, templates={"app/app.conf.j2": template}, runlist="app")


def _json(out) -> dict:
    assert out.stdout.strip().startswith("{"), out.stderr
    return json.loads(out.stdout)


def test_bake_converges_the_bake_phase_and_writes_the_manifest(tmp_path, trueup, env):
    out = tmp_path / "out"
    bundle = _bundle(tmp_path / "b", out)
    res = trueup("bake", str(bundle))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["app.conf", "motd"]
    manifest = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "bake/manifest.json").read_text())
    assert manifest["trueup"] == "0.1.0" and manifest["runlist"] == ["app"]
    assert manifest["exit_code"] == 0
    assert len(manifest["bundle"]["sha256"]) == 64
    entries = {r["resource"]: r for r in manifest["resources"]}
    assert set(entries) == {f"directory:{out}", f"file:{out}/motd", f"template:{out}/app.conf"}
    assert entries[f"file:{out}/motd"]["phase"] == "bake"
    assert entries[f"directory:{out}"]["phase"] == "any"
    for entry in entries.values():
        assert len(entry["digest"]) == 64 and entry["status"] == "changed"
        assert entry["duration_ms"] >= 0
    # the same bundle again: the same digests (they describe inputs, not the run)
    trueup("bake", str(bundle))
    again = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "bake/manifest.json").read_text())
    assert {r["resource"]: r["digest"] for r in again["resources"]} == \
        {k: v["digest"] for k, v in entries.items()}


def test_boot_on_a_baked_machine_and_a_newer_bundle(tmp_path, trueup):
    out = tmp_path / "out"
    bundle = _bundle(tmp_path / "b", out)
    assert trueup("bake", str(bundle)).returncode == 0
    boot = _json(trueup("run", str(bundle), "--phase", "boot", "--json"))
    assert {r["resource"] for r in boot["resources"]} == {
        f"directory:{out}", "command:reload", f"file:{out}/boot"}
    assert boot["left_image"] == []
    full = _json(trueup("run", str(bundle), "--json"))
    assert full["totals"]["changed"] == 0, full  # nothing baked changes on a full run
    # a release changes one baked template: the boot run converges exactly that one, and
    # its notification
    newer = _bundle(tmp_path / "b2", out, template="v2\n")
    res = trueup("run", str(newer), "--phase", "boot")
    assert res.returncode == 0, res.stderr
    assert f"left the image (changed since the bake, converged now): template:{out}/app.conf" \
        in res.stdout
    report = _json(trueup("report", "--json"))
    changed = {r["resource"] for r in report["resources"] if r["status"] == "changed"}
    assert changed == {f"template:{out}/app.conf", "command:reload"}
    assert report["left_image"] == [f"template:{out}/app.conf"]
    assert (out / "app.conf").read_text() == "v2\n"
    assert (out / "reloads").read_text() == "reloaded\n"


def test_a_boot_run_without_a_manifest_converges_boot_and_any_only(tmp_path, trueup):
    out = tmp_path / "out"
    bundle = _bundle(tmp_path / "b", out)
    report = _json(trueup("run", str(bundle), "--phase", "boot", "--json"))
    assert "left_image" not in report
    assert {r["resource"] for r in report["resources"]} == {
        f"directory:{out}", "command:reload", f"file:{out}/boot"}
    assert not (out / "motd").exists()


@pytest.mark.parametrize("value, what", [
    ("{{ secret('/db/pw') }}", "secret('/db/pw')"),
    ("{{ facts.ec2.instance_id }}", "facts.ec2"),
    ("{{ facts['ec2'].region }}", "facts.ec2"),
    ("{% if false %}{{ facts.get('ec2') }}{% endif %}", "facts.ec2"),
])
@pytest.mark.parametrize("command", ["validate", "bake"])
def test_a_baked_resource_that_reads_a_boot_value_is_refused_with_file_and_line(
        tmp_path, trueup, command, value, what):
    out = tmp_path / "out"
    bundle = write_bundle(tmp_path / "b", {"app": f"""\
        phase: bake
        resources:
          - file: {out}
            content: ok
          - file: {out}.conf
            owner: root
            content: "{value}"
        """}, runlist="app")
    before = snapshot(tmp_path / "b")
    res = trueup(command, str(bundle), "--runlist", "app") if command == "validate" \
        else trueup(command, str(bundle))
    assert res.returncode == 1, res.stdout
    assert f"app/recipe.yml:7: file:{out}.conf has phase: bake but reads {what}" in res.stderr
    assert "give the resource (or its recipe) phase: boot" in res.stderr
    assert snapshot(tmp_path / "b") == before
    assert not out.exists() and not Path(f"{out}.conf").exists()
    assert not (tmp_path / "state" / "bake").exists()  # no manifest


def test_a_baked_template_that_reads_a_boot_value_is_refused_at_its_line(tmp_path, trueup):
    bundle = write_bundle(tmp_path / "b", {"app": f"""\
        resources:
          - template: {tmp_path}/out.conf
            source: app.conf.j2
            phase: bake
        """}, templates={"app/app.conf.j2": "a\n{% if false %}\n{{ secret('/x') }}\n"
                         "{% endif %}\n"}, runlist="app")
    res = trueup("validate", str(bundle))
    assert res.returncode == 1
    assert f"app/templates/app.conf.j2:3: template:{tmp_path}/out.conf has phase: bake but " \
        "reads secret('/x')" in res.stderr


def test_boot_and_any_resources_may_read_boot_values(tmp_path, trueup):
    bundle = write_bundle(tmp_path / "b", {"app": f"""\
        resources:
          - file: {tmp_path}/a
            content: "{{{{ facts.ec2.region }}}}"
            phase: boot
          - file: {tmp_path}/b
            content: "{{{{ secret('/x') }}}}"
        """}, runlist="app")
    res = trueup("validate", str(bundle))
    assert res.returncode == 0, res.stderr


def test_an_unreadable_manifest_stops_a_boot_run_before_any_change(tmp_path, trueup, env):
    out = tmp_path / "out"
    bundle = _bundle(tmp_path / "b", out)
    path = Path(env["TRUEUP_STATE_DIR"]) / "bake" / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    res = trueup("run", str(bundle), "--phase", "boot")
    assert res.returncode == 1
    assert "bake/manifest.json: the bake manifest cannot be read" in res.stderr
    assert not out.exists()


def test_a_boot_run_on_a_baked_machine_keeps_the_baked_run_list(tmp_path, trueup):
    out = tmp_path / "out"
    bundle = _bundle(tmp_path / "b", out)
    write_bundle(bundle, {"other": f"""\
        resources:
          - file: {tmp_path}/other
            content: other
        """}, runlist="other")  # the bundle's run list names another recipe now
    assert trueup("bake", str(bundle), "--runlist", "app").returncode == 0
    report = _json(trueup("run", str(bundle), "--phase", "boot", "--json"))
    assert report["runlist"] == ["app"]
    assert not (tmp_path / "other").exists()
    named = _json(trueup("run", str(bundle), "--phase", "boot", "--runlist", "other", "--json"))
    assert named["runlist"] == ["other"] and (tmp_path / "other").exists()


def test_plan_bake_report_prices_the_three_strategies_from_the_last_full_runs(tmp_path, trueup):
    out = tmp_path / "out"
    bundle = write_bundle(tmp_path / "b", {"app": f"""\
        resources:
          - directory: {out}
          - file: {out}/baked
            content: "x"
            phase: bake
          - command: slow-setup
            run: [/bin/sh, -c, "sleep 0.4; touch {out}/slow"]
            creates: {out}/slow
            phase: boot
          - file: {out}/hostname
            content: "{{{{ facts.hostname }}}}"
            phase: boot
        """}, runlist="app")
    none = trueup("plan", str(bundle), "--bake-report")
    assert none.returncode == 1 and "no full run is recorded here" in none.stderr
    assert trueup("run", str(bundle)).returncode == 0
    trueup("run", str(bundle), "--phase", "boot")  # not a full run: not a measure
    report = _json(trueup("plan", str(bundle), "--bake-report", "--json"))
    assert len(report["runs"]) == 1
    by = {s["strategy"]: s for s in report["strategies"]}
    assert by["os-only"]["resources"] == 4 and by["os-only"]["boot_s"] >= 0.4
    assert by["split"]["resources"] == 3 and by["split"]["boot_s"] >= 0.4
    assert by["baked"]["resources"] == 1  # the file that reads facts stays at boot
    assert by["baked"]["boot_s"] < 0.4 <= by["baked"]["bake_s"]
    assert report["candidates"][0]["resource"] == "command:slow-setup"
    assert f"file:{out}/hostname" not in {c["resource"] for c in report["candidates"]}
    text = trueup("plan", str(bundle), "--bake-report")
    assert text.returncode == 0
    assert "OS-only image, converge at boot" in text.stdout
    assert "command:slow-setup" in text.stdout.split("could be baked")[1]
