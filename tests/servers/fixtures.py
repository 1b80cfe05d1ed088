"""pytest fixtures for the AWS stand-ins: ``moto_server``, ``aws`` and ``imds``.

Load them with one line in ``tests/conftest.py``::

    pytest_plugins = ["tests.servers.fixtures"]

- ``moto_server`` (session): one moto server subprocess for the whole run (see
  ``moto_server.MotoServer``); SSM and S3 are warmed up once.
- ``aws`` (function): the same server, reset (all backends wiped, IAM enforcement off,
  request log empty), and the environment pointed at it: every ``AWS_*`` variable is
  cleared, then ``AWS_ENDPOINT_URL``, dummy credentials, ``AWS_DEFAULT_REGION``,
  ``AWS_MAX_ATTEMPTS=1``, ``AWS_CONFIG_FILE=/dev/null``... and
  ``AWS_EC2_METADATA_DISABLED=true`` unless the test also uses ``imds``. All restored
  after the test. Plain ``boto3.client("ssm")`` and ``trueup`` subprocesses reach moto.
- ``imds`` (function): a fresh fake IMDSv2 (``imds_server.ImdsServer``) with
  ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` pointing at it; change its fields to change its
  answers (``imds.tags_enabled = False``).

Example:
    @pytest.mark.aws
    def test_reads_pointer(aws):
        aws.client("ssm").put_parameter(Name="/trueup/prod/bundle", Value="{}", Type="String")
        ...
        assert aws.count("GetParameter") == 1
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.servers.imds_server import ImdsServer
from tests.servers.moto_server import MotoServer

#: Variables the ``imds`` fixture owns; ``aws`` leaves them alone when both are used.
_IMDS_VARS = ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_V1_DISABLED")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server subprocess for the session, on 127.0.0.1 and an ephemeral port."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    try:
        server.warm_up()
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> MotoServer:
    """The moto server, reset, with the environment pointing boto3 at it for this test."""
    moto_server.reset()
    with_imds = "imds" in request.fixturenames
    for name in list(os.environ):
        if name.startswith("AWS_") and not (with_imds and name in _IMDS_VARS):
            monkeypatch.delenv(name)
    for name, value in moto_server.env(imds=with_imds).items():
        monkeypatch.setenv(name, value)
    return moto_server


@pytest.fixture
def imds(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImdsServer]:
    """A fresh fake IMDSv2 server, reachable through ``AWS_EC2_METADATA_SERVICE_ENDPOINT``."""
    from agent.aws import imds as imds_client

    server = ImdsServer().start()
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.endpoint)
    monkeypatch.setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
    imds_client.reset_default_client()
    try:
        yield server
    finally:
        server.stop()
        imds_client.reset_default_client()
