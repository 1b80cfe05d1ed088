"""The IAM policies of infra/iam/ with moto's IAM enforcement on: the instance policy can
run trueup from ssm: with a secret and ship its logs, and nothing more; the publisher
policy can publish.

moto 5.2 checks SSM and CloudWatch Logs actions against resource ``*`` (a statement
scoped to parameter or log-group ARNs never matches there), so those statements are
widened to ``*`` for this test: it checks their *action sets*; the parameter-path and
log-group scoping is checked on the documents themselves (tests/test_infra.py). S3
resources are enforced as written (the bundle prefix of the environment).
"""

from __future__ import annotations

import json
import socket

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import last_report, ssm_put
from tests.helpers import write_bundle
from tests.test_infra import POLICIES, SAMPLE, render_policy

pytestmark = [pytest.mark.aws, pytest.mark.slow]

ENV = "test"
BUCKET = "trueup-bundles-test"
CANARY = "canary-iam-93b1d2e8"


def _policy(name: str) -> dict:
    policy = render_policy(POLICIES[name], {**SAMPLE, "Environment": ENV,
                                            "BundleBucket": BUCKET})
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if any(a.startswith(("ssm:", "logs:")) for a in actions):
            st["Resource"] = "*"  # moto matches these against "*" only (see the docstring)
    return policy


def _user(iam, name: str, policy: dict) -> dict[str, str]:
    iam.create_user(UserName=name)
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_instance_and_publisher_policies_under_enforcement(tmp_path, trueup, env, aws):
    iam = aws.client("iam")
    instance = _user(iam, "instance", _policy("InstanceRole"))
    publisher = _user(iam, "publisher", _policy("PublisherPolicy"))
    admin = _user(iam, "admin", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("logs").create_log_group(logGroupName=f"/trueup/{ENV}")  # the stack's
    ssm_put(aws, f"/trueup/{ENV}/runlist", "app")
    ssm_put(aws, "/app/token", CANARY, "SecureString")
    target = tmp_path / "out"
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - directory: {target}
          - file: {target}/token
            content: "{{{{ secret('/app/token') }}}}"
        """})
    aws.enforce_iam()

    # the publisher policy publishes (HeadObject, PutObject, GetParameter, PutParameter)
    pub = trueup("publish", str(bundle), "--bucket", BUCKET, "--env", ENV, env=publisher)
    assert pub.returncode == 0, pub.stdout + pub.stderr

    # the instance policy runs from ssm: with a secret and ships its report
    run = trueup("run", f"ssm:/trueup/{ENV}", "--report-to", "cloudwatch", env=instance)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "warning" not in run.stderr, run.stderr
    assert (target / "token").read_text() == CANARY
    assert last_report(env)["runlist"] == ["app"]

    def client(service: str, keys: dict[str, str]):
        return aws.client(service, aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"])

    events = client("logs", admin).get_log_events(
        logGroupName=f"/trueup/{ENV}", logStreamName=socket.gethostname())["events"]
    assert events and CANARY not in json.dumps(events)

    # ... and is refused what it must not do
    with pytest.raises(ClientError) as put_param:
        client("ssm", instance).put_parameter(Name=f"/trueup/{ENV}/bundle", Value="{}",
                                              Type="String", Overwrite=True)
    assert "not authorized to perform: ssm:PutParameter" in str(put_param.value)
    with pytest.raises(ClientError) as put_object:
        client("s3", instance).put_object(Bucket=BUCKET, Key=f"{ENV}/evil.tar.gz", Body=b"x")
    assert put_object.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as other_env:  # S3 resources are enforced: prefix scoping
        client("s3", instance).get_object(Bucket=BUCKET, Key="stage/x.tar.gz")
    assert other_env.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as new_group:
        client("logs", instance).create_log_group(logGroupName="/elsewhere")
    assert "logs:CreateLogGroup" in str(new_group.value)
    # the publisher cannot run what the instance runs
    with pytest.raises(ClientError):
        client("logs", publisher).put_log_events(
            logGroupName=f"/trueup/{ENV}", logStreamName=socket.gethostname(),
            logEvents=[{"timestamp": 0, "message": "x"}])
