"""agent.sources.archive: deterministic packing, verified and safe extraction, the cache."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from agent.sources import archive
from agent.sources.archive import (
    COMPLETE_MARKER,
    BundleError,
    cached,
    extract_verified,
    pack,
    sha256_file,
)


def make_tree(root: Path) -> Path:
    """A small bundle folder: two recipes, a template, an executable, an inner symlink."""
    (root / "web" / "templates").mkdir(parents=True)
    (root / "web" / "files").mkdir()
    (root / "base").mkdir()
    (root / "empty").mkdir()
    (root / "web" / "recipe.yml").write_text("resources:\n  - package: nginx\n")
    (root / "web" / "templates" / "site.conf.j2").write_text("listen {{ port }};\n")
    script = root / "web" / "files" / "seed.sh"
    script.write_text("#!/bin/sh\necho seeded\n")
    script.chmod(0o700)
    (root / "base" / "recipe.yml").write_text("resources: []\n")
    (root / "base" / "motd").symlink_to("../web/templates/site.conf.j2")
    (root / "runlist").write_text("base\nweb\n")
    return root


def build_archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> str:
    """Write a hand-made .tar.gz (for hostile members) and return its sha256."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    path.write_bytes(gzip.compress(buf.getvalue()))
    return sha256_file(path)


def member(name: str, kind: bytes = tarfile.REGTYPE, *, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --------------------------------------------------------------------------- pack


def test_pack_is_deterministic_across_runs_mtimes_modes_and_locations(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    first = pack(src, tmp_path / "a.tar.gz")
    assert pack(src, tmp_path / "b.tar.gz") == first
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()

    for path in src.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)
    (src / "web" / "recipe.yml").chmod(0o600)  # not executable: still stored as 0644
    assert pack(src, tmp_path / "c.tar.gz") == first

    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(src, copy, symlinks=True)
    assert pack(copy, tmp_path / "d.tar.gz") == first
    assert first == hashlib.sha256((tmp_path / "a.tar.gz").read_bytes()).hexdigest()


def test_pack_changes_sha_when_content_or_exec_bit_changes(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    first = pack(src, tmp_path / "a.tar.gz")
    (src / "runlist").write_text("web\n")
    second = pack(src, tmp_path / "b.tar.gz")
    assert second != first
    (src / "runlist").chmod(0o755)
    assert pack(src, tmp_path / "c.tar.gz") != second


def test_pack_normalises_headers_and_gzip(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    out = tmp_path / "archive.tar.gz"
    pack(src, out)
    raw = out.read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"
    assert raw[3] & 0x08 == 0, "gzip header must not carry a file name"
    assert raw[4:8] == b"\x00\x00\x00\x00", "gzip header mtime must be 0"
    with tarfile.open(out) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "base",
        "base/motd",
        "base/recipe.yml",
        "empty",
        "runlist",
        "web",
        "web/files",
        "web/files/seed.sh",
        "web/recipe.yml",
        "web/templates",
        "web/templates/site.conf.j2",
    ]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
    modes = {m.name: m.mode for m in members}
    assert modes["web"] == 0o755
    assert modes["web/files/seed.sh"] == 0o755
    assert modes["web/recipe.yml"] == 0o644


def test_pack_skips_debris_and_its_own_output(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    clean = pack(src, tmp_path / "clean.tar.gz")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    for junk in ("recipe.yml~", ".recipe.yml.swp", "#recipe.yml#", ".#recipe.yml", "x.pyc"):
        (src / "web" / junk).write_text("junk")
    assert pack(src, src / "archive.tar.gz") == clean  # the output inside the folder is skipped


def test_pack_refuses_escaping_symlink_and_fifo(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    (src / "web" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(BundleError, match="passwd.*outside"):
        pack(src, tmp_path / "a.tar.gz")
    (src / "web" / "passwd").unlink()
    (src / "web" / "up").symlink_to("../../outside")
    with pytest.raises(BundleError, match="outside"):
        pack(src, tmp_path / "a.tar.gz")
    (src / "web" / "up").unlink()
    os.mkfifo(src / "web" / "pipe")
    with pytest.raises(BundleError, match="pipe"):
        pack(src, tmp_path / "a.tar.gz")
    assert not (tmp_path / "a.tar.gz").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"], "no temporary file left behind"


# --------------------------------------------------------------------------- extract


def test_extract_round_trip(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    sha = pack(src, tmp_path / "b.tar.gz")
    root = extract_verified(tmp_path / "b.tar.gz", sha, tmp_path / "cache")
    assert root == tmp_path / "cache" / sha
    assert (root / "web" / "recipe.yml").read_text() == "resources:\n  - package: nginx\n"
    assert (root / "web" / "files" / "seed.sh").stat().st_mode & 0o777 == 0o755
    assert (root / "web" / "recipe.yml").stat().st_mode & 0o777 == 0o644
    assert (root / "empty").is_dir()
    assert os.readlink(root / "base" / "motd") == "../web/templates/site.conf.j2"
    assert (root / "base" / "motd").read_text() == "listen {{ port }};\n"
    assert (root / COMPLETE_MARKER).is_file()
    assert cached(tmp_path / "cache", sha) == root
    assert leftovers(tmp_path / "cache") == [sha]


def test_extract_accepts_uppercase_digest_and_rejects_garbage_digest(tmp_path: Path) -> None:
    sha = pack(make_tree(tmp_path / "src"), tmp_path / "b.tar.gz")
    assert extract_verified(tmp_path / "b.tar.gz", sha.upper(), tmp_path / "c").name == sha
    with pytest.raises(BundleError, match="not a sha256"):
        extract_verified(tmp_path / "b.tar.gz", "../../etc", tmp_path / "c")


def test_tampered_archive_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    sha = pack(make_tree(tmp_path / "src"), tmp_path / "b.tar.gz")
    data = bytearray((tmp_path / "b.tar.gz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "b.tar.gz").write_bytes(bytes(data))
    with pytest.raises(BundleError) as err:
        extract_verified(tmp_path / "b.tar.gz", sha, tmp_path / "cache")
    message = str(err.value)
    assert "sha256 mismatch" in message
    assert sha in message and sha256_file(tmp_path / "b.tar.gz") in message
    assert not (tmp_path / "cache").exists()


def test_missing_archive_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="cannot read"):
        extract_verified(tmp_path / "nope.tar.gz", "0" * 64, tmp_path / "cache")


def test_not_a_tarball_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not gzip at all")
    with pytest.raises(BundleError, match="not a valid .tar.gz"):
        extract_verified(junk, sha256_file(junk), tmp_path / "cache")
    assert leftovers(tmp_path / "cache") == []


HOSTILE = {
    "absolute": ([(member("/etc/cron.d/evil"), b"x")], "absolute path"),
    "dotdot": ([(member("../evil"), b"x")], "'..' component"),
    "dotdot-inside": ([(member("web/../../evil"), b"x")], "'..' component"),
    "symlink-absolute": (
        [(member("web/passwd", tarfile.SYMTYPE, linkname="/etc/passwd"), None)],
        "leaves the bundle",
    ),
    "symlink-up": (
        [(member("web/up", tarfile.SYMTYPE, linkname="../../etc"), None)],
        "leaves the bundle",
    ),
    "symlink-chain": (
        [
            (member("deep", tarfile.DIRTYPE), None),
            (member("deep/deeper", tarfile.DIRTYPE), None),
            # each link is inside on its own; together deep/deeper/l resolves to ../
            (member("deep/deeper/a", tarfile.SYMTYPE, linkname="../.."), None),
            (member("deep/deeper/l", tarfile.SYMTYPE, linkname="a/../../.."), None),
        ],
        "through other symlinks",
    ),
    "write-through-symlink": (
        [
            (member("web", tarfile.SYMTYPE, linkname="."), None),
            (member("web", tarfile.REGTYPE), b"x"),
        ],
        "duplicate",
    ),
    "link-under-link": (
        [
            (member("sub", tarfile.DIRTYPE), None),
            (member("lnk", tarfile.SYMTYPE, linkname="sub"), None),
            (member("lnk/x", tarfile.SYMTYPE, linkname="y"), None),
        ],
        "goes through a symlink",
    ),
    "hardlink-absolute": (
        [(member("web/shadow", tarfile.LNKTYPE, linkname="/etc/shadow"), None)],
        "hard link target",
    ),
    "hardlink-up": (
        [(member("web/shadow", tarfile.LNKTYPE, linkname="../../etc/shadow"), None)],
        "hard link target",
    ),
    "hardlink-unknown": (
        [(member("web/x", tarfile.LNKTYPE, linkname="web/not-there"), None)],
        "hard link target",
    ),
    "char-device": ([(member("dev/null", tarfile.CHRTYPE), None)], "character device"),
    "block-device": ([(member("dev/sda", tarfile.BLKTYPE), None)], "block device"),
    "fifo": ([(member("web/pipe", tarfile.FIFOTYPE), None)], "FIFO"),
    "duplicate": ([(member("a"), b"1"), (member("a"), b"2")], "duplicate"),
    "reserved-marker": ([(member(COMPLETE_MARKER), b"")], "reserved"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_by_name(tmp_path: Path, case: str) -> None:
    members, reason = HOSTILE[case]
    archive = tmp_path / "evil.tar.gz"
    sha = build_archive(archive, members)
    cache = tmp_path / "cache"
    with pytest.raises(BundleError) as err:
        extract_verified(archive, sha, cache)
    message = str(err.value)
    assert reason in message
    assert repr(members[-1][0].name) in message, "the message names the member"
    assert leftovers(cache) == [], "nothing left in the cache, not even a temp folder"
    assert not (tmp_path / "evil").exists() and not (tmp_path / "etc").exists()


def test_hardlink_inside_is_allowed(tmp_path: Path) -> None:
    archive = tmp_path / "b.tar.gz"
    sha = build_archive(
        archive,
        [(member("a.txt"), b"hello"), (member("b.txt", tarfile.LNKTYPE, linkname="a.txt"), None)],
    )
    root = extract_verified(archive, sha, tmp_path / "cache")
    assert (root / "b.txt").read_text() == "hello"


def test_oversized_member_is_refused_by_default_limit(tmp_path: Path) -> None:
    # A header that declares 64 MiB + 1 is enough: the size is checked before any read.
    info = member("web/huge.bin")
    info.size = archive.DEFAULT_MAX_MEMBER_SIZE + 1
    huge = tmp_path / "huge.tar.gz"
    huge.write_bytes(gzip.compress(info.tobuf(tarfile.GNU_FORMAT)))
    with pytest.raises(BundleError, match=r"'web/huge.bin'.*per-member limit of 67108864"):
        extract_verified(huge, sha256_file(huge), tmp_path / "cache")
    assert leftovers(tmp_path / "cache") == []


def test_member_size_total_size_and_count_limits(tmp_path: Path) -> None:
    archive = tmp_path / "b.tar.gz"
    sha = build_archive(archive, [(member(f"f{i}"), b"x" * 100) for i in range(5)])
    cache = tmp_path / "cache"
    with pytest.raises(BundleError, match=r"'f0'.*per-member limit of 99"):
        extract_verified(archive, sha, cache, max_member_size=99)
    with pytest.raises(BundleError, match=r"'f3'.*total size limit of 350"):
        extract_verified(archive, sha, cache, max_total_size=350)
    with pytest.raises(BundleError, match=r"'f3'.*more than 3 members"):
        extract_verified(archive, sha, cache, max_members=3)
    assert leftovers(cache) == []
    assert extract_verified(archive, sha, cache).name == sha


# --------------------------------------------------------------------------- cache


def test_complete_cache_folder_is_reused_without_extracting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = pack(make_tree(tmp_path / "src"), tmp_path / "b.tar.gz")
    root = extract_verified(tmp_path / "b.tar.gz", sha, tmp_path / "cache")
    (root / "sentinel").write_text("kept")

    def no_extraction(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not re-extract a complete cache folder")

    monkeypatch.setattr(archive.tarfile, "open", no_extraction)
    assert extract_verified(tmp_path / "b.tar.gz", sha, tmp_path / "cache") == root
    assert (root / "sentinel").read_text() == "kept"


def test_reuse_still_verifies_the_archive(tmp_path: Path) -> None:
    sha = pack(make_tree(tmp_path / "src"), tmp_path / "b.tar.gz")
    extract_verified(tmp_path / "b.tar.gz", sha, tmp_path / "cache")
    (tmp_path / "b.tar.gz").write_bytes(b"swapped")
    with pytest.raises(BundleError, match="sha256 mismatch"):
        extract_verified(tmp_path / "b.tar.gz", sha, tmp_path / "cache")
    assert cached(tmp_path / "cache", sha) is not None  # the verified copy is still usable


def test_stale_temp_folder_from_a_crash_does_not_break_extraction(tmp_path: Path) -> None:
    sha = pack(make_tree(tmp_path / "src"), tmp_path / "b.tar.gz")
    cache = tmp_path / "cache"
    stale = cache / f".{sha}.tmp-crashed"
    (stale / "web").mkdir(parents=True)
    (stale / "web" / "recipe.yml").write_text("half writ")
    root = extract_verified(tmp_path / "b.tar.gz", sha, cache)
    assert (root / "web" / "recipe.yml").read_text().startswith("resources:")
    assert (root / COMPLETE_MARKER).is_file()


def test_incomplete_final_folder_is_replaced(tmp_path: Path) -> None:
    sha = pack(make_tree(tmp_path / "src"), tmp_path / "b.tar.gz")
    cache = tmp_path / "cache"
    (cache / sha / "web").mkdir(parents=True)
    (cache / sha / "web" / "recipe.yml").write_text("half writ")
    assert cached(cache, sha) is None
    root = extract_verified(tmp_path / "b.tar.gz", sha, cache)
    assert (root / "web" / "recipe.yml").read_text().startswith("resources:")
    assert (root / "runlist").is_file()
    assert leftovers(cache) == [sha]


def test_crash_before_publication_leaves_no_final_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = pack(make_tree(tmp_path / "src"), tmp_path / "b.tar.gz")
    cache = tmp_path / "cache"

    def crash(*args: object) -> None:
        raise KeyboardInterrupt  # as if the process were stopped mid-way

    monkeypatch.setattr(archive, "_write_marker", crash)
    with pytest.raises(KeyboardInterrupt):
        extract_verified(tmp_path / "b.tar.gz", sha, cache)
    assert not (cache / sha).exists()
    monkeypatch.undo()
    assert extract_verified(tmp_path / "b.tar.gz", sha, cache) == cache / sha
