"""One S3 object, fetched with a conditional GET and verified by sha256.

The reusable fetch behind the ``s3_file`` kind (and the ``s3://`` form of ``download``)::

    got = fetch_object("s3://assets/app/app-1.4.tar.gz", "/var/lib/trueup/downloads",
                       etag=record.get("etag"), sha256="9f2c...e1")
    if got.not_modified:       # 304: the copy verified before is still the object
        ...
    else:
        os.replace(got.path, final)   # a private temporary file, already verified

The expected sha256 is, in order: ``sha256`` given by the caller (the recipe's
``sha256:`` field), the object's own SHA-256 checksum (``ChecksumMode=ENABLED``, when
it was uploaded with a whole-object SHA-256), or the ``sha256`` user metadata that
``trueup publish`` writes. An object with none of them is refused: trueup never
installs bytes it cannot verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from agent.aws.clients import call, client, read_body, status_of
from agent.errors import TrueupError

MAX_OBJECT = 1024 * 1024 * 1024  # bytes: a larger object is refused


@dataclass
class FetchedObject:
    """What :func:`fetch_object` got.

    Attributes:
        not_modified: the object still has the ETag the caller sent (HTTP 304); no body.
        path: a private temporary file (mode 0600) holding the verified body; the
            caller moves it into place or removes it. "" when not modified.
        sha256: the verified sha256 (hex); the caller's when not modified.
        etag: the object's ETag, to send as ``etag`` next time.
        size: bytes downloaded (0 when not modified).
    """

    not_modified: bool
    path: str
    sha256: str
    etag: str
    size: int = 0


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); a TrueupError for anything else."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket or not key or key.endswith("/"):
        raise TrueupError(f"not an S3 object URL: {url!r}; write s3://bucket/key")
    return bucket, key


def fetch_object(url: str, folder: str, *, etag: str | None = None, sha256: str | None = None,
                 version_id: str | None = None, limit: int = MAX_OBJECT) -> FetchedObject:
    """Download ``url`` (``s3://bucket/key``) into a temporary file in ``folder``, verified.

    With ``etag`` (what an earlier call returned), the request carries
    ``If-None-Match``: an unchanged object is one 304 and ``not_modified`` is True
    (then ``sha256``, when given, is returned as the verified digest). Otherwise the
    body is streamed to a private temporary file while it is hashed; a digest that
    differs from the expected one (see the module docstring) removes the file and
    raises TrueupError naming both digests, as does an object with nothing to verify
    it against or one over ``limit`` bytes. AWS errors are
    :class:`agent.errors.Unreachable` (network, throttling, 5xx after retries) or
    TrueupError (access denied, no such key). Makes exactly one S3 request.
    """
    bucket, key = parse_s3_url(url)
    wanted = (sha256 or "").lower() or None
    if wanted is not None and not _is_hex_digest(wanted):
        raise TrueupError(f"sha256 {sha256!r} is not 64 hexadecimal digits")
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
    if etag:
        kwargs["IfNoneMatch"] = etag
    if version_id:
        kwargs["VersionId"] = version_id
    resp = call(status_of(client("s3").get_object, 304), f"s3 GetObject {url}", **kwargs)
    if resp is None:
        return FetchedObject(True, "", wanted or "", etag or "")
    expected = wanted or _object_sha256(resp)
    if not expected:
        resp["Body"].close()
        raise TrueupError(f"{url} has no sha256 to verify it against: give sha256: in the "
                          "recipe, or upload it with a SHA-256 checksum "
                          "(aws s3 cp --checksum-algorithm SHA256) or 'sha256' metadata")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".s3-", dir=folder)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in read_body(resp, f"s3 GetObject {url}", limit):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if got != expected:
            raise TrueupError(f"{url}: sha256 mismatch: expected {expected}, downloaded "
                              f"{got}; nothing written")
    except BaseException:
        os.unlink(tmp)
        raise
    return FetchedObject(False, tmp, got, str(resp.get("ETag", "")), size)


def open_object(url: str, limit: int = MAX_OBJECT) -> Any:
    """``s3://bucket/key`` as a binary stream (one GetObject), for a caller that verifies
    what it reads itself (the ``s3://`` form of ``download`` and ``archive``). Errors as
    :func:`fetch_object`; a body over ``limit`` bytes fails while it is read."""
    import io

    bucket, key = parse_s3_url(url)
    resp = call(client("s3").get_object, f"s3 GetObject {url}", Bucket=bucket, Key=key)
    chunks = read_body(resp, f"s3 GetObject {url}", limit)

    class Body(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:  # one chunk at a time, b"" at the end
            return next(chunks, b"")

        def close(self) -> None:
            resp["Body"].close()
            super().close()

    return Body()


def _object_sha256(resp: dict[str, Any]) -> str:
    """The object's whole-object SHA-256 checksum (hex), else its ``sha256`` metadata, else "".

    A multipart upload's checksum (``…-3``, a checksum of checksums) is not the
    object's digest and is ignored.
    """
    checksum = str(resp.get("ChecksumSHA256") or "")
    whole = resp.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
    if checksum and "-" not in checksum and whole:
        try:
            raw = base64.b64decode(checksum, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 32:
            return raw.hex()
    meta = str(resp.get("Metadata", {}).get("sha256", "")).lower()
    return meta if _is_hex_digest(meta) else ""


def _is_hex_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
