"""Bounded caches: a run keeps the last ``cache_keep`` bundles, recipe sets and parsed-YAML
caches besides the ones in use, never the last verified bundle, and says what it pruned."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.sources import cache
from agent.sources.archive import COMPLETE_MARKER, pack
from tests.helpers import write_bundle

KEEP = 2
RUNS = 6


def tarball(tmp_path: Path, i: int) -> tuple[Path, str]:
    """A distinct bundle .tar.gz (its own sha256) that writes one file under tmp_path."""
    folder = write_bundle(tmp_path / f"src{i}", {"one": f"""\
        resources:
          - file: "{tmp_path}/out.txt"
            content: "version {i}\\n"
        """}, runlist="one")
    out = tmp_path / f"bundle{i}.tar.gz"
    return out, pack(folder, out)


def entries(folder: Path) -> set[str]:
    return set(os.listdir(folder)) if folder.exists() else set()


def test_runs_of_distinct_bundles_keep_at_most_keep_plus_one(tmp_path, trueup, env):
    state = Path(env["TRUEUP_STATE_DIR"])
    shas = []
    reports = []
    for i in range(RUNS):
        path, sha = tarball(tmp_path, i)
        shas.append(sha)
        out = trueup("run", str(path), env={"TRUEUP_CACHE_KEEP": str(KEEP)})
        assert out.returncode == 0, out.stdout + out.stderr
        assert (tmp_path / "out.txt").read_text() == f"version {i}\n"
        report = json.loads((state / "reports" / "last_run.json").read_text())
        reports.append(report)
        kept = entries(state / "bundles")
        assert len(kept) <= KEEP + 1
        assert sha in kept  # the bundle in use
        assert len(entries(state / "cache" / "parsed")) <= KEEP + 1
        if i <= KEEP:
            assert report["pruned"]["count"] == 0
            assert "pruned" not in out.stdout  # a console line only when something went
    assert entries(state / "bundles") == set(shas[-KEEP - 1:])
    # each later run pruned the bundle that fell out of the window, and named it
    for i in range(KEEP + 1, RUNS):
        pruned = reports[i]["pruned"]
        assert pruned["bundles"] == [shas[i - KEEP - 1]]
        assert len(pruned["parsed"]) == 1
        assert pruned["count"] == 2 and pruned["bytes"] > 0
    last = trueup("run", str(tmp_path / f"bundle{RUNS - 1}.tar.gz"),
                  env={"TRUEUP_CACHE_KEEP": "0"})
    assert "trueup: pruned 4 old cache entries" in last.stdout
    assert "2 bundles, 2 parsed-YAML caches" in last.stdout
    assert entries(state / "bundles") == {shas[-1]}


def test_the_last_verified_bundle_survives(tmp_path, trueup, env):
    state = Path(env["TRUEUP_STATE_DIR"])
    first, verified = tarball(tmp_path, 0)
    assert trueup("run", str(first)).returncode == 0
    # as if that bundle had come from ssm:/trueup/prod, verified online
    cache.save(str(state), cache.LAST_VERIFIED, {"ssm:/trueup/prod": {
        "origin": {"source": "ssm:/trueup/prod", "sha256": verified}}})
    for i in range(1, 4):
        path, sha = tarball(tmp_path, i)
        out = trueup("run", str(path), "--json", env={"TRUEUP_CACHE_KEEP": "0"})
        assert out.returncode == 0, out.stderr
        assert verified not in json.loads(out.stdout)["pruned"]["bundles"]
        assert entries(state / "bundles") == {verified, sha}
    assert (state / "bundles" / verified / COMPLETE_MARKER).is_file()


def test_json_output_stays_pure_when_something_is_pruned(tmp_path, trueup):
    for i in range(3):
        path, _ = tarball(tmp_path, i)
        out = trueup("run", str(path), "--json", env={"TRUEUP_CACHE_KEEP": "0"})
        report = json.loads(out.stdout)
    assert report["pruned"]["count"] == 2


# --- cache.prune on its own ----------------------------------------------------------------


def make_entries(folder: Path, names: list[str]) -> None:
    """Folders with one file each, the first name the oldest."""
    for age, name in enumerate(names):
        (folder / name).mkdir(parents=True)
        (folder / name / "data").write_bytes(b"x" * 100)
        os.utime(folder / name, (1_000_000 + age, 1_000_000 + age))


def test_prune_keeps_the_newest_the_used_and_the_verified(tmp_path: Path) -> None:
    state = tmp_path / "state"
    bundles = state / "bundles"
    make_entries(bundles, ["a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64])
    make_entries(state / "sources" / "recipes", ["r1", "r2", "r3"])
    make_entries(state / "cache" / "parsed", ["p1", "p2", "p3"])
    (bundles / f".{'f' * 64}.tmp-abc").mkdir()  # a killed extraction
    (state / "cache" / "parsed" / "0123.pickle").write_bytes(b"old flat layout")
    cache.save(str(state), cache.LAST_VERIFIED, {"s3://b/k": {"origin": {"sha256": "b" * 64}}})

    pruned = cache.prune(str(state), 1, [str(bundles / ("a" * 64)),
                                         str(state / "sources" / "recipes" / "r1"), ""])

    assert sorted(os.listdir(bundles)) == ["a" * 64, "b" * 64, "e" * 64]
    assert pruned["bundles"] == [f".{'f' * 64}.tmp-abc", "c" * 64, "d" * 64]
    assert sorted(os.listdir(state / "sources" / "recipes")) == ["r1", "r3"]
    assert pruned["recipes"] == ["r2"]
    assert sorted(os.listdir(state / "cache" / "parsed")) == ["p3"]
    assert pruned["parsed"] == ["0123.pickle", "p1", "p2"]
    assert pruned["count"] == 7
    assert pruned["bytes"] >= 5 * 100
    # the entries in use were marked as just used: they outlive newer ones next time
    assert (bundles / ("a" * 64)).stat().st_mtime > (bundles / ("e" * 64)).stat().st_mtime


def test_prune_with_nothing_cached_prunes_nothing(tmp_path: Path) -> None:
    assert cache.prune(str(tmp_path), 5, []) == {"count": 0, "bytes": 0, "bundles": [],
                                                 "recipes": [], "parsed": []}
