"""infra/: the CloudFormation template passes cfn-lint, creates on moto, embeds the SSM
document and the IAM policies kept as data, and the policies pass parliament."""

from __future__ import annotations

import base64
import copy
import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO

INFRA = REPO / "infra"
TEMPLATE = INFRA / "trueup.yml"
POLICIES = {"InstanceRole": INFRA / "iam" / "instance-policy.json",
            "PublisherPolicy": INFRA / "iam" / "publisher-policy.json"}
SAMPLE = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
          "Environment": "prod", "BundleBucket": "trueup-bundles-prod", "BundlePrefix": "",
          "SecretPath": "app"}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub …) read as their long form."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - safe loader subclass


def templates() -> list[Path]:
    """Every CloudFormation template under infra/ (YAML with AWSTemplateFormatVersion)."""
    return sorted(p for p in INFRA.rglob("*.y*ml") if "AWSTemplateFormatVersion" in p.read_text())


def _unsub(node: Any) -> Any:
    """A policy from the template with each ``!Sub "text"`` replaced by its text."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return node["Fn::Sub"]
        return {k: _unsub(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_unsub(v) for v in node]
    return node


def render_policy(path: Path, values: dict[str, str] | None = None) -> dict[str, Any]:
    """A policy of infra/iam/ with its ``${...}`` placeholders filled in."""
    text = path.read_text()
    for key, value in (values or SAMPLE).items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text, f"unfilled placeholder in {path}"
    return json.loads(text)


# ------------------------------------------------------------------ static checks


@pytest.mark.slow
def test_cfn_lint_passes_on_every_template_and_fails_on_a_broken_one(tmp_path):
    found = templates()
    assert TEMPLATE in found
    broken = tmp_path / "broken.yml"  # the negative control, linted in the same run
    broken.write_text(TEMPLATE.read_text().replace("Type: AWS::Logs::LogGroup",
                                                   "Type: AWS::Logs::LogGrup"))
    lint = [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())",
            "--format", "parseable"]
    done = subprocess.run([*lint, *map(str, found), str(broken)], capture_output=True,
                          text=True)
    assert done.returncode & 2, done.stdout + done.stderr  # errors: the broken one's
    problems = [line for line in done.stdout.splitlines() if line.strip()]
    assert problems and all(line.startswith(str(broken)) for line in problems), done.stdout
    assert any(":E3006:" in line for line in problems), done.stdout


def test_the_template_embeds_the_iam_policies_kept_as_data():
    res = load_template()["Resources"]
    (inline,) = res["InstanceRole"]["Properties"]["Policies"]
    assert _unsub(inline["PolicyDocument"]) == json.loads(POLICIES["InstanceRole"].read_text())
    publisher = res["PublisherPolicy"]["Properties"]["PolicyDocument"]
    assert _unsub(publisher) == json.loads(POLICIES["PublisherPolicy"].read_text())


def test_the_template_embeds_the_ssm_document():
    document = INFRA / "ssm" / "run-document.yml"
    assert document.is_file(), "infra/ssm/run-document.yml (the SSM document) is missing"
    content = load_template()["Resources"]["RunDocument"]["Properties"]["Content"]
    assert content == document.read_text(), (
        "RunDocument's Content in infra/trueup.yml differs from infra/ssm/run-document.yml: "
        "run python3 infra/embed_document.py")


def test_embed_document_puts_a_document_into_the_template(tmp_path):
    sys.path.insert(0, str(INFRA))
    try:
        from embed_document import embed
    finally:
        sys.path.remove(str(INFRA))
    document = "schemaVersion: \"2.2\"\nparameters:\n  Noop: {type: String}\n\nmainSteps: []\n"
    out = tmp_path / "t.yml"
    out.write_text(embed(TEMPLATE.read_text(), document))
    loaded = load_template(out)
    assert loaded["Resources"]["RunDocument"]["Properties"]["Content"] == document
    assert loaded["Resources"].keys() == load_template()["Resources"].keys()


def test_the_bucket_is_versioned_encrypted_private_and_tls_only():
    res = load_template()["Resources"]
    props = res["BundleBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert all(props["PublicAccessBlockConfiguration"].values())
    (deny,) = res["BundleBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}}


def test_association_and_rolling_update_are_rate_controlled():
    res = load_template()["Resources"]
    assoc = res["Association"]["Properties"]
    assert assoc["Name"] == {"Ref": "RunDocument"}
    assert assoc["Targets"] == [{"Key": "tag:trueup:env", "Values": [{"Ref": "Environment"}]}]
    assert {"ScheduleExpression", "MaxConcurrency", "MaxErrors",
            "ComplianceSeverity"} <= set(assoc)
    update = res["AutoScalingGroup"]["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert update["MinInstancesInService"] >= 1
    data = res["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["ImageId"] == {"Ref": "AmiId"} and data["UserData"] == {"Ref": "UserData"}
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["InstanceMetadataTags"] == "enabled"


# ------------------------------------------------------------------ the policies


def _allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    """Whether an Allow statement of ``policy`` names ``action`` on ``resource`` (globs)."""
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if st["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in actions) \
                and any(fnmatch.fnmatchcase(resource, r) for r in resources):
            return True
    return False


PARAM = "arn:aws:ssm:us-east-1:123456789012:parameter"
BUCKET = "arn:aws:s3:::trueup-bundles-prod"


@pytest.mark.parametrize(("action", "resource", "allowed"), [
    ("ssm:GetParametersByPath", f"{PARAM}/trueup/prod", True),
    ("ssm:GetParameter", f"{PARAM}/trueup/prod/attributes/db/password", True),
    ("ssm:GetParameter", f"{PARAM}/app/token", True),
    ("ssm:GetParametersByPath", f"{PARAM}/trueup/stage", False),
    ("ssm:GetParameter", f"{PARAM}/trueup/production/bundle", False),
    ("ssm:GetParameter", f"{PARAM}/other/secret", False),
    ("ssm:PutParameter", f"{PARAM}/trueup/prod/bundle", False),
    ("s3:GetObject", f"{BUCKET}/prod/abc.tar.gz", True),
    ("s3:GetObject", f"{BUCKET}/stage/abc.tar.gz", False),
    ("s3:PutObject", f"{BUCKET}/prod/abc.tar.gz", False),
    ("logs:PutLogEvents",
     "arn:aws:logs:us-east-1:123456789012:log-group:/trueup/prod:log-stream:i-0abc", True),
    ("logs:PutLogEvents",
     "arn:aws:logs:us-east-1:123456789012:log-group:/other:log-stream:i-0abc", False),
    ("logs:CreateLogGroup", "arn:aws:logs:us-east-1:123456789012:log-group:/trueup/prod",
     False),
])
def test_instance_policy_scoping(action, resource, allowed):
    """SSM path scoping is checked here, on the document: moto checks SSM against '*'."""
    assert _allows(render_policy(POLICIES["InstanceRole"]), action, resource) is allowed


@pytest.mark.parametrize(("action", "resource", "allowed"), [
    ("s3:PutObject", f"{BUCKET}/prod/abc.tar.gz", True),
    ("ssm:PutParameter", f"{PARAM}/trueup/prod/bundle", True),
    ("ssm:LabelParameterVersion", f"{PARAM}/trueup/prod/bundle", True),
    ("ssm:GetParametersByPath", f"{PARAM}/trueup/prod/attributes", True),
    ("ssm:PutParameter", f"{PARAM}/trueup/prod/runlist", False),
    ("ssm:PutParameter", f"{PARAM}/trueup/stage/bundle", False),
    ("s3:DeleteObject", f"{BUCKET}/prod/abc.tar.gz", False),
])
def test_publisher_policy_scoping(action, resource, allowed):
    assert _allows(render_policy(POLICIES["PublisherPolicy"]), action, resource) is allowed


def _parliament(policy: dict[str, Any]) -> list[tuple[str, str, Any]]:
    from parliament import analyze_policy_string

    found = analyze_policy_string(json.dumps(policy))
    return [(f.issue, f.severity, f.location) for f in found.findings]


def test_policies_pass_parliament_with_nothing_above_low():
    for name, path in POLICIES.items():
        findings = [f for f in _parliament(render_policy(path))
                    if f[1] not in ("LOW", "INFO")]
        assert findings == [], (name, findings)
    # the linter does find things: an action on a resource type it cannot take
    bad = copy.deepcopy(render_policy(POLICIES["InstanceRole"]))
    bad["Statement"][3]["Resource"] = BUCKET  # s3:GetObject on the bucket, not its objects
    assert any(f[0] == "RESOURCE_MISMATCH" for f in _parliament(bad))


# ------------------------------------------------------------------ on moto


# what moto 5.2 accepts in a template but does not create or apply (CREATE_COMPLETE anyway)
PRETENDED = {
    "AWS::S3::BucketPolicy": "skipped: a blank row in ListStackResources",
    "AWS::SSM::Association": "skipped: a blank row in ListStackResources",
    "VersioningConfiguration": "bucket created unversioned",
    "ManagedPolicyArns": "AmazonSSMManagedInstanceCore not attached to the role",
}


@pytest.mark.aws
@pytest.mark.slow
def test_create_stack_on_moto_reaches_create_complete(aws):
    ec2 = aws.client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    params = {"Environment": "test", "AmiId": ami, "Subnets": ",".join(subnets),
              "UserData": base64.b64encode(b"#!/bin/sh\ntrueup run\n").decode()}
    cf = aws.client("cloudformation")
    cf.create_stack(StackName="trueup-test", TemplateBody=TEMPLATE.read_text(),
                    Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                for k, v in params.items()], Capabilities=["CAPABILITY_IAM"])
    (stack,) = cf.describe_stacks(StackName="trueup-test")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert out["RunDocumentName"] == "trueup-run-test" and out["LogGroupName"] == "/trueup/test"

    rows = cf.list_stack_resources(StackName="trueup-test")["StackResourceSummaries"]
    made = {r.get("LogicalResourceId"): r.get("ResourceType") for r in rows}
    declared = {k: v["Type"] for k, v in load_template()["Resources"].items()}
    skipped = {declared[k] for k in declared if k not in made}
    assert skipped == {t for t in PRETENDED if t.startswith("AWS::")}
    assert sum(1 for r in rows if not r.get("LogicalResourceId")) == len(skipped)

    # what moto did create, as declared
    doc = aws.client("ssm").get_document(Name="trueup-run-test", DocumentFormat="YAML")
    assert doc["Content"] == load_template()["Resources"]["RunDocument"]["Properties"]["Content"]
    (group,) = aws.client("logs").describe_log_groups(logGroupNamePrefix="/trueup/test")[
        "logGroups"]
    assert group["retentionInDays"] == 30
    iam = aws.client("iam")
    role = out["InstanceRoleName"]
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["trueup-instance"]
    asg = aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert [g["AutoScalingGroupName"] for g in asg] == [out["AutoScalingGroupName"]]
    # ... and what it only pretends to do
    bucket = out["BundleBucketName"]
    assert "Status" not in aws.client("s3").get_bucket_versioning(Bucket=bucket)
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []


@pytest.mark.aws
def test_buildspec_validates_and_publishes_with_no_manual_step(tmp_path, aws, env):
    """The buildspec's pre_build and build commands, run by bash as CodeBuild runs them
    (one shell), with ``trueup`` from this checkout, publish the repository's recipes."""
    spec = yaml.safe_load((INFRA / "buildspec.yml").read_text())
    assert spec["version"] == 0.2
    commands = spec["phases"]["pre_build"]["commands"] + spec["phases"]["build"]["commands"]
    text = "\n".join(commands)
    assert text.index("trueup validate") < text.index("trueup publish")
    shim = tmp_path / "bin" / "trueup"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m agent \"$@\"\n")
    shim.chmod(0o755)
    aws.client("s3").create_bucket(Bucket="bundles")
    run_env = {**os.environ, **spec["env"]["variables"], "BUNDLE_BUCKET": "bundles",
               "TRUEUP_ENV": "ci", "RECIPES": str(REPO / "recipes"),
               "CODEBUILD_RESOLVED_SOURCE_VERSION": "0123abc", "CODEBUILD_BUILD_NUMBER": "7",
               "PATH": f"{shim.parent}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", "-e", "-c", text], cwd=tmp_path, env=run_env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    pointer = json.loads(aws.client("ssm").get_parameter(Name="/trueup/ci/bundle")
                         ["Parameter"]["Value"])
    assert pointer["version"] == "0123abc"
    assert f"({pointer['sha256']})" in done.stdout
    labels = aws.client("ssm").get_parameter_history(Name="/trueup/ci/bundle")[
        "Parameters"][-1]["Labels"]
    assert labels == ["build-7"]
