"""download: a file fetched from a URL, verified by its sha256."""

from __future__ import annotations

import hashlib
import os
import stat

from agent.errors import ResourceError
from agent.host import fetch
from agent.host.system import lookup_gid, lookup_uid
from agent.model import Change
from agent.resources import Resource, SpecError, f, owner_changes, parse_mode, writing

_DATA = b"downloaded by trueup\n"
_SHA = hashlib.sha256(_DATA).hexdigest()


class Download(Resource, kind="download"):
    """A file fetched from ``url`` to the path, kept only if its sha256 is ``sha256``.

    The fetch is conditional: a file already at the path with that sha256 is not
    fetched again (only its mode and owner are fixed). The content is streamed into
    a temporary file beside the path and renamed into place once its checksum
    matched: a wrong checksum fails the resource and writes nothing. URLs:
    ``https://``, ``http://``, ``file:///`` and ``s3://bucket/key`` (read with the
    instance's credentials, as ``s3_file`` is).

    Spec:
        download (str): absolute path of the file; the resource's name.
        url (str): where the file comes from.
        sha256 (str): the file's sha256 (64 hex digits); required.
        owner, group (str): user and group names or numbers.
        mode (str): octal string such as "0755" (default "0644").
        timeout (int): seconds a fetch may take (default 300).
        state (str): present (default) or absent.

    Example:
        - download: /usr/local/bin/node_exporter
          url: https://example.org/node_exporter-1.8.2
          sha256: 6809dd0b3ec45fd6e992c19071d6b5253aed3ead7bf0686885a51d85c6643c66
          mode: "0755"
    """

    FIELDS = {
        "url": f(str, None, "https://, http:// or file:/// URL", required=True),
        "sha256": f(str, None, "the file's sha256 (required)", required=True),
        "owner": f((str, int), None, "user name or uid"),
        "group": f((str, int), None, "group name or gid"),
        "mode": f((str, int), None, 'octal string such as "0755"'),
        "timeout": f(int, 300, "seconds a fetch may take"),
    }
    EXAMPLES = [
        {"download": "{tmp}/out/tool", "url": "file://{tmp}/src/tool", "sha256": _SHA,
         "mode": "0755", "_setup": {"src/tool": _DATA.decode(), "out/": None},
         "_expect": {"src": {"type": "dir"}, "src/tool": _DATA.decode(),
                     "out": {"type": "dir"},
                     "out/tool": {"content": _DATA.decode(), "mode": "0755"}}},
        {"download": "{tmp}/stale", "url": "file://{tmp}/new", "sha256": _SHA,
         "_setup": {"stale": "old\n", "new": _DATA.decode()},
         "_expect": {"stale": _DATA.decode(), "new": _DATA.decode()}},
    ]
    SENSITIVE_EXAMPLE = {"download": "{tmp}/secret", "url": "file://{tmp}/{canary}",
                         "sha256": _SHA, "sensitive": True}

    def validate(self) -> None:
        if not os.path.isabs(self.name):
            raise ValueError(f"download path must be absolute, not {self.name!r}")
        why = fetch.check_sha256(self.spec["sha256"])
        if why:
            raise SpecError("sha256", why)
        why = fetch.check_url(self.spec["url"])
        if why:
            raise SpecError("url", why)
        self.mode = parse_mode(self.spec["mode"]) if self.spec["mode"] is not None else None
        if self.spec["timeout"] <= 0:
            raise SpecError("timeout", "timeout is a number of seconds > 0")

    def _lstat(self) -> os.stat_result | None:
        try:
            st = os.lstat(self.name)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise ResourceError(f"{self.name} exists and is not a regular file")
        return st

    def check(self) -> list[Change]:
        st = self._lstat()
        if self.state == "absent":
            return [] if st is None else [Change("state", "present", "absent")]
        want = self.spec["sha256"].lower()
        if st is None:
            return [Change("state", "absent", f"sha256:{want[:16]} from {self.spec['url']}")]
        current = fetch.file_sha256(self.name)
        changes = []
        if current != want:
            changes.append(Change("content", f"sha256:{current[:16]}",
                                  f"sha256:{want[:16]} from {self.spec['url']}"))
        if self.mode is not None and stat.S_IMODE(st.st_mode) != self.mode:
            changes.append(Change("mode", f"{stat.S_IMODE(st.st_mode):04o}", f"{self.mode:04o}"))
        return changes + owner_changes(self.spec, st)

    def apply(self, changes: list[Change]) -> None:
        fields = {c.field for c in changes}
        with writing(self.name, "remove" if self.state == "absent" else "write"):
            if self.state == "absent":
                os.unlink(self.name)
                return
            uid, gid = lookup_uid(self.spec["owner"]), lookup_gid(self.spec["group"])
            if fields & {"state", "content"}:
                st = self._lstat()
                mode = self.mode if self.mode is not None else (
                    stat.S_IMODE(st.st_mode) if st else 0o644)
                fetch.fetch_to(self.spec["url"], self.name, self.spec["sha256"], mode,
                               uid, gid, timeout=self.spec["timeout"])
                return
            if "mode" in fields:
                os.chmod(self.name, self.mode)
            if fields & {"owner", "group"}:
                os.chown(self.name, uid, gid, follow_symlinks=False)
