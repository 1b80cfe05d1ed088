"""facts.ec2 from IMDSv2: lazy, one token, tags from IMDS or DescribeTags, fast off EC2."""

from __future__ import annotations

import json
import time

import pytest

from tests.aws.conftest import last_report
from tests.helpers import write_bundle

pytestmark = pytest.mark.aws

FACTS = ("{{ facts.ec2.instance_id }} {{ facts.ec2.instance_type }} {{ facts.ec2.ami_id }} "
         "{{ facts.ec2.region }} {{ facts.ec2.availability_zone }} {{ facts.ec2.account_id }} "
         "{{ facts.ec2.private_ip }} {{ facts.ec2.iam_role }} "
         "{{ facts.ec2.tags['trueup:role'] }}")


def _bundle(tmp_path, content: str):
    return write_bundle(tmp_path / "b", {"x": f"""\
        resources:
          - file: {tmp_path}/out
            content: "{content}"
        """}, runlist="x")


def test_recipe_reads_instance_facts_with_one_token(tmp_path, trueup, imds):
    out = trueup("run", str(_bundle(tmp_path, FACTS)))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out").read_text() == (
        "i-0123456789abcdef0 t3.micro ami-0123456789abcdef0 eu-west-1 eu-west-1a "
        "123456789012 10.0.1.23 trueup-agent web")
    assert imds.token_puts == 1
    assert all(r.token for r in imds.gets)


def test_no_imds_request_unless_a_recipe_reads_ec2_facts(tmp_path, trueup, imds):
    out = trueup("run", str(_bundle(tmp_path, "{{ facts.hostname }}")))
    assert out.returncode == 0, out.stderr
    assert imds.requests == []


def test_tags_fall_back_to_describe_tags(tmp_path, trueup, aws, imds):
    ec2 = aws.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "trueup:role", "Value": "from-api"}]}])
    imds.instance_id = made["Instances"][0]["InstanceId"]
    imds.tags_enabled = False
    aws.clear_requests()
    out = trueup("run", str(_bundle(tmp_path, "{{ facts.ec2.tags['trueup:role'] }}")))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out").read_text() == "from-api"
    assert aws.count("DescribeTags", service="ec2") == 1


def test_off_ec2_a_recipe_reading_facts_fails_fast_and_clearly(tmp_path, trueup, env):
    start = time.monotonic()
    out = trueup("run", str(_bundle(tmp_path, "{{ facts.ec2.region }}")),
                 env={"AWS_EC2_METADATA_DISABLED": "true"})
    assert out.returncode == 1
    assert "facts.ec2 is not available" in out.stderr and "recipe.yml:3" in out.stderr
    assert time.monotonic() - start < 10
    assert "facts.ec2 is not available" in last_report(env)["error"]


def test_trueup_facts_includes_ec2_on_ec2(trueup, imds):
    out = trueup("facts")
    assert out.returncode == 0, out.stderr
    ec2 = json.loads(out.stdout)["ec2"]
    assert ec2["instance_id"] == imds.instance_id
    assert ec2["tags"]["trueup:env"] == "prod"
    assert imds.token_puts == 1


def test_trueup_facts_off_ec2_is_fast(trueup):
    start = time.monotonic()
    out = trueup("facts", env={"AWS_EC2_METADATA_DISABLED": "true"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ec2"] is None
    assert time.monotonic() - start < 10


def test_unreachable_imds_is_bounded(trueup):
    import socket

    with socket.socket() as sock:  # a port where nothing answers
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    out = trueup("facts", env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{port}",
                               "AWS_EC2_METADATA_DISABLED": "false"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ec2"] is None
    assert time.monotonic() - start < 10


def test_one_describe_tags_per_run_for_env_role_and_template(tmp_path, trueup, aws, imds):
    """Tags only in DescribeTags; the env and role come from them, role run lists apply and a
    recipe reads facts.ec2.tags: the run asks DescribeTags once (counted at the server)."""
    ec2 = aws.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "trueup:env", "Value": "tagged"},
                                              {"Key": "trueup:role", "Value": "db"}]}])
    imds.instance_id = made["Instances"][0]["InstanceId"]
    imds.tags_enabled = False
    ssm = aws.client("ssm")
    recipe = (f"resources:\n  - file: {tmp_path}/role\n"
              "    content: \"{{ facts.ec2.tags['trueup:role'] }} "
              "{{ facts.ec2.tags['trueup:env'] }}\"\n")
    for name, value in (("/trueup/tagged/recipes/r", recipe),
                        ("/trueup/tagged/recipes/other", "resources: []\n"),
                        ("/trueup/tagged/runlist", "other"),
                        ("/trueup/tagged/roles/db/runlist", "r")):
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    aws.clear_requests()
    out = trueup("run")  # no source: ssm:/trueup/<trueup:env tag>
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "role").read_text() == "db tagged"
    assert aws.count("DescribeTags", service="ec2") == 1
