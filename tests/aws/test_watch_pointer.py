"""trueup watch polls the release pointer: a publish is converged at the next poll, and
an idle daemon costs one GetParameter per poll period and nothing else (moto)."""

from __future__ import annotations

import time

import pytest

from tests.aws.conftest import SOURCE
from tests.helpers import write_bundle
from tests.watchd import Watch, wait_for

pytestmark = [pytest.mark.aws, pytest.mark.slow]


def _release(tmp_path, out, version: str):
    return write_bundle(tmp_path / f"bundle-{version}", {"app": f"""
        resources:
          - file: {out}
            content: "{version}\\n"
        """}, runlist="app")


def test_a_new_release_is_converged_at_the_next_poll(aws, publish, env, tmp_path):
    out = tmp_path / "release"
    publish(_release(tmp_path, out, "v1"), "--bundle-version", "v1")
    w = Watch(env, SOURCE, "--poll", "1", "--splay", "0", log=tmp_path / "watch.log")
    try:
        wait_for(lambda: w.runs("start"), timeout=60)
        assert out.read_text() == "v1\n"
        time.sleep(1.5)  # the daemon has seen the pointer once
        publish(_release(tmp_path, out, "v2"), "--bundle-version", "v2")
        (run,) = wait_for(lambda: w.runs("pointer"), timeout=60)
        assert out.read_text() == "v2\n"
        assert run["exit_code"] == 0
        assert "moved to v2" in w.output()

        aws.clear_requests()
        time.sleep(3.5)
        idle = aws.requests()
        assert idle, "the daemon stopped polling"
        assert {r.operation for r in idle} == {"GetParameter"}
        assert len(idle) <= 5  # one a second, never a walk of the tree or an S3 request
        assert len(w.runs()) == 2
    finally:
        assert w.stop() == 0
