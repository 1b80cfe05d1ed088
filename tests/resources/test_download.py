"""download: fetched from a local HTTP server, kept only with the declared sha256."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import Context, SpecError
from agent.resources.download import Download
from tests.servers.http_files import FileServer

DATA = b"\x7fELF not really\n" * 100
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server(tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "tool").write_bytes(DATA)
    with FileServer(site) as srv:
        yield srv


def make(ctx: Context, path: Path, **spec: object) -> Download:
    res = Download(str(path), spec, ctx)
    res.validate()
    res.prepare()
    return res


def test_fetches_verifies_and_then_converges(ctx: Context, tmp_path: Path, server) -> None:
    target = tmp_path / "tool"
    res = make(ctx, target, url=server.url("tool"), sha256=SHA, mode="0755")
    changes = res.check()
    assert [c.field for c in changes] == ["state"]
    res.apply(changes)
    assert target.read_bytes() == DATA
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert res.check() == []
    assert server.requests == ["/tool"]  # a converged file is not fetched again


def test_a_wrong_sha256_fails_and_writes_nothing(ctx: Context, tmp_path: Path, server) -> None:
    target = tmp_path / "tool"
    res = make(ctx, target, url=server.url("tool"), sha256="0" * 64)
    with pytest.raises(ResourceError, match=f"sha256 is {SHA}, not the declared 0{{64}}"):
        res.apply(res.check())
    assert os.listdir(tmp_path) == ["site"]  # neither the file nor its temporary sibling


def test_a_wrong_sha256_keeps_the_old_file(ctx: Context, tmp_path: Path, server) -> None:
    target = tmp_path / "tool"
    target.write_bytes(b"old\n")
    res = make(ctx, target, url=server.url("tool"), sha256="f" * 64)
    changes = res.check()
    assert [c.field for c in changes] == ["content"]
    with pytest.raises(ResourceError, match="left unchanged"):
        res.apply(changes)
    assert target.read_bytes() == b"old\n"
    assert sorted(os.listdir(tmp_path)) == ["site", "tool"]


def test_a_changed_file_is_fetched_again(ctx: Context, tmp_path: Path, server) -> None:
    target = tmp_path / "tool"
    target.write_bytes(b"tampered\n")
    res = make(ctx, target, url=server.url("tool"), sha256=SHA)
    res.apply(res.check())
    assert target.read_bytes() == DATA and res.check() == []


def test_a_mode_change_alone_is_no_fetch(ctx: Context, tmp_path: Path, server) -> None:
    target = tmp_path / "tool"
    target.write_bytes(DATA)
    res = make(ctx, target, url=server.url("tool"), sha256=SHA, mode="0700")
    changes = res.check()
    assert changes == [Change("mode", "0644", "0700")]
    res.apply(changes)
    assert server.requests == [] and res.check() == []


def test_a_missing_url_fails_and_writes_nothing(ctx: Context, tmp_path: Path, server) -> None:
    res = make(ctx, tmp_path / "tool", url=server.url("nothing"), sha256=SHA)
    with pytest.raises(ResourceError, match="cannot fetch .*HTTP 404"):
        res.apply(res.check())
    assert os.listdir(tmp_path) == ["site"]


@pytest.mark.parametrize(("spec", "field", "message"), [
    ({"url": "http://x/y", "sha256": "abc"}, "sha256", "64 hexadecimal digits"),
    ({"url": "ftp://x/y", "sha256": SHA}, "url", "not a URL trueup can fetch"),
    ({"url": "s3://bucket/", "sha256": SHA}, "url", "not an S3 object URL"),
])
def test_bad_specs_are_refused(ctx: Context, tmp_path: Path, spec: dict, field: str,
                               message: str) -> None:
    with pytest.raises(SpecError, match=message) as err:
        make(ctx, tmp_path / "x", **spec)
    assert err.value.field == field
