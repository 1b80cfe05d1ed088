"""trueup fleet run / status.

``SendCommand`` goes to moto (which records it; nothing runs there). moto 5.2 does not
implement ``ListCommandInvocations`` or ``ListResourceComplianceSummaries`` (HTTP 500),
so ``--wait`` and ``fleet status`` are driven by botocore's Stubber, which validates
every request against the real SSM service model and every canned response too.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from agent import cli
from agent.aws import clients

pytestmark = pytest.mark.aws
CID = "0b6f2c1e-1111-4a4a-9c9c-0123456789ab"

# A stand-in with the parameters of the SSM document infra/ creates (infra/ssm/);
# the product document itself is checked against the template in tests/test_infra.py.
DOCUMENT = """\
schemaVersion: "2.2"
description: trueup run (test stand-in)
parameters:
  Source: {type: String, default: ""}
  RunList: {type: String, default: ""}
  Event: {type: String, default: "", allowedValues: ["", setup, configure, deploy, undeploy,
    shutdown]}
  Noop: {type: String, default: "false", allowedValues: ["true", "false"]}
  Verify: {type: String, default: "false", allowedValues: ["true", "false"]}
  ReportTo: {type: String, default: ""}
mainSteps:
  - action: aws:runShellScript
    name: trueup
    inputs:
      runCommand: ["trueup run"]
"""


def test_fleet_run_sends_document_targets_rate_control_and_parameters(trueup, env, aws):
    aws.client("ssm").create_document(Name="trueup-run-prod", Content=DOCUMENT,
                                      DocumentType="Command", DocumentFormat="YAML")
    out = trueup("fleet", "run", "--env", "prod", "--role", "web", "--event", "deploy",
                 "--noop", "--verify", "--max-concurrency", "5", "--max-errors", "10%",
                 "--report-to", "cloudwatch,ssm")
    assert out.returncode == 0, out.stdout + out.stderr
    (cmd,) = aws.client("ssm").list_commands()["Commands"]
    assert cmd["CommandId"] in out.stdout
    assert cmd["DocumentName"] == "trueup-run-prod"  # infra/trueup.yml's name for prod
    assert cmd["Targets"] == [{"Key": "tag:trueup:env", "Values": ["prod"]},
                              {"Key": "tag:trueup:role", "Values": ["web"]}]
    assert (cmd["MaxConcurrency"], cmd["MaxErrors"]) == ("5", "10%")
    assert cmd["Parameters"] == {"Source": [""], "RunList": [""], "Event": ["deploy"],
                                 "Noop": ["true"], "Verify": ["true"],
                                 "ReportTo": ["cloudwatch,ssm"]}
    assert aws.count("SendCommand") == 1


def test_fleet_run_with_targets_and_a_named_document(trueup, env, aws):
    aws.client("ssm").create_document(Name="ops-trueup", Content=DOCUMENT,
                                      DocumentType="Command", DocumentFormat="YAML")
    out = trueup("fleet", "run", "--env", "stage", "--target", "Team=payments",
                 "--document", "ops-trueup")
    assert out.returncode == 0, out.stderr
    (cmd,) = aws.client("ssm").list_commands()["Commands"]
    assert cmd["DocumentName"] == "ops-trueup"
    assert cmd["Targets"][1] == {"Key": "tag:Team", "Values": ["payments"]}
    assert (cmd["MaxConcurrency"], cmd["MaxErrors"]) == ("10%", "0")


@pytest.mark.parametrize(("args", "message"), [
    (["--max-concurrency", "ten"], "--max-concurrency must be a count or a percentage"),
    (["--max-errors", "150%"], "--max-errors must be a count or a percentage"),
    (["--role", "web", "--target", "A=b"], "give --role or --target, not both"),
    (["--target", "novalue"], "--target must be TAG=VALUE"),
])
def test_bad_fleet_arguments_are_exit_1_and_send_nothing(trueup, env, aws, args, message):
    out = trueup("fleet", "run", "--env", "prod", *args)
    assert out.returncode == 1 and message in out.stderr, out.stderr
    assert aws.count(service="ssm") == 0


@pytest.fixture
def stub(aws, monkeypatch):
    from botocore.stub import Stubber

    ssm = clients.client("ssm")
    stubber = Stubber(ssm)
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    clients._clients.pop("ssm", None)


def _invocation(iid: str, status: str, output: str = "") -> dict:
    start = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    return {"CommandId": CID, "InstanceId": iid, "Status": status, "CommandPlugins": [
        {"Name": "trueup", "Status": status, "Output": output, "ResponseCode": 0,
         "ResponseStartDateTime": start,
         "ResponseFinishDateTime": start + dt.timedelta(seconds=12)}]}


def test_wait_shows_a_row_per_instance_and_fails_when_one_failed(stub, capsys):
    stub.add_response("send_command", {"Command": {"CommandId": CID, "Status": "Pending"}})
    ok = _invocation("i-0aaaaaaaaaaaaaaa1", "Success",
                     "trueup run: 3 changed, 0 failed, 15 unchanged (18 resources) in 7.25s\n")
    stub.add_response("list_commands", {"Commands": [{"CommandId": CID,
                                                      "Status": "InProgress"}]})
    stub.add_response("list_command_invocations", {"CommandInvocations": [
        ok, _invocation("i-0bbbbbbbbbbbbbbb2", "InProgress")]})
    stub.add_response("list_commands", {"Commands": [{"CommandId": CID, "Status": "Failed"}]})
    stub.add_response("list_command_invocations", {"CommandInvocations": [
        ok, _invocation("i-0bbbbbbbbbbbbbbb2", "Failed",
                        "failed  service:nginx\ntrueup run: 1 changed, 1 failed, 16 unchanged "
                        "(18 resources) in 9.50s\n")]})
    code = cli.main(["fleet", "run", "--env", "prod", "--wait", "--interval", "0"])
    out = capsys.readouterr().out
    assert code == 1, out
    rows = [line.split() for line in out.splitlines() if line.startswith("i-")]
    assert rows == [["i-0aaaaaaaaaaaaaaa1", "Success", "3", "0", "7.2s"],
                    ["i-0bbbbbbbbbbbbbbb2", "Failed", "1", "1", "9.5s"]]
    assert "2 instances, 1 succeeded, 1 failed, 4 resources changed; command Failed" in out


def test_wait_exits_0_when_every_instance_succeeded(stub, capsys):
    stub.add_response("send_command", {"Command": {"CommandId": CID, "Status": "Pending"}})
    stub.add_response("list_commands", {"Commands": [{"CommandId": CID, "Status": "Success"}]})
    stub.add_response("list_command_invocations", {"CommandInvocations": [
        _invocation("i-0aaaaaaaaaaaaaaa1", "Success", "no summary line here")]})
    assert cli.main(["fleet", "run", "--env", "prod", "--wait", "--interval", "0"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("i-"))
    assert row.split() == ["i-0aaaaaaaaaaaaaaa1", "Success", "-", "-", "12.0s"]


def test_status_joins_instances_and_compliance(aws, stub, capsys):
    ec2 = aws.client("ec2")
    made = []
    for role in ("web", "web", "db"):
        (inst,) = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                                    TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                        {"Key": "trueup:env", "Value": "prod"},
                                        {"Key": "trueup:role", "Value": role},
                                        {"Key": "Name", "Value": f"{role}-1"}]}])["Instances"]
        made.append(inst["InstanceId"])
    ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "trueup:env", "Value": "stage"}]}])
    when = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)

    def summary(iid: str, ctype: str, status: str, bad: int) -> dict:
        return {"ComplianceType": ctype, "ResourceType": "ManagedInstance", "ResourceId": iid,
                "Status": status, "OverallSeverity": "HIGH" if bad else "INFORMATIONAL",
                "ExecutionSummary": {"ExecutionTime": when, "ExecutionId": "r-1",
                                     "ExecutionType": "Command"},
                "CompliantSummary": {"CompliantCount": 5},
                "NonCompliantSummary": {"NonCompliantCount": bad}}

    stub.add_response("list_resource_compliance_summaries", {
        "ResourceComplianceSummaryItems": [
            summary(made[0], "Custom:trueup", "COMPLIANT", 0),
            summary(made[0], "Custom:trueup-verify", "COMPLIANT", 0),
            summary(made[1], "Custom:trueup", "NON_COMPLIANT", 2)]},
        {"Filters": [{"Key": "ComplianceType", "Values": ["Custom:trueup",
                                                          "Custom:trueup-verify"],
                      "Type": "EQUAL"}], "MaxResults": 50})
    assert cli.main(["fleet", "status", "--env", "prod", "--json"]) == 0
    rows = {r["instance_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(made)
    assert (rows[made[0]]["status"], rows[made[0]]["verify"]) == ("COMPLIANT", "COMPLIANT")
    assert (rows[made[1]]["status"], rows[made[1]]["non_compliant"]) == ("NON_COMPLIANT", 2)
    assert rows[made[2]]["status"] is None and rows[made[2]]["name"] == "db-1"

    stub.add_response("list_resource_compliance_summaries", {
        "ResourceComplianceSummaryItems": [summary(made[1], "Custom:trueup", "NON_COMPLIANT",
                                                   2)]})
    assert cli.main(["fleet", "status", "--env", "prod"]) == 0
    out = capsys.readouterr().out
    assert "NON_COMPLIANT" in out and "2026-12-01T10:00:00Z" in out
    assert out.splitlines()[-1] == ("trueup fleet: 3 instances in prod: 1 non-compliant, "
                                    "2 no report")
