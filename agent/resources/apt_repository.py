"""apt_repository: an apt source (deb822 .sources file) and the key it is signed with."""

from __future__ import annotations

import os
import re

from agent.errors import ResourceError
from agent.host import fetch, files
from agent.model import Change
from agent.resources import STRLIST, Resource, SpecError, f, save_backup, writing

SOURCES_DIR = "/etc/apt/sources.list.d"
KEYRING_DIR = "/etc/apt/keyrings"
UPDATE = "apt-update"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_WORD = re.compile(r"^[^\s#]+$")
_ARMOR = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"


def _words(value: str | list | None) -> list[str]:
    if value is None:
        return []
    return value.split() if isinstance(value, str) else [str(v) for v in value]


class AptRepository(Resource, kind="apt_repository"):
    """An apt repository: /etc/apt/sources.list.d/NAME.sources and its signing key.

    The key goes to /etc/apt/keyrings/NAME.asc (armored) or NAME.gpg (binary) and the
    source names it in ``Signed-By``, so it signs this repository only. It comes from
    a file in the recipe's files/ folder, an absolute path on the host, or a URL
    (``https://``, ``http://``, ``file:///``) with its ``key_sha256`` (the URL is
    fetched only when the keyring on disk is not that key).

    When a repository changes, the package index is refreshed once per run: by the
    next ``package`` that installs (its refresh is the run's only one), or else once
    after the last resource.

    Spec:
        apt_repository (str): the repository's name (file names: letters, digits, _ . -).
        uri (str): the repository's URI (http://, https://, file:).
        suites (list): suites such as [bookworm]; a flat repository is ["./"].
        components (list): components such as [main] (none for a flat repository).
        key (str): the signing key: a file under files/, an absolute path or a URL.
        key_sha256 (str): the key's sha256; required for a URL.
        architectures (list): restrict to these architectures.
        types (list): deb (default) and/or deb-src.
        trusted (bool): accept the repository unsigned (for local file repositories).
        state (str): present (default) or absent.

    Example:
        - apt_repository: nginx
          uri: https://nginx.org/packages/debian
          suites: ["{{ facts.os.codename }}"]
          components: [nginx]
          key: https://nginx.org/keys/nginx_signing.key
          key_sha256: fd3a2d2f1f1a1d4d1d3e0b6a3d1c3f8b2b4c0d1e2f3a4b5c6d7e8f9a0b1c2d3e
        - package: nginx
    """

    FIELDS = {
        "uri": f(str, None, "the repository's URI"),
        "suites": f(STRLIST, None, "suites (a flat repository: ./)"),
        "components": f(STRLIST, None, "components (none for a flat repository)"),
        "key": f(str, None, "signing key: a file under files/, an absolute path or a URL"),
        "key_sha256": f(str, None, "the key's sha256 (required for a URL)"),
        "architectures": f(STRLIST, None, "only these architectures"),
        "types": f(STRLIST, "deb", "deb and/or deb-src"),
        "trusted": f(bool, False, "accept the repository unsigned"),
    }
    SYSTEM = True
    EXAMPLES = [{"apt_repository": "trueup-example", "uri": "file:/srv/repo", "suites": ["./"],
                 "trusted": True}]
    SENSITIVE_EXAMPLE = {"apt_repository": "trueup-example", "uri": "https://{canary}.example",
                         "suites": ["stable"], "trusted": True, "sensitive": True}

    key_data: bytes | None = None

    def validate(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"apt_repository name {self.name!r} must be letters, digits, "
                             "_ . - (it names the .sources file)")
        self.sources = f"{SOURCES_DIR}/{self.name}.sources"
        if self.state == "absent":
            return
        for key in ("uri", "suites"):
            if not self.spec[key]:
                raise SpecError(key, f"apt_repository needs {key}")
        if not _WORD.match(self.spec["uri"]):
            raise SpecError("uri", f"uri {self.spec['uri']!r} may not hold spaces or #")
        for key in ("suites", "components", "architectures", "types"):
            for word in _words(self.spec[key]):
                if not _WORD.match(word):
                    raise SpecError(key, f"{key} value {word!r} may not hold spaces or #")
        if set(_words(self.spec["types"])) - {"deb", "deb-src"}:
            raise SpecError("types", "types are deb and/or deb-src")
        key = self.spec["key"]
        self.key_url = key is not None and "://" in key
        if self.key_url:
            why = fetch.check_url(key) or fetch.check_sha256(self.spec["key_sha256"])
            if why:
                raise SpecError("key_sha256" if "sha256" in why else "key", why)
        elif self.spec["key_sha256"] is not None:
            why = fetch.check_sha256(self.spec["key_sha256"])
            if why:
                raise SpecError("key_sha256", why)
        if key is not None and self.spec["trusted"]:
            raise SpecError("trusted", "give key or trusted: true, not both")

    def prepare(self) -> None:
        key = self.spec["key"]
        if self.state == "absent" or key is None or self.key_url:
            return
        if os.path.isabs(key):
            path = key
        else:
            base = os.path.join(self.ctx.recipe_dir, "files")
            path = os.path.normpath(os.path.join(base, key))
            if not path.startswith(base + os.sep):
                raise SpecError("key", f"key {key!r} leaves the recipe's files/ folder")
        try:
            self.key_data = files.read_bytes(path, files.MAX_TEXT_BYTES)
        except (OSError, files.NotRegular) as exc:
            raise SpecError("key", f"cannot read key {path}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
        want = self.spec["key_sha256"]
        if want is not None:
            import hashlib

            got = hashlib.sha256(self.key_data).hexdigest()
            if got != want.lower():
                raise SpecError("key_sha256", f"key {path} has sha256 {got}, not {want}")

    # --- the files ----------------------------------------------------------------------

    def _keyring(self) -> str | None:
        """Where the key goes (its extension from the content; a URL's key is armored
        when the URL ends in .asc or .key, else binary)."""
        key = self.spec["key"]
        if key is None or self.state == "absent":
            return None
        if self.key_data is not None:
            armored = self.key_data.lstrip().startswith(_ARMOR)
        else:
            armored = not key.lower().endswith(".gpg")
        return f"{KEYRING_DIR}/{self.name}.{'asc' if armored else 'gpg'}"

    def _text(self) -> bytes:
        lines = [("Types", " ".join(_words(self.spec["types"]))),
                 ("URIs", self.spec["uri"]),
                 ("Suites", " ".join(_words(self.spec["suites"])))]
        if self.spec["components"]:
            lines.append(("Components", " ".join(_words(self.spec["components"]))))
        if self.spec["architectures"]:
            lines.append(("Architectures", " ".join(_words(self.spec["architectures"]))))
        keyring = self._keyring()
        if keyring:
            lines.append(("Signed-By", keyring))
        if self.spec["trusted"]:
            lines.append(("Trusted", "yes"))
        return ("# managed by trueup\n" + "".join(f"{k}: {v}\n" for k, v in lines)).encode()

    def _read(self, path: str) -> bytes | None:
        try:
            return self.ctx.system.read(path)
        except FileNotFoundError:
            return None

    def check(self) -> list[Change]:
        current = self._read(self.sources)
        if self.state == "absent":
            stale = [p for p in (self.sources, *self._old_keyrings(None)) if self._read(p)
                     is not None]
            return [Change("state", "present", "absent", payload=stale)] if stale else []
        changes = []
        keyring = self._keyring()
        if keyring is not None:
            have = self._read(keyring)
            if self.key_data is not None:
                differs = have != self.key_data
            else:
                import hashlib

                differs = have is None or (hashlib.sha256(have).hexdigest()
                                           != self.spec["key_sha256"].lower())
            if differs:
                changes.append(Change("key", None if have is None else "another key",
                                      keyring))
        old = self._old_keyrings(keyring)
        if old:
            changes.append(Change("old_key", ", ".join(old), None, payload=old))
        want = self._text()
        if current != want:
            changes.append(Change("sources", None if current is None else "differs",
                                  self.sources, _diff(current or b"", want, self.sources),
                                  payload=want))
        return changes

    def _old_keyrings(self, keep: str | None) -> list[str]:
        names = [f"{KEYRING_DIR}/{self.name}.{ext}" for ext in ("asc", "gpg")]
        return [p for p in names if p != keep and self._read(p) is not None]

    def apply(self, changes: list[Change]) -> None:
        system = self.ctx.system
        for change in changes:
            if change.field == "state":
                for path in change.payload:
                    save_backup(self.ctx, path, system.read(path))
                    with writing(path, "remove"):
                        system.remove(path)
            elif change.field == "old_key":
                for path in change.payload:
                    with writing(path, "remove"):
                        system.remove(path)
            elif change.field == "key":
                self._write_key(change.after)
            elif change.field == "sources":
                self._write(self.sources, change.payload)
        self.ctx.fact_host.pending.add(UPDATE)

    def _write_key(self, keyring: str) -> None:
        if self.key_data is not None:
            self._write(keyring, self.key_data)
            return
        self._folder(KEYRING_DIR)
        fetch.fetch_to(self.spec["key"], self.ctx.system.path(keyring),
                       self.spec["key_sha256"], 0o644)

    def _folder(self, folder: str) -> None:
        if not self.ctx.system.isdir(folder):
            with writing(folder, "create"):
                self.ctx.system.mkdir(folder, 0o755)

    def _write(self, path: str, data: bytes) -> None:
        self._folder(os.path.dirname(path))
        current = self._read(path)
        if current is not None:
            save_backup(self.ctx, path, current)
        with writing(path):
            self.ctx.system.atomic_write(path, data, 0o644, replacing=current is not None)

    def settle(self) -> list[Change]:
        host = self.ctx.fact_host
        if UPDATE not in host.pending:
            return []
        done = self.ctx.system.run(["apt-get", "-q", "update"], timeout=1800)
        if not done.ok:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ResourceError(f"apt-get update exited with status {done.returncode}: "
                                + " | ".join(tail))
        host.pending.discard(UPDATE)
        host.refreshed_indexes.add("apt")
        host.forget()
        return [Change("update", None, "apt-get update (once this run)")]


def _diff(before: bytes, after: bytes, path: str) -> str:
    import difflib

    lines = difflib.unified_diff(before.decode("utf-8", "replace").splitlines(keepends=True),
                                 after.decode("utf-8", "replace").splitlines(keepends=True),
                                 f"{path} (current)", f"{path} (declared)")
    return "".join(lines)
