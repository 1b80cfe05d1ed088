"""Test-only: throttle every other Parameter Store request of the process that loads it.

How it gets into trueup: a test puts this folder first on the ``PYTHONPATH`` of the
``trueup`` subprocess, and Python imports ``sitecustomize`` at start-up. Nothing in the
agent knows about it. It wraps botocore's ``Session.create_client`` so that every SSM
client gets a ``before-send`` handler; on odd-numbered attempts the handler answers
for AWS with HTTP 400 ``ThrottlingException`` (the request never leaves the process),
which is exactly what botocore's retry handler sees when Parameter Store throttles.
Enabled only when ``TRUEUP_TEST_THROTTLE_SSM=1``.
"""

from __future__ import annotations

import os

if os.environ.get("TRUEUP_TEST_THROTTLE_SSM") == "1":
    import botocore.session
    from botocore.awsrequest import AWSResponse

    _attempts = {"ssm": 0}
    _BODY = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'

    class _Raw:
        def stream(self, **_):
            yield _BODY

    def _throttle(request=None, **_):
        _attempts["ssm"] += 1
        if _attempts["ssm"] % 2 == 1:
            return AWSResponse(request.url, 400,
                               {"Content-Type": "application/x-amz-json-1.1"}, _Raw())
        return None

    _create_client = botocore.session.Session.create_client

    def create_client(self, service_name, *args, **kwargs):
        client = _create_client(self, service_name, *args, **kwargs)
        if service_name == "ssm":
            client.meta.events.register_first("before-send.ssm", _throttle)
        return client

    botocore.session.Session.create_client = create_client
