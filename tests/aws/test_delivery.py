"""End to end on moto: publish the example bundle, run it from ssm:, update, roll back."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.aws.conftest import BUCKET, ENV, EXAMPLE, SOURCE, last_report, ssm_put
from tests.helpers import snapshot

pytestmark = pytest.mark.aws

INSTANCE_RECIPE = """\
description: kept in Parameter Store; reads instance facts
resources:
  - file: "{{ attributes.hello.dir }}/instance"
    content: "{{ facts.ec2.instance_id }} {{ facts.ec2.availability_zone }} \\
      {{ facts.ec2.tags['trueup:role'] }} {{ facts.ec2.account_id }}\\n"
    requires: ["directory:{{ attributes.hello.dir }}"]
"""


@pytest.mark.slow
def test_publish_run_update_and_rollback(tmp_path, trueup, env, aws, imds, publish):
    target = tmp_path / "hello"
    first = publish()
    assert first["uri"] == f"s3://{BUCKET}/{ENV}/{first['sha256']}.tar.gz"
    head = aws.client("s3").head_object(Bucket=BUCKET, Key=first["uri"].split("/", 3)[3])
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"]["sha256"] == first["sha256"]
    ssm_put(aws, f"/trueup/{ENV}/attributes/hello/greeting", "Hello from Parameter Store")
    ssm_put(aws, f"/trueup/{ENV}/runlist", "hello")
    ssm_put(aws, f"/trueup/{ENV}/roles/web/runlist", "hello,instance")  # imds: trueup:role=web
    ssm_put(aws, f"/trueup/{ENV}/recipes/instance", INSTANCE_RECIPE)

    run = trueup("run", "--source", SOURCE, "-a", f"hello.dir={target}", "--detailed-exitcodes")
    assert run.returncode == 2, run.stdout + run.stderr
    assert (target / "motd").read_text().startswith("Hello from Parameter Store, ")
    assert (target / "instance").read_text() == \
        f"{imds.instance_id} {imds.availability_zone} web {imds.account_id}\n"
    report = last_report(env)
    assert report["origin"]["sha256"] == first["sha256"]
    assert report["offline"] is False
    assert report["runlist"] == ["hello", "instance"]
    assert report["aws"]["calls"] == {"s3:GetObject": 1, "ssm:GetParametersByPath": 1}
    assert imds.token_puts == 1  # one IMDSv2 token for the role tag and every fact

    aws.clear_requests()
    before = snapshot(target)
    again = trueup("run", SOURCE, "-a", f"hello.dir={target}", "--detailed-exitcodes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 changed, 0 failed" in again.stdout
    assert snapshot(target) == before
    gets = aws.requests("GetObject", service="s3")
    assert [(g.status, bool(g.headers.get("if-none-match"))) for g in gets] == [(304, True)]
    assert aws.count(service="s3") == 1
    assert aws.count(service="ssm") == 1  # one GetParametersByPath page

    # a new version: the next run picks it up
    bundle = tmp_path / "bundle"
    shutil.copytree(EXAMPLE, bundle, ignore=shutil.ignore_patterns("__pycache__"))
    (bundle / "hello/files/banner.txt").write_text("version two\n")
    second = publish(bundle, "--bundle-version", "v2")
    assert second["sha256"] != first["sha256"] and second["version"] == "v2"
    upd = trueup("run", SOURCE, "-a", f"hello.dir={target}")
    assert upd.returncode == 0, upd.stderr
    assert (target / "conf.d/banner.txt").read_text() == "version two\n"
    assert last_report(env)["origin"]["version"] == "v2"

    # roll back to the first pointer (parameter version 1)
    back = trueup("publish", "--env", ENV, "--rollback", "1")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout.splitlines()[-1])["sha256"] == first["sha256"]
    aws.clear_requests()
    old = trueup("run", SOURCE, "-a", f"hello.dir={target}")
    assert old.returncode == 0, old.stderr
    assert (target / "conf.d/banner.txt").read_text() == (EXAMPLE / "hello/files/banner.txt") \
        .read_text()
    assert [g.status for g in aws.requests("GetObject", service="s3")] == [304]  # cached


@pytest.mark.slow
def test_rollback_by_bundle_version_and_label(trueup, aws, publish, tmp_path):
    first = publish(EXAMPLE, "--bundle-version", "r1", "--label", "stable")
    bundle = tmp_path / "b"
    shutil.copytree(EXAMPLE, bundle, ignore=shutil.ignore_patterns("__pycache__"))
    (bundle / "hello/files/banner.txt").write_text("two\n")
    publish(bundle, "--bundle-version", "r2")
    for target in ("r1", "stable"):
        publish(bundle, "--bundle-version", "r3")
        out = trueup("publish", "--env", ENV, "--rollback", target)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.splitlines()[-1])["sha256"] == first["sha256"]
    missing = trueup("publish", "--env", ENV, "--rollback", "nope")
    assert missing.returncode == 1
    assert "cannot roll back /trueup/test/bundle to 'nope'" in missing.stderr


def test_publish_is_deterministic_and_idempotent(trueup, aws, publish):
    one = publish()
    aws.clear_requests()
    out = trueup("publish", str(EXAMPLE), "--bucket", BUCKET, "--env", ENV)
    assert out.returncode == 0, out.stderr
    assert "is already version 1" in out.stdout
    assert json.loads(out.stdout.splitlines()[-1]) == one
    assert aws.count("PutObject") == 0 and aws.count("PutParameter") == 0


def test_publish_validates_first_and_uploads_nothing_when_invalid(tmp_path, trueup, aws, bucket):
    bad = tmp_path / "bad"
    (bad / "web").mkdir(parents=True)
    (bad / "web/recipe.yml").write_text("resources:\n  - fiel: /etc/x\n")
    out = trueup("publish", str(bad), "--bucket", bucket, "--env", ENV)
    assert out.returncode == 1
    assert "unknown resource type 'fiel'" in out.stderr
    assert aws.count("PutObject") == 0 and aws.count("PutParameter") == 0


@pytest.mark.parametrize("argv, message", [
    (["publish", "--env", ENV], "publish needs a bundle folder"),
    (["publish", str(EXAMPLE), "--env", ENV], "publish needs --bucket"),
    (["publish", str(EXAMPLE), "--bucket", BUCKET, "--env", "a/b"], "--env must be"),
    (["publish", str(EXAMPLE), "--env", ENV, "--rollback", "1"], "not both"),
])
def test_publish_bad_arguments(trueup, aws, argv, message):
    out = trueup(*argv)
    assert out.returncode == 1
    assert message in out.stderr
    assert out.stderr.count("\n") == 1  # one precise message
    assert aws.count("PutObject") == 0 and aws.count("PutParameter") == 0
