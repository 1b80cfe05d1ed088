"""archive: a tar or zip archive, verified by sha256, extracted safely into a folder."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
import tempfile

from agent.errors import ResourceError
from agent.host import fetch, unpack
from agent.host.system import lookup_gid, lookup_uid
from agent.model import Change
from agent.resources import Resource, SpecError, f


def _example_tar() -> bytes:
    """A small .tar.gz for the EXAMPLES: app-1.0/{bin/tool, README}."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data, mode in (("app-1.0/bin/tool", b"#!/bin/sh\necho tool\n", 0o755),
                                 ("app-1.0/README", b"read me\n", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


_TAR = _example_tar()


class Archive(Resource, kind="archive"):
    """A tar (gz, bz2, xz) or zip archive extracted into a folder.

    ``source`` is an absolute path on the host or a URL (``https://``, ``http://``,
    ``file:///``); a URL needs ``sha256`` and ``creates``. The archive's sha256 is
    checked before anything is extracted, and so is every member: nothing is
    written if one has an absolute name or ``..``, links outside the folder, or
    is a device (see host.unpack). The folder is created (mode 0755) if missing.

    Converged when ``creates`` exists; without ``creates`` (a local source), when
    every member is in the folder as the archive has it (content, mode, owner).

    Spec:
        archive (str): absolute path of the folder to extract into; the name.
        source (str): the archive: an absolute path or a URL.
        sha256 (str): the archive's sha256 (required for a URL).
        creates (str): a path the extraction makes; present means converged.
        strip_components (int): leading path components removed from members.
        owner, group (str): own everything extracted (and the folder).
        state (str): present (default) only.

    Example:
        - archive: /opt/node_exporter
          source: https://example.org/node_exporter-1.8.2.linux-amd64.tar.gz
          sha256: 6809dd0b3ec45fd6e992c19071d6b5253aed3ead7bf0686885a51d85c6643c66
          strip_components: 1
          creates: /opt/node_exporter/node_exporter
          owner: root
    """

    FIELDS = {
        "source": f(str, None, "absolute path or URL of the archive", required=True),
        "sha256": f(str, None, "the archive's sha256 (required for a URL)"),
        "creates": f(str, None, "a path the extraction makes; present means converged"),
        "strip_components": f(int, 0, "leading path components removed from members"),
        "owner": f((str, int), None, "user that owns what is extracted"),
        "group": f((str, int), None, "group that owns what is extracted"),
        "timeout": f(int, 300, "seconds a fetch may take"),
    }
    STATES = ("present",)
    EXAMPLES = [
        {"archive": "{tmp}/app", "source": "{tmp}/app.tar.gz", "strip_components": 1,
         "_setup": {"app.tar.gz": _TAR},
         "_expect": {"app.tar.gz": _TAR, "app": {"type": "dir", "mode": "0755"},
                     "app/bin": {"type": "dir", "mode": "0755"},
                     "app/bin/tool": {"content": "#!/bin/sh\necho tool\n", "mode": "0755"},
                     "app/README": {"content": "read me\n", "mode": "0644"}}},
        {"archive": "{tmp}/dl", "source": "file://{tmp}/app.tar.gz",
         "sha256": hashlib.sha256(_TAR).hexdigest(),
         "creates": "{tmp}/dl/app-1.0/README", "_setup": {"app.tar.gz": _TAR},
         "_expect": {"app.tar.gz": _TAR, "dl": {"type": "dir"},
                     "dl/app-1.0": {"type": "dir"}, "dl/app-1.0/bin": {"type": "dir"},
                     "dl/app-1.0/bin/tool": "#!/bin/sh\necho tool\n",
                     "dl/app-1.0/README": "read me\n"}},
    ]
    SENSITIVE_EXAMPLE = {"archive": "{tmp}/secret", "source": "{tmp}/{canary}.tar.gz",
                         "sensitive": True}

    def validate(self) -> None:
        if not os.path.isabs(self.name):
            raise ValueError(f"archive folder must be absolute, not {self.name!r}")
        source = self.spec["source"]
        self.url = not os.path.isabs(source)
        if self.url:
            why = fetch.check_url(source)
            if why:
                raise SpecError("source", why + " (a local archive is an absolute path)")
            if self.spec["sha256"] is None:
                raise SpecError("sha256", "an archive from a URL needs its sha256")
            if self.spec["creates"] is None:
                raise SpecError("creates", "an archive from a URL needs creates: (a path "
                                "the extraction makes), so it is not fetched on every run")
        if self.spec["sha256"] is not None:
            why = fetch.check_sha256(self.spec["sha256"])
            if why:
                raise SpecError("sha256", why)
        creates = self.spec["creates"]
        if creates is not None and not os.path.isabs(creates):
            raise SpecError("creates", f"creates must be an absolute path, not {creates!r}")
        if self.spec["strip_components"] < 0:
            raise SpecError("strip_components", "strip_components is a number >= 0")

    def _ids(self) -> tuple[int, int]:
        return lookup_uid(self.spec["owner"]), lookup_gid(self.spec["group"])

    def check(self) -> list[Change]:
        creates = self.spec["creates"]
        if creates is not None:
            if os.path.lexists(creates):
                return []
            return [Change("extract", None, f"{self.spec['source']} -> {self.name}")]
        if not os.path.isdir(self.name):
            return [Change("extract", None, f"{self.spec['source']} -> {self.name}")]
        self._verify_local()
        found = unpack.entries(self.spec["source"], self.spec["strip_components"])
        stale = unpack.differs(found, self.name, *self._ids())
        if not stale:
            return []
        return [Change("extract", f"{len(stale)} of {len(found)} members differ",
                       f"{self.spec['source']} -> {self.name}")]

    def _verify_local(self) -> None:
        want = self.spec["sha256"]
        if want is None:
            return
        got = fetch.file_sha256(self.spec["source"])
        if got is None:
            raise ResourceError(f"archive {self.spec['source']} does not exist")
        if got != want.lower():
            raise ResourceError(f"{self.spec['source']}: sha256 is {got}, not the declared "
                                f"{want.lower()}; nothing extracted")

    def apply(self, changes: list[Change]) -> None:
        uid, gid = self._ids()
        with self._local_copy() as path:
            found = unpack.entries(path, self.spec["strip_components"])
            try:
                if not os.path.isdir(self.name):
                    os.makedirs(self.name, 0o755)
                    if uid != -1 or gid != -1:
                        os.chown(self.name, uid, gid)
                unpack.extract(found, self.name, uid, gid)
            except OSError as exc:
                raise ResourceError(f"cannot extract into {self.name}: "
                                    f"{exc.strerror or exc}") from None

    @contextlib.contextmanager
    def _local_copy(self):  # noqa: ANN202
        """The archive as a verified local file (a URL is fetched to a temporary file)."""
        source = self.spec["source"]
        if not self.url:
            if not os.path.isfile(source):
                raise ResourceError(f"archive {source} does not exist")
            self._verify_local()
            yield source
            return
        with tempfile.TemporaryDirectory(prefix="trueup-archive-") as tmp:
            path = os.path.join(tmp, "archive")
            fetch.fetch_to(source, path, self.spec["sha256"], 0o600,
                           timeout=self.spec["timeout"])
            yield path
