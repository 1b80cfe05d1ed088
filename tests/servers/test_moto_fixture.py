"""Smoke tests of the AWS stand-ins: the ``aws`` fixture, its request log, and ``imds``."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.servers.imds_server import ImdsServer
from tests.servers.moto_server import MotoServer

pytest_plugins = ["tests.servers.fixtures"]

pytestmark = pytest.mark.aws


def test_environment_points_boto3_at_moto(aws: MotoServer) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert os.environ["AWS_MAX_ATTEMPTS"] == "1"
    assert aws.endpoint.startswith("http://127.0.0.1:")
    # No endpoint_url, region or keys passed: all from the environment.
    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_ssm_secure_string_round_trip_is_counted(aws: MotoServer) -> None:
    ssm = boto3.client("ssm")
    ssm.put_parameter(
        Name="/trueup/prod/attributes/db/password", Value="s3cr3t", Type="SecureString"
    )
    got = ssm.get_parameter(Name="/trueup/prod/attributes/db/password", WithDecryption=True)
    assert got["Parameter"]["Value"] == "s3cr3t"
    assert got["Parameter"]["Type"] == "SecureString"
    raw = ssm.get_parameter(Name="/trueup/prod/attributes/db/password")["Parameter"]["Value"]
    assert raw != "s3cr3t"  # moto's fake ciphertext: kms:alias/aws/ssm:s3cr3t

    assert aws.count("PutParameter", service="ssm") == 1
    gets = aws.requests("GetParameter")
    assert [(r.service, r.status) for r in gets] == [("ssm", 200), ("ssm", 200)]
    assert gets[0].headers["x-amz-target"] == "AmazonSSM.GetParameter"
    assert "authorization" not in gets[0].headers


def test_s3_conditional_get_gives_304_and_is_counted_once(aws: MotoServer) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="trueup-bundles")
    put = s3.put_object(Bucket="trueup-bundles", Key="prod/bundle.tar.gz", Body=b"bundle bytes")
    etag = put["ETag"]
    assert etag == f'"{hashlib.md5(b"bundle bytes").hexdigest()}"'  # moto: ETag = MD5

    got = s3.get_object(Bucket="trueup-bundles", Key="prod/bundle.tar.gz")
    assert got["Body"].read() == b"bundle bytes"
    assert got["ETag"] == etag
    aws.clear_requests()

    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="trueup-bundles", Key="prod/bundle.tar.gz", IfNoneMatch=etag)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert err.value.response["Error"]["Code"] == "304"

    assert aws.count() == 1, aws.requests()
    (request,) = aws.requests("GetObject", service="s3")
    assert request.status == 304
    assert request.headers["if-none-match"] == etag
    assert request.path == "/trueup-bundles/prod/bundle.tar.gz"


def test_query_protocol_operations_are_named_and_moto_still_gets_the_body(
    aws: MotoServer,
) -> None:
    ec2 = boto3.client("ec2")
    assert ec2.describe_tags()["Tags"] == []
    (request,) = aws.requests("DescribeTags")
    assert (request.service, request.status) == ("ec2", 200)


def test_s3_operation_names(aws: MotoServer) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bkt-ops")
    s3.put_bucket_versioning(Bucket="bkt-ops", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="bkt-ops", Key="k", Body=b"x")
    s3.head_object(Bucket="bkt-ops", Key="k")
    s3.list_objects_v2(Bucket="bkt-ops")
    s3.copy_object(Bucket="bkt-ops", Key="k2", CopySource={"Bucket": "bkt-ops", "Key": "k"})
    s3.delete_object(Bucket="bkt-ops", Key="k2")
    assert [r.operation for r in aws.requests(service="s3")] == [
        "CreateBucket",
        "PutBucketVersioning",
        "PutObject",
        "HeadObject",
        "ListObjectsV2",
        "CopyObject",
        "DeleteObject",
    ]


def test_reset_wipes_state_between_tests(aws: MotoServer) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="leftover")
    boto3.client("ssm").put_parameter(Name="/x", Value="1", Type="String")
    aws.reset()
    assert s3.list_buckets()["Buckets"] == []
    assert boto3.client("ssm").describe_parameters()["Parameters"] == []
    assert aws.count() == 2  # only the two calls after the reset


def test_subprocesses_reach_moto_through_the_environment(aws: MotoServer) -> None:
    boto3.client("ssm").put_parameter(
        Name="/trueup/prod/runlist", Value="base,web", Type="StringList"
    )
    code = (
        "import boto3; print(boto3.client('ssm')"
        ".get_parameter(Name='/trueup/prod/runlist')['Parameter']['Value'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "base,web"
    assert aws.count("GetParameter") == 1


def test_unimplemented_action_is_a_500_and_logged(aws: MotoServer) -> None:
    with pytest.raises(ClientError) as err:
        boto3.client("ssm").list_command_invocations()
    assert err.value.response["Error"]["Code"] == "500"
    (request,) = aws.requests("ListCommandInvocations")  # AWS_MAX_ATTEMPTS=1: no retry
    assert request.status == 500


def test_aws_and_imds_together(aws: MotoServer, imds: ImdsServer) -> None:
    assert "AWS_EC2_METADATA_DISABLED" not in os.environ
    assert os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == imds.endpoint
    assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint
    from botocore.utils import IMDSRegionProvider

    assert IMDSRegionProvider(boto3.session.Session()._session).provide() == imds.region


def test_iam_enforcement_is_switched_off_again_by_reset(aws: MotoServer) -> None:
    aws.enforce_iam()
    with pytest.raises(ClientError) as err:
        boto3.client("ssm").describe_parameters()  # the dummy keys belong to no IAM user
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    aws.reset()
    assert boto3.client("ssm").describe_parameters()["Parameters"] == []
