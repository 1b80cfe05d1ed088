"""s3://bucket/key.tar.gz: download a bundle with a conditional GET, verify its sha256, cache it.

Examples of SRC::

    trueup run s3://trueup-bundles/prod/9f2c...e1.tar.gz   # sha256 from the object metadata
    trueup run 's3://trueup-bundles/prod/b.tar.gz#sha256=9f2c...e1'   # pinned digest

The expected sha256 comes from the release pointer (``ssm:`` sources), from a
``#sha256=`` suffix, or from the object's ``sha256`` metadata that ``trueup publish``
writes; without one the bundle is refused. The copy is hashed before anything is
extracted (``agent.archive.extract_verified``), into ``<state_dir>/bundles/<sha256>/``.
Once a copy is verified, its ETag is kept: the next run sends ``If-None-Match`` and an
unchanged bundle costs one small 304 request.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from agent.aws.clients import call, client, read_body, status_of
from agent.errors import TrueupError, Unreachable
from agent.sources import archive, cache
from agent.sources.base import Fetched, Source

MAX_DOWNLOAD = archive.DEFAULT_MAX_TOTAL_SIZE
RECORDS = "s3-objects.json"


def parse_uri(uri: str) -> tuple[str, str, str]:
    """``s3://bucket/key#sha256=...`` → (bucket, key, sha256 or "")."""
    rest, _, fragment = uri.partition("#")
    bucket, _, key = rest[len("s3://"):].partition("/")
    if not rest.startswith("s3://") or not bucket or not key or key.endswith("/"):
        raise TrueupError(f"not an S3 bundle: {uri!r}; write s3://bucket/key.tar.gz")
    return bucket, key, fragment.removeprefix("sha256=").lower()


def download(uri: str, expected: str | None, state_dir: str) -> tuple[Path, dict[str, Any]]:
    """The verified bundle folder for ``uri``; ``info`` holds etag, sha256, and
    ``offline_reason`` when S3 was unreachable and the expected bundle was cached already."""
    bucket, key, pinned = parse_uri(uri)
    expected = (expected or pinned or "").lower() or None
    bundles = cache.bundles_dir(state_dir)
    records = cache.load(state_dir, RECORDS)
    known = records.get(uri) or {}
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    known_root = archive.cached(bundles, known["sha256"]) if known.get("sha256") else None
    if known_root is not None and known.get("etag"):
        kwargs["IfNoneMatch"] = known["etag"]
    try:
        resp = call(status_of(client("s3").get_object, 304), f"s3 GetObject {uri}", **kwargs)
    except Unreachable as exc:
        held = archive.cached(bundles, expected) if expected else None
        if held is None:
            raise
        return held, {"sha256": expected, "offline_reason": str(exc)}
    if resp is None:  # 304: the object is the copy we verified before
        if expected and expected != known["sha256"]:
            raise TrueupError(f"{uri}: sha256 mismatch: the release pointer says {expected}, "
                              f"but the object is unchanged since it was verified as "
                              f"{known['sha256']}; refusing to run it (was the pointer "
                              "tampered with, or the object overwritten?)")
        return known_root, {"sha256": known["sha256"], "etag": known["etag"]}  # type: ignore
    expected = expected or str(resp.get("Metadata", {}).get("sha256", "")).lower() or None
    if not expected:
        resp["Body"].close()
        raise TrueupError(f"{uri} carries no sha256 (object metadata 'sha256', or "
                          f"{uri}#sha256=<digest>) and trueup never runs an unverified "
                          "bundle; publish it with trueup publish")
    root = _fetch_verified(uri, resp, expected, state_dir)
    etag = str(resp.get("ETag", ""))
    records[uri] = {"etag": etag, "sha256": expected}
    cache.save(state_dir, RECORDS, records)
    return root, {"sha256": expected, "etag": etag}


def _fetch_verified(uri: str, resp: Any, expected: str, state_dir: str) -> Path:
    """Stream the body to a private temporary file, then verify and extract it."""
    fd, tmp = tempfile.mkstemp(prefix="bundle-", suffix=".tar.gz",
                               dir=cache.downloads_dir(state_dir))
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in read_body(resp, f"s3 GetObject {uri}", MAX_DOWNLOAD):
                out.write(chunk)
        try:
            return archive.extract_verified(Path(tmp), expected, cache.bundles_dir(state_dir))
        except archive.BundleError as exc:
            raise TrueupError(f"{uri}: {exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


class S3Source(Source, scheme="s3"):
    """``s3://bucket/key.tar.gz`` on its own: the bundle's run list files and attributes."""

    def fetch(self) -> Fetched:
        root, info = download(self.url, None, self.ctx.state_dir)
        fetched = Fetched(root=str(root), origin={"source": self.url, "uri": self.url,
                                                  "sha256": info["sha256"]})
        if info.get("offline_reason"):  # only with a pinned #sha256= already cached
            fetched.offline, fetched.offline_reason = True, info["offline_reason"]
        return fetched
