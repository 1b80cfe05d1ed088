"""agent.aws.imds against a real IMDSv2 HTTP server (tests/servers/imds_server.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from agent.aws import imds as imds_mod
from agent.aws.imds import ImdsClient, ImdsError, ImdsUnavailable
from tests.servers.imds_server import TOKEN_PATH, ImdsServer

pytest_plugins = ["tests.servers.fixtures"]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port with nothing listening (connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield port


def test_ec2_facts_gathers_everything(imds: ImdsServer) -> None:
    facts = imds_mod.ec2_facts()
    assert facts == {
        "instance_id": "i-0123456789abcdef0",
        "instance_type": "t3.micro",
        "ami_id": "ami-0123456789abcdef0",
        "region": "eu-west-1",
        "availability_zone": "eu-west-1a",
        "account_id": "123456789012",
        "private_ip": "10.0.1.23",
        "architecture": "x86_64",
        "iam_role": "trueup-agent",
        "instance_profile_arn": "arn:aws:iam::123456789012:instance-profile/trueup-agent-profile",
        "tags": {"Name": "web-1", "trueup:env": "prod", "trueup:role": "web"},
    }
    assert imds.token_puts == 1


def test_each_fact_function(imds: ImdsServer) -> None:
    imds.region = "ap-southeast-2"
    imds.availability_zone = "ap-southeast-2b"
    assert imds_mod.default_client().instance_id() == "i-0123456789abcdef0"
    assert imds_mod.default_client().instance_type() == "t3.micro"
    assert imds_mod.default_client().ami_id() == "ami-0123456789abcdef0"
    assert imds_mod.region() == "ap-southeast-2"
    assert imds_mod.default_client().availability_zone() == "ap-southeast-2b"
    assert imds_mod.default_client().account_id() == "123456789012"
    assert imds_mod.default_client().private_ip() == "10.0.1.23"
    assert imds_mod.default_client().iam_role() == "trueup-agent"
    assert imds_mod.default_client().tags() == {"Name": "web-1", "trueup:env": "prod",
                                                "trueup:role": "web"}
    assert imds_mod.default_client().identity_document()["region"] == "ap-southeast-2"


def test_one_token_is_reused_for_every_call_of_the_process(imds: ImdsServer) -> None:
    imds_mod.ec2_facts()
    imds_mod.default_client().instance_id()
    imds_mod.default_client().tags()
    threads = [threading.Thread(target=imds_mod.region) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert imds.token_puts == 1
    assert len(imds.tokens_issued) == 1
    token = imds.tokens_issued[0]
    gets = imds.gets
    assert len(gets) > 10
    assert all(r.token == token and r.status in (200, 404) for r in gets)


def test_token_put_carries_the_ttl_and_gets_carry_the_token(imds: ImdsServer) -> None:
    client = ImdsClient(imds.endpoint, token_ttl=300)
    client.instance_id()
    put, get = imds.requests
    assert (put.method, put.path, put.status) == ("PUT", TOKEN_PATH, 200)
    assert (get.method, get.path, get.status, get.token) == (
        "GET",
        "/latest/meta-data/instance-id",
        200,
        put.token,
    )


def test_expired_token_is_replaced_once(imds: ImdsServer) -> None:
    client = ImdsClient(imds.endpoint)
    assert client.instance_id() == "i-0123456789abcdef0"
    imds.expire_tokens()
    assert client.instance_type() == "t3.micro"
    assert imds.token_puts == 2
    assert [r.status for r in imds.gets] == [200, 401, 200]


def test_get_without_token_is_refused_by_the_fake(imds: ImdsServer) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", imds.port, timeout=2)
    conn.request("GET", "/latest/meta-data/instance-id")
    assert conn.getresponse().status == 401
    conn.close()


def test_tags_disabled_gives_none(imds: ImdsServer) -> None:
    imds.tags_enabled = False
    assert imds_mod.default_client().tags() is None
    assert imds_mod.ec2_facts()["tags"] is None


def test_no_instance_profile_gives_none(imds: ImdsServer) -> None:
    imds.role_name = None
    facts = imds_mod.ec2_facts()
    assert facts["iam_role"] is None
    assert facts["instance_profile_arn"] is None


def test_tag_keys_with_special_characters(imds: ImdsServer) -> None:
    imds.tags = {"trueup:env": "staging", "a+b=c,d@e": "x y", "empty": ""}
    assert imds_mod.default_client().tags() == {"trueup:env": "staging", "a+b=c,d@e": "x y",
                                                "empty": ""}


def test_unreachable_endpoint_raises_imds_unavailable(closed_port: int) -> None:
    client = ImdsClient(f"http://127.0.0.1:{closed_port}", connect_timeout=0.2)
    with pytest.raises(ImdsUnavailable, match="unreachable"):
        client.instance_id()
    # The failure is remembered: the next call does not go back to the network.
    with pytest.raises(ImdsUnavailable):
        client.facts()
    assert client.token_requests == 1


def test_unroutable_endpoint_raises_imds_unavailable() -> None:
    # TEST-NET-1 (RFC 5737): never routed, so the connection attempt times out or fails.
    client = ImdsClient("http://192.0.2.1", connect_timeout=0.2)
    with pytest.raises(ImdsUnavailable):
        client.facts()


def test_env_endpoint_and_disabled_flag(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{closed_port}/")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    imds_mod.reset_default_client()
    assert imds_mod.default_client().endpoint == f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ImdsUnavailable, match="AWS_EC2_METADATA_DISABLED"):
        imds_mod.ec2_facts()
    monkeypatch.delenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    assert imds_mod.default_client().endpoint == "http://169.254.169.254"
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")
    assert imds_mod.default_client().endpoint == "http://[fd00:ec2::254]"
    imds_mod.reset_default_client()


def test_hanging_token_put_explains_the_hop_limit(imds: ImdsServer) -> None:
    imds.token_mode = "hang"
    client = ImdsClient(imds.endpoint, read_timeout=0.2, retries=0)
    with pytest.raises(ImdsUnavailable, match="hop limit"):
        client.instance_id()


@pytest.mark.parametrize(
    ("status", "hint"),
    [(401, "HttpPutResponseHopLimit"), (403, "HttpEndpoint=disabled"), (405, "not accept PUT")],
)
def test_refused_token_put_is_explained(imds: ImdsServer, status: int, hint: str) -> None:
    imds.token_mode = "refuse"
    imds.token_status = status
    with pytest.raises(ImdsUnavailable, match=hint) as err:
        ImdsClient(imds.endpoint).instance_id()
    assert f"HTTP {status}" in str(err.value)


def test_failed_token_refresh_raises_unavailable(imds: ImdsServer) -> None:
    client = ImdsClient(imds.endpoint)
    client.token()
    imds.expire_tokens()
    imds.token_mode = "refuse"  # the refresh after the 401 fails too
    with pytest.raises(ImdsUnavailable):
        client.instance_id()


def test_missing_required_path_is_an_imds_error(imds: ImdsServer) -> None:
    client = ImdsClient(imds.endpoint)
    assert client.get("/latest/meta-data/no-such-thing") is None
    with pytest.raises(ImdsError, match="404"):
        client._get_required("/latest/meta-data/no-such-thing")
