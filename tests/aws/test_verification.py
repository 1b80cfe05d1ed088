"""Never run an unverified bundle: tampered bytes, wrong digests, hostile archive members."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.aws.conftest import BUCKET, ENV, EXAMPLE, SOURCE, last_report, ssm_put, state_snapshot
from tests.helpers import snapshot

pytestmark = pytest.mark.aws


def _key(pointer: dict) -> str:
    return pointer["uri"].split("/", 3)[3]


@pytest.mark.parametrize("ran_before", [False, True])
def test_bytes_changed_in_s3_are_refused(tmp_path, trueup, env, aws, publish, ran_before):
    target = tmp_path / "hello"
    pointer = publish()
    if ran_before:
        assert trueup("run", SOURCE, "-a", f"hello.dir={target}").returncode == 0
        bundle = tmp_path / "v2"
        shutil.copytree(EXAMPLE, bundle, ignore=shutil.ignore_patterns("__pycache__"))
        (bundle / "hello/files/banner.txt").write_text("v2\n")
        pointer = publish(bundle)
    evil = tmp_path / "evil"
    shutil.copytree(EXAMPLE, evil, ignore=shutil.ignore_patterns("__pycache__"))
    (evil / "hello/files/banner.txt").write_text("owned\n")
    from agent.sources.archive import pack

    pack(evil, tmp_path / "evil.tar.gz")
    aws.client("s3").put_object(Bucket=BUCKET, Key=_key(pointer),
                                Body=(tmp_path / "evil.tar.gz").read_bytes())
    before, cache = snapshot(tmp_path / "hello"), state_snapshot(env)

    out = trueup("run", SOURCE, "-a", f"hello.dir={target}")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "sha256 mismatch for bundle" in out.stderr and pointer["sha256"] in out.stderr
    assert "refusing to use it" in out.stderr
    assert snapshot(tmp_path / "hello") == before  # nothing changed (or nothing created)
    assert state_snapshot(env) == cache  # the cache untouched
    assert not list((Path(env["TRUEUP_STATE_DIR"]) / "downloads").iterdir())
    assert last_report(env)["exit_code"] == 1


@pytest.mark.parametrize("ran_before", [False, True])
def test_wrong_sha256_in_the_pointer_is_refused(tmp_path, trueup, env, aws, publish, ran_before):
    target = tmp_path / "hello"
    pointer = publish()
    if ran_before:
        assert trueup("run", SOURCE, "-a", f"hello.dir={target}").returncode == 0
    wrong = dict(pointer, sha256="0" * 64)
    ssm_put(aws, f"/trueup/{ENV}/bundle", json.dumps(wrong))
    before, cache = snapshot(target), state_snapshot(env)
    out = trueup("run", SOURCE, "-a", f"hello.dir={target}")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "sha256 mismatch" in out.stderr and "0" * 64 in out.stderr
    assert snapshot(target) == before
    assert state_snapshot(env) == cache


def _tarball(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        recipe = tarfile.TarInfo("hello/recipe.yml")
        body = b"resources: []\n"
        recipe.size = len(body)
        tar.addfile(recipe, io.BytesIO(body))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def _member(name: str, data: bytes = b"x\n", link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    if link:
        info.type, info.linkname = tarfile.SYMTYPE, link
        return info, None
    info.size = len(data)
    return info, data


@pytest.mark.parametrize("member, why", [
    (_member("../escaped"), "'..' component"),
    (_member("hello/../../escaped"), "'..' component"),
    (_member("/tmp/trueup-absolute-member"), "absolute path"),
    (_member("hello/out", link="../../../etc"), "leaves the bundle"),
    (_member("hello/abs", link="/etc/passwd"), "leaves the bundle"),
])
def test_hostile_members_are_refused(tmp_path, trueup, env, aws, bucket, member, why):
    data = _tarball([member])
    sha = hashlib.sha256(data).hexdigest()
    aws.client("s3").put_object(Bucket=bucket, Key="evil.tar.gz", Body=data)
    ssm_put(aws, f"/trueup/{ENV}/bundle",
            json.dumps({"uri": f"s3://{bucket}/evil.tar.gz", "sha256": sha, "version": "x"}))
    ssm_put(aws, f"/trueup/{ENV}/runlist", "hello")
    out = trueup("run", SOURCE)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "refusing member" in out.stderr and why in out.stderr
    assert not Path("/tmp/trueup-absolute-member").exists()
    bundles = Path(env["TRUEUP_STATE_DIR"]) / "bundles"
    assert not (bundles / sha).exists()
    assert not [p for p in bundles.rglob("*") if p.name == "escaped"]


def test_s3_source_without_a_digest_is_refused(trueup, aws, bucket, tmp_path):
    from agent.sources.archive import pack

    pack(EXAMPLE, tmp_path / "b.tar.gz")
    aws.client("s3").put_object(Bucket=bucket, Key="b.tar.gz",
                                Body=(tmp_path / "b.tar.gz").read_bytes())
    out = trueup("run", f"s3://{bucket}/b.tar.gz")
    assert out.returncode == 1
    assert "carries no sha256" in out.stderr and "never runs an unverified bundle" in out.stderr


def test_s3_source_with_a_pinned_digest_runs(trueup, aws, bucket, tmp_path):
    from agent.sources.archive import pack

    sha = pack(EXAMPLE, tmp_path / "b.tar.gz")
    aws.client("s3").put_object(Bucket=bucket, Key="b.tar.gz",
                                Body=(tmp_path / "b.tar.gz").read_bytes())
    target = tmp_path / "hello"
    out = trueup("run", f"s3://{bucket}/b.tar.gz#sha256={sha}", "-a", f"hello.dir={target}")
    assert out.returncode == 0, out.stderr
    assert (target / "motd").exists()
    wrong = trueup("run", f"s3://{bucket}/b.tar.gz#sha256={'1' * 64}")
    assert wrong.returncode == 1 and "sha256 mismatch" in wrong.stderr
