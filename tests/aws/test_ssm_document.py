"""infra/ssm: the Command document (accepted by SSM, parameters as the fleet commands use
them, its script's exit codes) and the State Manager association (a valid request)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from tests import ssmdoc
from tests.helpers import write_bundle

PARAMETERS = {
    "Source": ("", None), "RunList": ("", None),
    "Event": ("", ["", "setup", "configure", "deploy", "undeploy", "shutdown"]),
    "Noop": ("false", ["true", "false"]), "Verify": ("false", ["true", "false"]),
    "ReportTo": ("", None),
}


def test_the_document_has_the_fleet_contract():
    doc = ssmdoc.document()
    assert doc["schemaVersion"] == "2.2"
    assert set(doc["parameters"]) == set(PARAMETERS)
    for name, (default, allowed) in PARAMETERS.items():
        decl = doc["parameters"][name]
        assert decl["type"] == "String" and decl["default"] == default, name
        assert decl.get("allowedValues") == allowed, name
    (step,) = doc["mainSteps"]
    assert step["action"] == "aws:runShellScript" and step["name"] == "trueup"


@pytest.mark.aws
def test_ssm_accepts_the_document(aws):
    ssm = aws.client("ssm")
    content = ssmdoc.DOCUMENT.read_text()
    ssm.create_document(Content=content, Name="trueup-run", DocumentType="Command",
                        DocumentFormat="YAML")
    desc = ssm.describe_document(Name="trueup-run")["Document"]
    assert desc["SchemaVersion"] == "2.2" and desc["DocumentType"] == "Command"
    assert {p["Name"] for p in desc["Parameters"]} == set(PARAMETERS)
    got = ssm.get_document(Name="trueup-run", DocumentFormat="YAML")["Content"]
    assert yaml.safe_load(got) == ssmdoc.document()


def test_the_association_is_a_valid_create_association_request():
    data = yaml.safe_load(ssmdoc.ASSOCIATION.read_text())
    client = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stub:  # validates every key and type against the API model
        stub.add_response("create_association", {}, data)
        client.create_association(**data)
        stub.assert_no_pending_responses()
    assert {t["Key"] for t in data["Targets"]} == {"tag:trueup:env", "tag:trueup:role"}
    assert set(data["Parameters"]) <= set(PARAMETERS)
    assert data["Name"] == "trueup-run" and data["ComplianceSeverity"]
    assert data["MaxConcurrency"] and data["MaxErrors"] and data["ScheduleExpression"]
    for name, values in data["Parameters"].items():
        ssmdoc.script(**{name: values[0]})  # each value passes the document's checks


@pytest.mark.parametrize("values", [
    {"Source": "/srv/x'; touch /tmp/pwned; '"}, {"RunList": "a b"}, {"Event": "reboot"},
    {"Noop": "yes"}, {"ReportTo": "cloudwatch;id"},
])
def test_values_that_could_break_out_of_the_script_are_refused(values):
    with pytest.raises(ValueError):
        ssmdoc.script(**values)


def test_the_script_is_posix_sh():
    done = subprocess.run(["sh", "-n", "-c", ssmdoc.script(Source="/srv/b", Event="deploy")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def shim(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """A PATH whose ``trueup`` is this checkout's command line (what /opt/trueup holds)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    repo = Path(__file__).resolve().parents[2]
    (bin_dir / "trueup").write_text(f"#!/bin/sh\nPYTHONPATH={repo} exec {sys.executable} "
                                    "-m agent \"$@\"\n")
    (bin_dir / "trueup").chmod(0o755)
    return {**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _run(path: Path, shim: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(path)], capture_output=True, text=True, env=shim,
                          timeout=300)


def test_the_script_runs_the_event_and_maps_exit_codes(tmp_path, shim, env):
    out = tmp_path / "out"
    bundle = write_bundle(tmp_path / "b", {"app": f"""
        resources:
          - file: {out}
            content: "deployed\\n"
        """, "bad": """
        resources:
          - file: /nonexistent-folder/x
            content: "x\\n"
        """}, runlist="bad")
    (bundle / "runlist.deploy").write_text("app\n")
    ok = _run(ssmdoc.write_script(tmp_path / "s1", Source=str(bundle), Event="deploy"), shim)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert out.read_text() == "deployed\n"
    report = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "reports/last_run.json").read_text())
    assert report["event"] == "deploy"

    failed = _run(ssmdoc.write_script(tmp_path / "s2", Source=str(bundle)), shim)
    assert failed.returncode == 4
    assert "trueup-run: FAILED (exit 4); summary of the run:" in failed.stdout
    assert "1 failed" in failed.stdout.split("summary of the run:")[1]

    missing = _run(ssmdoc.write_script(tmp_path / "s3", Source=str(tmp_path / "nothing")), shim)
    assert missing.returncode == 1
    assert "FAILED (exit 1)" in missing.stdout and "nothing" in missing.stdout

    noop = _run(ssmdoc.write_script(tmp_path / "s4", Source=str(bundle), RunList="app",
                                    Noop="true"), shim)
    assert noop.returncode == 0, noop.stderr
