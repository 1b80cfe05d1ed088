"""s3_file on moto: download and verify, one conditional request when unchanged, a wrong
checksum fails the resource and changes nothing, the object's own checksum is used."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.aws import objects
from agent.errors import TrueupError
from tests.aws.conftest import last_report
from tests.helpers import REPO, snapshot, write_bundle

pytestmark = pytest.mark.aws

BUCKET = "artifacts"
BODY = b"\x00binary artifact\n" * 1000
SHA = hashlib.sha256(BODY).hexdigest()


def _bundle(tmp_path: Path, target: Path, **extra: str) -> Path:
    fields = "".join(f"\n            {k}: {v!r}" for k, v in extra.items())
    return write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - s3_file: {target}
            source: s3://{BUCKET}/app/app.bin
            mode: "0640"{fields}
        """}, runlist="app")


@pytest.fixture
def artifact(aws) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="app/app.bin", Body=BODY)


def test_downloads_verifies_then_costs_one_conditional_request(tmp_path, trueup, env, aws,
                                                               artifact):
    target = tmp_path / "out" / "app.bin"
    target.parent.mkdir()
    bundle = _bundle(tmp_path, target, sha256=SHA)
    first = trueup("run", str(bundle), "--detailed-exitcodes")
    assert first.returncode == 2, first.stdout + first.stderr
    assert target.read_bytes() == BODY
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [r.status for r in aws.requests("GetObject", service="s3")] == [200]

    aws.clear_requests()
    before = snapshot(target.parent)
    second = trueup("run", str(bundle), "--detailed-exitcodes")
    assert second.returncode == 0, second.stdout + second.stderr
    gets = aws.requests(service="s3")
    assert [(g.operation, g.status, bool(g.headers.get("if-none-match"))) for g in gets] == [
        ("GetObject", 304, True)]
    assert snapshot(target.parent) == before

    # a hand edit is repaired: the file no longer holds the verified content
    target.write_bytes(b"edited\n")
    aws.clear_requests()
    third = trueup("run", str(bundle), "--detailed-exitcodes")
    assert third.returncode == 2, third.stdout + third.stderr
    assert target.read_bytes() == BODY
    assert [g.headers.get("if-none-match") for g in aws.requests("GetObject")] == [None]

    # a new object under the same key: the conditional GET returns it, it is verified
    aws.client("s3").put_object(Bucket=BUCKET, Key="app/app.bin", Body=b"v2\n",
                                Metadata={"sha256": hashlib.sha256(b"v2\n").hexdigest()})
    unpinned = _bundle(tmp_path, target)
    fourth = trueup("run", str(unpinned), "--detailed-exitcodes")
    assert fourth.returncode == 2, fourth.stdout + fourth.stderr
    assert target.read_bytes() == b"v2\n"


def test_a_wrong_checksum_fails_the_resource_and_changes_nothing(tmp_path, trueup, env, aws,
                                                                 artifact):
    target = tmp_path / "out" / "app.bin"
    target.parent.mkdir()
    target.write_bytes(b"old\n")
    before = snapshot(target.parent)
    bundle = _bundle(tmp_path, target, sha256="0" * 64)
    run = trueup("run", str(bundle), "--detailed-exitcodes")
    assert run.returncode == 4, run.stdout + run.stderr
    (res,) = last_report(env)["resources"]
    assert res["status"] == "failed"
    assert "sha256 mismatch" in res["error"] and SHA in res["error"], res
    assert snapshot(target.parent) == before
    state = Path(env["TRUEUP_STATE_DIR"])
    assert not list((state / "downloads").glob("*"))  # the refused download is gone
    assert not list(state.rglob("s3-files.json"))


def test_the_objects_own_sha256_checksum_verifies_it(tmp_path, aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="k", Body=BODY, ChecksumAlgorithm="SHA256")
    got = objects.fetch_object(f"s3://{BUCKET}/k", str(tmp_path / "dl"))
    assert got.sha256 == SHA and Path(got.path).read_bytes() == BODY
    assert stat.S_IMODE(os.stat(got.path).st_mode) == 0o600
    again = objects.fetch_object(f"s3://{BUCKET}/k", str(tmp_path / "dl"), etag=got.etag,
                                 sha256=SHA)
    assert again.not_modified and again.path == ""


def test_an_object_with_nothing_to_verify_it_is_refused(tmp_path, aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="k", Body=BODY)  # moto adds no SHA-256 of its own
    with pytest.raises(TrueupError, match="no sha256 to verify it against"):
        objects.fetch_object(f"s3://{BUCKET}/k", str(tmp_path / "dl"))
    assert not list((tmp_path / "dl").glob("*"))


def test_noop_downloads_nothing_to_the_target(tmp_path, trueup, env, aws, artifact):
    target = tmp_path / "out" / "app.bin"
    target.parent.mkdir()
    bundle = _bundle(tmp_path, target, sha256=SHA)
    plan = trueup("plan", str(bundle), "--detailed-exitcodes")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert not target.exists()


@pytest.mark.parametrize(("source", "sha", "message"), [
    ("https://example.com/x", SHA, "not an S3 object URL"),
    (f"s3://{BUCKET}/k", "abc", "64 hexadecimal digits"),
])
def test_bad_spec_is_one_error_and_exit_1(tmp_path, trueup, source, sha, message):
    target = tmp_path / "app.bin"
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - s3_file: {target}
            source: {source}
            sha256: {sha!r}
        """}, runlist="app")
    run = trueup("run", str(bundle))
    assert run.returncode == 1, run.stdout + run.stderr
    assert message in run.stderr and "recipe.yml" in run.stderr, run.stderr
    assert not target.exists()


def test_s3_file_is_not_an_import_of_boto3_at_compile_time():
    # kinds are imported on first use; the module itself must not pull in boto3
    code = "import sys, agent.resources.s3_file; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "False"


def test_download_from_s3_verifies_and_a_wrong_sha256_writes_nothing(tmp_path, trueup, env,
                                                                      aws, artifact):
    """``download`` with an s3:// URL goes through the same S3 fetch as s3_file."""
    out = tmp_path / "out"
    out.mkdir()

    def bundle(name: str, sha: str) -> Path:
        return write_bundle(tmp_path / name, {"app": f"""
            resources:
              - download: {out / name}
                url: s3://{BUCKET}/app/app.bin
                sha256: {sha}
            """}, runlist="app")

    good = trueup("run", str(bundle("good", SHA)), "--detailed-exitcodes")
    assert good.returncode == 2, good.stdout + good.stderr
    assert (out / "good").read_bytes() == BODY
    again = trueup("run", str(bundle("good", SHA)), "--detailed-exitcodes")
    assert again.returncode == 0, again.stdout + again.stderr

    aws.clear_requests()
    bad = trueup("run", str(bundle("bad", "f" * 64)), "--detailed-exitcodes")
    assert bad.returncode == 4, bad.stdout + bad.stderr
    assert "sha256" in bad.stdout + bad.stderr
    assert sorted(os.listdir(out)) == ["good"]  # nothing written, no temporary file left
    assert [r.operation for r in aws.requests(service="s3")] == ["GetObject"]
