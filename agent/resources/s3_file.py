"""s3_file: a file whose content is an S3 object, verified by sha256."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from typing import Any

from agent.errors import ResourceError, TrueupError, Unreachable
from agent.host.system import temp_name, write_file_atomic
from agent.jsontext import read_object
from agent.model import Change
from agent.resources import (
    Resource,
    SpecError,
    apply_file,
    f,
    lstat_file,
    owner_changes,
    parse_mode,
    removal_changes,
    writing,
)

RECORDS = os.path.join("sources", "s3-files.json")
MAX_SIZE = 512 * 1024 * 1024  # bytes: the object is held in memory for the atomic write


class S3File(Resource, kind="s3_file"):
    """A file whose content is an S3 object, checked against its sha256.

    Spec:
        s3_file (str): absolute path; the resource's name.
        source (str): ``s3://bucket/key`` of the object.
        sha256 (str): the object's expected sha256 (hex). Without it, the object's
            own SHA-256 checksum (uploaded with ``--checksum-algorithm SHA256``) or its
            ``sha256`` metadata (what ``trueup publish`` writes) is used; an object
            with none of them is refused.
        version_id (str): a fixed version of the object (versioned buckets).
        owner, group (str): user and group names or numbers.
        mode (str): octal string such as "0644" (default "0644", "0600" if sensitive).
        backup (bool | int): keep the replaced content (default: the configured count).
        state (str): present (default) or absent.

    The first run downloads the object, hashes it while it streams, and refuses it
    (the resource fails, nothing is written) when the digest differs; then the file
    is written atomically with its owner, group and mode. trueup keeps the object's
    ETag under the state dir (``sources/s3-files.json``): as long as the file on disk
    still has the verified content, the next run sends one conditional GET
    (``If-None-Match``), and an unchanged object costs one 304 with no body. A file
    edited by hand is downloaded and replaced again. Objects up to 512 MiB.

    Example:
        - s3_file: /opt/app/app.jar
          source: s3://acme-artifacts/app/app-1.4.2.jar
          sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
          owner: app
          mode: "0644"
    """

    FIELDS = {
        "source": f(str, None, "s3://bucket/key of the object", required=True),
        "sha256": f(str, None, "expected sha256 of the object (hex)"),
        "version_id": f(str, None, "a fixed object version"),
        "owner": f((str, int), None, "user name or uid"),
        "group": f((str, int), None, "group name or gid"),
        "mode": f((str, int), None, 'octal string such as "0644"'),
        "backup": f((bool, int), True, "keep replaced content (true, false or a count)"),
    }
    # Converging a present s3_file needs S3 (tests/aws/test_s3_file.py runs those on moto).
    EXAMPLES = [
        {"s3_file": "{tmp}/old.tar.gz", "source": "s3://artifacts/app/old.tar.gz",
         "state": "absent", "_setup": {"old.tar.gz": "stale\n"}, "_expect": {"old.tar.gz": None}},
    ]
    SENSITIVE_EXAMPLE = {"s3_file": "{tmp}/secret.key", "source": "s3://keys/{canary}.key",
                         "sensitive": True, "state": "absent",
                         "_setup": {"secret.key": "old\n"}}

    mode: int | None = None
    _got: dict[str, Any] | None = None  # what this run fetched (reused by the re-check)

    def validate(self) -> None:
        if not os.path.isabs(self.name):
            raise ValueError(f"s3_file path must be absolute, not {self.name!r}")
        from agent.aws.objects import parse_s3_url

        try:
            parse_s3_url(self.spec["source"])
        except TrueupError as exc:
            raise SpecError("source", str(exc)) from None
        digest = self.spec["sha256"]
        if digest is not None and (len(digest) != 64 or any(
                c not in "0123456789abcdef" for c in digest.lower())):
            raise SpecError("sha256", f"sha256 must be 64 hexadecimal digits, not {digest!r}")
        self.mode = parse_mode(self.spec["mode"]) if self.spec["mode"] is not None else None

    # --- check ------------------------------------------------------------------------

    def check(self) -> list[Change]:
        st = lstat_file(self.name)
        if self.state == "absent":
            return removal_changes(self.name, st)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise ResourceError(f"{self.name} is not a regular file; remove it or manage it "
                                "with its own type")
        current = _sha256_of(self.name) if st is not None else None
        got = self._fetch(current)
        changes = []
        if os.path.lexists(temp_name(self.name)):
            changes.append(Change("leftover", temp_name(self.name), None))
        if st is None:
            changes.append(Change("state", "absent", "present", payload=got))
            if self.mode is not None:
                changes.append(Change("mode", None, f"{self.mode:04o}"))
            return changes + owner_changes(self.spec, None)
        if got["sha256"] != current:
            changes.append(Change("content", _short(current), _short(got["sha256"]),
                                  payload=got))
        if self.mode is not None and stat.S_IMODE(st.st_mode) != self.mode:
            changes.append(Change("mode", f"{stat.S_IMODE(st.st_mode):04o}", f"{self.mode:04o}"))
        return changes + owner_changes(self.spec, st)

    def _fetch(self, current: str | None) -> dict[str, Any]:
        """The object's verified sha256 (and its bytes when they may be needed).

        One S3 request: conditional when the file still holds the content verified
        with the recorded ETag, so an unchanged object is a 304.
        """
        if self._got is not None and self._got["sha256"] == current:
            return self._got  # the re-check after apply: nothing to ask S3 again
        from agent.aws.objects import fetch_object

        source = self.spec["source"]
        record = self._records().get(self.name) or {}
        etag = None
        if (record.get("source") == source and record.get("sha256") == current
                and current is not None and self.spec["sha256"] in (None, current)
                and record.get("version_id") == self.spec["version_id"]):
            etag = record.get("etag")
        folder = os.path.join(self.ctx.state_dir or os.path.dirname(self.name), "downloads")
        try:  # a 304 means: the file holds the content verified with this ETag
            got = fetch_object(source, folder, etag=etag, sha256=self.spec["sha256"],
                               version_id=self.spec["version_id"], limit=MAX_SIZE)
        except (TrueupError, Unreachable) as exc:
            raise ResourceError(str(exc)) from None
        if got.not_modified:
            self._got = {"sha256": current, "etag": etag, "data": None}
            return self._got
        try:
            with open(got.path, "rb") as fh:
                data = fh.read()
        finally:
            os.unlink(got.path)
        self._got = {"sha256": got.sha256, "etag": got.etag, "data": data}
        if got.sha256 == current:  # same content already there: remember its ETag
            self._remember()
        return self._got

    def _records(self) -> dict[str, Any]:
        if not self.ctx.state_dir:
            return {}
        return read_object(os.path.join(self.ctx.state_dir, RECORDS)) or {}

    def _remember(self) -> None:
        """Keep the source, ETag and sha256 the file now holds (best effort)."""
        if not self.ctx.state_dir or self._got is None:
            return
        records = self._records()
        records[self.name] = {"source": self.spec["source"], "etag": self._got["etag"],
                              "sha256": self._got["sha256"],
                              "version_id": self.spec["version_id"]}
        path = os.path.join(self.ctx.state_dir, RECORDS)
        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            write_file_atomic(path, json.dumps(records, sort_keys=True).encode(), durable=False)

    # --- apply ------------------------------------------------------------------------

    def apply(self, changes: list[Change]) -> None:
        with writing(self.name, "remove" if self.state == "absent" else "write"):
            if apply_file(self, changes, lambda: next(
                    c.payload for c in changes if c.field in ("state", "content"))["data"]):
                self._remember()


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ResourceError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _short(digest: str | None) -> str:
    return f"sha256:{digest[:16]}" if digest else ""
