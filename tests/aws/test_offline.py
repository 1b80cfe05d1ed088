"""AWS unreachable: run the last verified bundle and say so; with nothing cached, exit 1.

"Unreachable" is simulated by pointing ``AWS_ENDPOINT_URL`` (or only
``AWS_ENDPOINT_URL_S3``) at a port where nothing listens, so the session's moto server
keeps running for the other tests.
"""

from __future__ import annotations

import json
import socket

import pytest

from tests.aws.conftest import ENV, SOURCE, last_report, ssm_put, state_snapshot
from tests.helpers import snapshot

pytestmark = pytest.mark.aws


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_offline_run_uses_the_last_verified_bundle_and_says_so(
        tmp_path, trueup, env, aws, publish, closed_port):
    target = tmp_path / "hello"
    pointer = publish()
    ssm_put(aws, f"/trueup/{ENV}/attributes/hello/greeting", "Hi from SSM")
    assert trueup("run", SOURCE, "-a", f"hello.dir={target}").returncode == 0
    (target / "motd").unlink()  # drift to repair while offline
    cache = state_snapshot(env)

    out = trueup("run", SOURCE, "-a", f"hello.dir={target}",
                 env={"AWS_ENDPOINT_URL": closed_port})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "trueup: offline: cannot reach ssm:/trueup/test" in out.stderr
    assert f"running the last verified bundle version {pointer['version']}" in out.stderr
    assert (target / "motd").read_text().startswith("Hi from SSM, ")  # cached attributes
    report = last_report(env)
    assert report["offline"] is True
    assert "Could not connect to the endpoint URL" in report["offline_reason"]
    assert report["origin"]["sha256"] == pointer["sha256"]
    assert report["totals"]["changed"] == 1
    assert state_snapshot(env) == cache

    js = trueup("run", SOURCE, "-a", f"hello.dir={target}", "--json",
                env={"AWS_ENDPOINT_URL": closed_port})
    assert js.returncode == 0
    assert json.loads(js.stdout)["offline"] is True  # stdout stays pure JSON
    assert "offline" in js.stderr


def test_s3_unreachable_runs_the_pointed_bundle_from_cache(
        tmp_path, trueup, env, aws, publish, closed_port):
    target = tmp_path / "hello"
    publish()
    assert trueup("run", SOURCE, "-a", f"hello.dir={target}").returncode == 0
    before = snapshot(target)
    out = trueup("run", SOURCE, "-a", f"hello.dir={target}",
                 env={"AWS_ENDPOINT_URL_S3": closed_port})
    assert out.returncode == 0, out.stderr
    assert "trueup: offline: s3 GetObject s3://" in out.stderr
    assert snapshot(target) == before
    assert last_report(env)["offline"] is True


def test_offline_with_an_empty_cache_exits_1(tmp_path, trueup, env, aws, closed_port):
    out = trueup("run", SOURCE, env={"AWS_ENDPOINT_URL": closed_port})
    assert out.returncode == 1
    assert out.stderr.startswith("trueup: error: cannot reach ssm:/trueup/test (")
    assert "no verified bundle from it is cached" in out.stderr
    assert "nothing to run offline" in out.stderr
    report = last_report(env)
    assert report["exit_code"] == 1 and "nothing to run offline" in report["error"]
    assert not (tmp_path / "state" / "bundles").exists()


def test_offline_secret_is_a_clear_error(tmp_path, trueup, env, aws, bucket, closed_port):
    from tests.helpers import write_bundle

    target = tmp_path / "app.conf"
    bundle = write_bundle(tmp_path / "b", {"app": f"""\
        resources:
          - file: {target}
            content: "token={{{{ secret('/trueup/{ENV}/app/token') }}}}\\n"
        """}, runlist="app")
    ssm_put(aws, f"/trueup/{ENV}/app/token", "tok-1234567", "SecureString")
    pub = trueup("publish", str(bundle), "--bucket", bucket, "--env", ENV)
    assert pub.returncode == 0, pub.stderr
    assert trueup("run", SOURCE).returncode == 0
    out = trueup("run", SOURCE, env={"AWS_ENDPOINT_URL": closed_port})
    assert out.returncode == 1
    assert "secret '/trueup/test/app/token' cannot be read: this run is offline" in out.stderr
    assert "never cached on disk" in out.stderr
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert b"tok-1234567" not in path.read_bytes(), path


def test_pruning_never_removes_the_bundle_an_offline_run_needs(
        tmp_path, trueup, env, aws, publish, closed_port):
    from agent.sources.archive import pack
    from tests.helpers import write_bundle

    target = tmp_path / "hello"
    pointer = publish()
    assert trueup("run", SOURCE, "-a", f"hello.dir={target}").returncode == 0
    bundles = tmp_path / "state" / "bundles"
    local_shas = []
    for i in range(3):  # other bundles run since, with no old bundle kept
        folder = write_bundle(tmp_path / f"local{i}", {"one": f"""\
            resources:
              - file: "{tmp_path}/local.txt"
                content: "{i}\\n"
            """}, runlist="one")
        local_shas.append(pack(folder, tmp_path / f"local{i}.tar.gz"))
        local = trueup("run", str(tmp_path / f"local{i}.tar.gz"),
                       env={"TRUEUP_CACHE_KEEP": "0"})
        assert local.returncode == 0, local.stderr
        # the one in use and the last verified one, nothing else
        assert {p.name for p in bundles.iterdir()} == {pointer["sha256"], local_shas[-1]}
    (target / "motd").unlink()
    out = trueup("run", SOURCE, "-a", f"hello.dir={target}",
                 env={"AWS_ENDPOINT_URL": closed_port, "TRUEUP_CACHE_KEEP": "0"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "running the last verified bundle" in out.stderr
    assert (target / "motd").exists()
    assert last_report(env)["pruned"]["bundles"] == [local_shas[-1]]
