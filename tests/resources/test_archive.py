"""archive: safe extraction from a path or a local HTTP server, with sha256 and creates."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from agent.errors import ResourceError
from agent.resources import Context, SpecError
from agent.resources.archive import Archive
from tests.servers.http_files import FileServer


def tar_bytes(*members: tarfile.TarInfo | tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for member in members:
            if isinstance(member, tuple):
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
            else:
                tar.addfile(member)
    return out.getvalue()


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


GOOD = tar_bytes(("pkg-1/bin/run", b"run\n"), ("pkg-1/etc/conf", b"conf\n"),
                 special("pkg-1/current", tarfile.SYMTYPE, "bin/run"))


def make(ctx: Context, dest: Path, **spec: object) -> Archive:
    res = Archive(str(dest), spec, ctx)
    res.validate()
    res.prepare()
    return res


def test_extracts_with_strip_and_owner_then_converges(ctx: Context, tmp_path: Path) -> None:
    src = tmp_path / "pkg.tar.gz"
    src.write_bytes(GOOD)
    dest = tmp_path / "opt" / "pkg"
    res = make(ctx, dest, source=str(src), strip_components=1, owner=os.getuid())
    res.apply(res.check())
    assert (dest / "bin" / "run").read_bytes() == b"run\n"
    assert os.readlink(dest / "current") == "bin/run"
    assert res.check() == []
    (dest / "etc" / "conf").write_text("changed\n")
    assert [c.field for c in res.check()] == ["extract"]
    res.apply(res.check())
    assert (dest / "etc" / "conf").read_text() == "conf\n" and res.check() == []


def test_from_http_with_the_right_and_the_wrong_sha256(ctx: Context, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "pkg.tar.gz").write_bytes(GOOD)
    dest = tmp_path / "pkg"
    with FileServer(site) as server:
        bad = make(ctx, dest, source=server.url("pkg.tar.gz"), sha256="a" * 64,
                   creates=str(dest / "bin/run"), strip_components=1)
        with pytest.raises(ResourceError, match="sha256 is .*not the declared a{64}"):
            bad.apply(bad.check())
        assert not dest.exists()
        res = make(ctx, dest, source=server.url("pkg.tar.gz"),
                   sha256=hashlib.sha256(GOOD).hexdigest(), creates=str(dest / "bin/run"),
                   strip_components=1)
        res.apply(res.check())
        assert (dest / "bin" / "run").read_bytes() == b"run\n"
        assert res.check() == []
        assert len(server.requests) == 2  # the creates: path stops further fetches
    assert sorted(os.listdir(tmp_path)) == ["pkg", "site"]


def test_a_zip_is_extracted(ctx: Context, tmp_path: Path) -> None:
    src = tmp_path / "a.zip"
    with zipfile.ZipFile(src, "w") as archive:
        info = zipfile.ZipInfo("tool/bin")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        archive.writestr(info, b"bin\n")
    res = make(ctx, tmp_path / "out", source=str(src))
    res.apply(res.check())
    assert stat.S_IMODE((tmp_path / "out/tool/bin").stat().st_mode) == 0o755
    assert res.check() == []


@pytest.mark.parametrize(("member", "message"), [
    (("../evil", b"x"), "leaves the folder"),
    (("/etc/evil", b"x"), "absolute name"),
    (("a/../../evil", b"x"), "leaves the folder"),
    (special("link", tarfile.SYMTYPE, "/etc/passwd"), "links outside"),
    (special("link", tarfile.SYMTYPE, "../../etc"), "links outside"),
    (special("hard", tarfile.LNKTYPE, "/etc/passwd"), "absolute name"),
    (special("dev", tarfile.CHRTYPE), "device"),
    (special("fifo", tarfile.FIFOTYPE), "device, FIFO"),
])
def test_unsafe_members_extract_nothing(ctx: Context, tmp_path: Path, member: object,
                                        message: str) -> None:
    src = tmp_path / "bad.tar.gz"
    src.write_bytes(tar_bytes(("first", b"written first?\n"), member))
    dest = tmp_path / "out"
    res = make(ctx, dest, source=str(src))
    with pytest.raises(ResourceError, match=message):
        res.apply(res.check())
    assert not dest.exists() and not (tmp_path / "evil").exists()


def test_setuid_bits_are_dropped(ctx: Context, tmp_path: Path) -> None:
    info = tarfile.TarInfo("su")
    info.mode, info.size = 0o4755, 3
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.addfile(info, io.BytesIO(b"su\n"))
    (tmp_path / "a.tar").write_bytes(out.getvalue())
    res = make(ctx, tmp_path / "out", source=str(tmp_path / "a.tar"))
    res.apply(res.check())
    assert stat.S_IMODE((tmp_path / "out/su").stat().st_mode) == 0o755


@pytest.mark.parametrize(("spec", "field"), [
    ({"source": "https://x/a.tgz", "creates": "/x"}, "sha256"),
    ({"source": "https://x/a.tgz", "sha256": "a" * 64}, "creates"),
    ({"source": "relative.tgz"}, "source"),
    ({"source": "/a.tgz", "strip_components": -1}, "strip_components"),
])
def test_bad_specs_are_refused(ctx: Context, tmp_path: Path, spec: dict, field: str) -> None:
    with pytest.raises(SpecError) as err:
        make(ctx, tmp_path / "x", **spec)
    assert err.value.field == field
