"""Parameter Store throttles half of the requests: the run still succeeds and counts retries.

The throttling is injected inside the ``trueup`` subprocess by ``throttle_hook/sitecustomize.py``
(a botocore ``before-send`` hook; see its docstring), put first on that process's
``PYTHONPATH``. Retries are botocore's own (standard mode, with jitter).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.aws.conftest import ENV, SOURCE, last_report, ssm_put
from tests.helpers import REPO

pytestmark = pytest.mark.aws

HOOK = Path(__file__).parent / "throttle_hook"


@pytest.mark.slow
def test_half_of_ssm_requests_throttled_still_converges(tmp_path, trueup, env, aws, publish):
    target = tmp_path / "hello"
    publish()
    for i in range(24):  # 26 parameters: three pages of GetParametersByPath
        ssm_put(aws, f"/trueup/{ENV}/attributes/extra/k{i:02d}", str(i))
    ssm_put(aws, "/elsewhere/token", "tok-0123456789", "SecureString")
    ssm_put(aws, f"/trueup/{ENV}/runlist", "hello")
    aws.clear_requests()
    throttled = {"PYTHONPATH": f"{HOOK}{os.pathsep}{REPO}", "TRUEUP_TEST_THROTTLE_SSM": "1",
                 "AWS_MAX_ATTEMPTS": "4"}
    out = trueup("run", SOURCE, "-a", f"hello.dir={target}", env=throttled)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (target / "motd").exists()
    stats = last_report(env)["aws"]
    ssm_calls = aws.count(service="ssm")  # only the attempts that got through reach moto
    assert ssm_calls == stats["calls"]["ssm:GetParametersByPath"] >= 3
    assert stats["retries"] == ssm_calls  # each call: one throttled attempt, one retry
    assert stats["requests"] == 2 * ssm_calls + aws.count(service="s3")
    assert last_report(env)["offline"] is False


def test_throttling_beyond_the_retries_runs_offline_from_cache(tmp_path, trueup, env, aws,
                                                               publish):
    target = tmp_path / "hello"
    publish()
    assert trueup("run", SOURCE, "-a", f"hello.dir={target}").returncode == 0
    throttled = {"PYTHONPATH": f"{HOOK}{os.pathsep}{REPO}", "TRUEUP_TEST_THROTTLE_SSM": "1",
                 "AWS_MAX_ATTEMPTS": "1"}  # no retry: the throttle is the answer
    out = trueup("run", SOURCE, "-a", f"hello.dir={target}", env=throttled)
    assert out.returncode == 0, out.stderr
    assert "trueup: offline:" in out.stderr and "ThrottlingException" in out.stderr
    assert last_report(env)["offline"] is True
