"""Reports that leave the instance: CloudWatch Logs and metrics on moto; SSM Compliance
against botocore's Stubber.

moto 5.2 does not implement ``PutComplianceItems`` (HTTP 500), so the compliance uploads
are checked with botocore's Stubber, which validates every parameter against the real
SSM service model (types, lengths, enums, required keys) before answering.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path

import pytest

from agent.aws import clients
from agent.engine import shipping
from tests.aws.conftest import last_report, ssm_put
from tests.helpers import write_bundle

pytestmark = pytest.mark.aws

CANARY = "canary-ship-4e1f9a7c"
GROUP = "/trueup/local"


def _bundle(tmp_path: Path, target: Path) -> Path:
    return write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - directory: {target}
          - file: {target}/token
            content: "{{{{ secret('/app/token') }}}}"
          - file: {target}/plain
            content: "hello\\n"
          - command: fails
            run: [/bin/false, "{{{{ secret('/app/token') }}}}"]
            creates: {target}/never
        """}, runlist="app")


def _events(aws) -> list[dict]:
    logs = aws.client("logs")
    out = logs.get_log_events(logGroupName=GROUP, logStreamName=socket.gethostname(),
                              startFromHead=True)
    return [json.loads(e["message"]) for e in out["events"]]


def test_cloudwatch_events_are_redacted_and_one_put_per_run(tmp_path, trueup, env, aws):
    ssm_put(aws, "/app/token", CANARY, "SecureString")
    target = tmp_path / "app"
    bundle = _bundle(tmp_path, target)
    first = trueup("run", str(bundle), "--report-to", "cloudwatch,metrics")
    assert first.returncode == 4, first.stdout + first.stderr  # the command fails
    assert "warning" not in first.stderr, first.stderr
    events = _events(aws)
    kinds = [(e["kind"], e.get("resource"), e.get("status")) for e in events]
    assert kinds == [("run", f"directory:{target}", "changed"),
                     ("run", f"file:{target}/token", "changed"),
                     ("run", f"file:{target}/plain", "changed"),
                     ("run", "command:fails", "failed"),
                     ("run-summary", None, None)], kinds
    assert events[-1]["totals"]["failed"] == 1 and events[-1]["exit_code"] == 4
    assert len({e["run_id"] for e in events}) == 1
    raw = json.dumps(aws.client("logs").get_log_events(
        logGroupName=GROUP, logStreamName=socket.gethostname())["events"])
    assert CANARY not in raw
    assert (target / "token").read_text() == CANARY  # it did reach the file

    aws.clear_requests()
    second = trueup("run", str(bundle), "--report-to", "cloudwatch")
    assert second.returncode == 4
    assert [r.operation for r in aws.requests(service="logs")] == ["PutLogEvents"]
    assert len(_events(aws)) == len(events) + 2  # the failed command and the summary

    stats = aws.client("cloudwatch").get_metric_statistics(
        Namespace="trueup", MetricName="Failed", Statistics=["Sum"],
        Dimensions=[{"Name": "Environment", "Value": "local"}],
        StartTime=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), Period=3600)
    assert sum(p["Sum"] for p in stats["Datapoints"]) == 1.0


def test_unreachable_logs_keep_the_exit_code_and_arrive_with_the_next_run(tmp_path, trueup,
                                                                          env, aws):
    target = tmp_path / "app"
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - file: {target}
            content: "v1\\n"
        """}, runlist="app")
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=socket.gethostname())
    closed = {"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": "http://127.0.0.1:9"}  # no one there
    down = trueup("run", str(bundle), "--report-to", "cloudwatch", "--detailed-exitcodes",
                  env=closed)
    assert down.returncode == 2, down.stdout + down.stderr
    assert "could not send the report to cloudwatch" in down.stderr
    assert last_report(env)["exit_code"] == 2
    spool = Path(env["TRUEUP_STATE_DIR"]) / "spool" / "cloudwatch.json"
    assert len(json.loads(spool.read_text())) == 2
    first_run = last_report(env)["run_id"]

    aws.clear_requests()
    up = trueup("run", str(bundle), "--report-to", "cloudwatch", "--detailed-exitcodes")
    assert up.returncode == 0, up.stdout + up.stderr
    assert aws.count("PutLogEvents") == 1
    runs = [e["run_id"] for e in _events(aws)]
    assert runs[:2] == [first_run, first_run] and len(set(runs)) == 2, runs
    assert not spool.exists()


def test_an_unknown_destination_is_exit_1(tmp_path, trueup):
    bundle = write_bundle(tmp_path / "bundle", {"app": "resources: []\n"}, runlist="app")
    run = trueup("run", str(bundle), "--report-to", "cloudwatch,slack")
    assert run.returncode == 1
    assert "unknown report destination 'slack'" in run.stderr, run.stderr


# ---------------------------------------------------------------- SSM Compliance (Stubber)


@pytest.fixture
def stubbed_ssm(aws, monkeypatch):
    """trueup's own SSM client with botocore's Stubber: each call is validated against
    the SSM service model, and its parameters are returned for the test to read."""
    from botocore.stub import ANY, Stubber

    ssm = clients.client("ssm")
    stub = Stubber(ssm)
    sent: list[dict] = []

    def expect(n: int = 1) -> None:
        for _ in range(n):
            stub.add_response("put_compliance_items", {}, {
                "ResourceId": ANY, "ResourceType": "ManagedInstance", "ComplianceType": ANY,
                "ExecutionSummary": ANY, "Items": ANY, "ItemContentHash": ANY,
                "UploadType": "COMPLETE"})

    real = ssm.put_compliance_items

    def record(**kwargs):
        sent.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(ssm, "put_compliance_items", record)
    with stub:
        yield expect, sent
        stub.assert_no_pending_responses()
    clients._clients.pop("ssm", None)


def _report_of(trueup, env, *args) -> dict:
    trueup(*args)
    return last_report(env)


def test_compliance_for_converged_noop_drift_and_failed_runs(tmp_path, trueup, env,
                                                              stubbed_ssm):
    expect, sent = stubbed_ssm
    target = tmp_path / "motd"
    good = write_bundle(tmp_path / "good", {"app": f"""
        resources:
          - file: {target}
            content: "hello\\n"
        """}, runlist="app")
    converged = _report_of(trueup, env, "run", str(good))
    target.write_text("drifted\n")
    drift = _report_of(trueup, env, "plan", str(good))
    broken = write_bundle(tmp_path / "broken", {"app": "resources: [{file: relative}]\n"},
                          runlist="app")
    failed = _report_of(trueup, env, "run", str(broken))
    assert failed["exit_code"] == 1 and failed.get("error")

    target_ = shipping.Target(["ssm"], str(tmp_path / "state2"), env="prod",
                              instance_id="i-0123456789abcdef0")
    expect(3)
    for report in (converged, drift, failed):
        assert shipping.ship(report, target_) == {"ssm": "sent"}
    by_run = {s["ExecutionSummary"]["ExecutionId"]: s for s in sent}
    assert len(by_run) == 3

    ok = by_run[converged["run_id"]]
    assert ok["ResourceId"] == "i-0123456789abcdef0" and ok["ComplianceType"] == "Custom:trueup"
    assert {i["Id"]: i["Status"] for i in ok["Items"]} == {f"file:{target}": "COMPLIANT",
                                                           "run": "COMPLIANT"}
    assert isinstance(ok["ExecutionSummary"]["ExecutionTime"], dt.datetime)
    nc = by_run[drift["run_id"]]
    item = next(i for i in nc["Items"] if i["Id"] == f"file:{target}")
    assert (item["Status"], item["Severity"], item["Details"]["status"]) == (
        "NON_COMPLIANT", "MEDIUM", "drifting")
    bad = by_run[failed["run_id"]]
    assert [(i["Id"], i["Status"], i["Severity"]) for i in bad["Items"]] == [
        ("run", "NON_COMPLIANT", "HIGH")]
    assert "absolute" in bad["Items"][0]["Details"]["error"]
    assert len({s["ItemContentHash"] for s in sent}) == 3


def test_compliance_of_verify_results(tmp_path, stubbed_ssm):
    expect, sent = stubbed_ssm
    expect()
    result = {"run_id": "v1", "finished": "2026-12-01T10:00:00.000Z", "checks": [
        {"name": "web/tests/test_web.py::test_index_page", "outcome": "passed"},
        {"name": "web/tests/test_web.py::test_nginx_running_and_enabled", "outcome": "failed",
         "message": "assert False"}]}
    target = shipping.Target(["ssm"], str(tmp_path), instance_id="i-0123456789abcdef0")
    assert shipping.ship(result, target, "verify") == {"ssm": "sent"}
    (one,) = sent
    assert one["ComplianceType"] == "Custom:trueup-verify"
    assert [i["Status"] for i in one["Items"]] == ["COMPLIANT", "NON_COMPLIANT"]


def test_long_identities_fit_the_compliance_item_id():
    ident = "file:/" + "x" * 300
    (item, _run) = shipping.compliance_items(
        {"mode": "run", "resources": [{"resource": ident, "status": "unchanged"}],
         "totals": {"failed": 0}})
    assert len(item["Id"]) == 100 and item["Title"] == ident


def test_verify_results_go_to_cloudwatch(tmp_path, trueup, env, aws):
    from tests.test_verify import _bundle as verify_bundle

    bundle = verify_bundle(tmp_path)
    out = trueup("verify", str(bundle), "--runlist", "app", "--report-to", "cloudwatch")
    assert out.returncode == 1, out.stdout + out.stderr
    events = _events(aws)
    assert [(e["kind"], e.get("check")) for e in events] == [
        ("verify", "app/tests/test_app.py::test_motd_content[local]"),
        ("verify", "app/tests/test_app.py::test_motd_mode[local]"),
        ("verify-summary", None)]
    assert events[-1]["totals"] == {"passed": 0, "failed": 2, "total": 2}


def test_ssm_reporting_names_the_instance_from_imds_and_spools_what_moto_refuses(
        tmp_path, trueup, env, aws, imds):
    # moto 5.2 answers PutComplianceItems with HTTP 500: the upload is kept for the next run
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - file: {tmp_path / "motd"}
            content: "hi\\n"
        """}, runlist="app")
    run = trueup("run", str(bundle), "--report-to", "ssm", "--detailed-exitcodes")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "could not send the report to ssm" in run.stderr
    (upload,) = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "spool" / "ssm.json").read_text())
    assert upload["instance_id"] == imds.instance_id
    assert upload["compliance_type"] == "Custom:trueup"
    assert upload["execution_id"] == last_report(env)["run_id"]


def test_ssm_reporting_off_ec2_is_a_warning(tmp_path, trueup, env, aws):
    bundle = write_bundle(tmp_path / "bundle", {"app": "resources: []\n"}, runlist="app")
    run = trueup("run", str(bundle), "--report-to", "ssm")
    assert run.returncode == 0, run.stderr
    assert "no report to ssm: no instance id" in run.stderr
    assert aws.count(service="ssm") == 0
