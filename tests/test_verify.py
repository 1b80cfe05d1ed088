"""trueup verify on this machine: a recipe's testinfra checks of files it declares (the
booted-host version with recipes/base and recipes/web is tests/system/test_verify_on_host.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import write_bundle

CONFTEST = '''\
import json, os
import pytest


@pytest.fixture
def attributes():
    return json.loads(os.environ["TRUEUP_TEST_ATTRIBUTES"])
'''


def _bundle(tmp_path: Path) -> Path:
    target = tmp_path / "motd"
    bundle = write_bundle(tmp_path / "bundle", {
        "app": f"""
            attributes:
              motd: {{path: "{target}", text: hello}}
            resources:
              - file: "{{{{ attributes.motd.path }}}}"
                content: "{{{{ attributes.motd.text }}}}\\n"
                mode: "0640"
            """,
        "other": "resources: []\n"}, runlist="app,other")
    (bundle / "conftest.py").write_text(CONFTEST)
    tests = bundle / "app" / "tests"
    tests.mkdir()
    (tests / "test_app.py").write_text('''\
def test_motd_content(host, attributes):
    f = host.file(attributes["motd"]["path"])
    assert f.content_string == attributes["motd"]["text"] + "\\n"


def test_motd_mode(host, attributes):
    assert host.file(attributes["motd"]["path"]).mode == 0o640
''')
    return bundle


@pytest.mark.slow
def test_verify_passes_after_a_run_and_names_the_check_after_drift(tmp_path, trueup, env):
    bundle = _bundle(tmp_path)
    run = trueup("run", str(bundle), "-a", "motd.text=hi")
    assert run.returncode == 0, run.stdout + run.stderr

    ok = trueup("verify", str(bundle), "-a", "motd.text=hi")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "trueup verify: 2 passed, 0 failed (app, other)" in ok.stdout

    (tmp_path / "motd").chmod(0o644)  # drift
    bad = trueup("verify", str(bundle), "-a", "motd.text=hi")
    assert bad.returncode == 1
    assert "failed   app/tests/test_app.py::test_motd_mode[local]" in bad.stdout, bad.stdout
    assert "test_motd_content" not in bad.stdout
    result = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "reports" / "last_verify.json")
                        .read_text())
    assert result["totals"] == {"passed": 1, "failed": 1, "total": 2}
    assert result["runlist"] == ["app", "other"]
    assert [c["outcome"] for c in result["checks"]] == ["passed", "failed"]


def test_verify_without_checks_says_so(tmp_path, trueup, env):
    bundle = _bundle(tmp_path)
    out = trueup("verify", str(bundle), "--runlist", "other")
    assert out.returncode == 0
    assert "no checks in other" in out.stdout
    as_json = json.loads(trueup("verify", str(bundle), "--runlist", "other", "--json").stdout)
    assert (as_json["exit_code"], as_json["checks"], as_json["runlist"]) == (0, [], ["other"])


def test_verify_bad_input_is_exit_1(tmp_path, trueup, env):
    bundle = _bundle(tmp_path)
    missing = trueup("verify", str(bundle), "--runlist", "nope")
    assert missing.returncode == 1 and "nope" in missing.stderr, missing.stderr
    sinks = trueup("verify", str(bundle), "--report-to", "email", "--json")
    assert sinks.returncode == 1 and "unknown report destination" in sinks.stderr
