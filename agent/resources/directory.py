"""directory: a folder with its mode and owner; missing parents are created."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from agent.errors import ResourceError
from agent.host.system import lookup_gid, lookup_uid
from agent.model import Change
from agent.resources import Resource, SpecError, f, owner_changes, parse_mode


class Directory(Resource, kind="directory"):
    """A directory, created with any missing parents (parents get mode 0755).

    Check lists each missing parent as its own change (``parent``), outermost
    first, and apply creates exactly those.

    Spec:
        directory (str): absolute path; the resource's name.
        owner, group (str): user and group names or numbers.
        mode (str): octal string such as "0755".
        recursive (bool): with state present, ``owner`` and ``group`` apply to
            everything below the folder, ``mode`` to every folder below and
            ``file_mode`` to every file below (symbolic links are never followed
            nor changed); with state absent, remove the folder and everything in
            it (without it, only an empty folder is removed).
        file_mode (str): with recursive, the mode of the files below.
        state (str): present (default) or absent.

    Example:
        - directory: /srv/app/releases
          owner: deploy
          mode: "0750"
        - directory: /srv/app/shared
          owner: deploy
          group: www-data
          mode: "2750"
          file_mode: "0640"
          recursive: true
    """

    FIELDS = {
        "owner": f((str, int), None, "user name or uid"),
        "group": f((str, int), None, "group name or gid"),
        "mode": f((str, int), None, 'octal string such as "0755"'),
        "recursive": f(bool, False, "present: owner/group/mode below too; absent: remove "
                       "the contents too"),
        "file_mode": f((str, int), None, "with recursive: the mode of the files below"),
    }
    EXAMPLES = [
        {"directory": "{tmp}/a/b/c", "mode": "0750",
         "_expect": {"a": {"type": "dir", "mode": "0755"}, "a/b": {"type": "dir", "mode": "0755"},
                     "a/b/c": {"type": "dir", "mode": "0750"}}},
        {"directory": "{tmp}/old", "state": "absent", "recursive": True,
         "_setup": {"old/x/y": "data\n"}, "_expect": {"old": None}},
        {"directory": "{tmp}/chmod", "mode": "0700", "_setup": {"chmod/": None},
         "_expect": {"chmod": {"type": "dir", "mode": "0700"}}},
        {"directory": "{tmp}/tree", "mode": "0750", "file_mode": "0640", "recursive": True,
         "_setup": {"tree/a/f": "f\n", "tree/g": "g\n"},
         "_modes": {"tree/a": "0777", "tree/a/f": "0666"},
         "_expect": {"tree": {"type": "dir", "mode": "0750"},
                     "tree/a": {"type": "dir", "mode": "0750"},
                     "tree/a/f": {"content": "f\n", "mode": "0640"},
                     "tree/g": {"content": "g\n", "mode": "0640"}}},
    ]
    SENSITIVE_EXAMPLE = {"directory": "{tmp}/private", "owner": "{canary}", "mode": "0700",
                         "sensitive": True}

    def validate(self) -> None:
        if not os.path.isabs(self.name):
            raise ValueError(f"directory path must be absolute, not {self.name!r}")
        if os.path.normpath(self.name) == "/" and self.state == "absent":
            raise ValueError("refusing to remove /")
        self.mode = parse_mode(self.spec["mode"]) if self.spec["mode"] is not None else None
        self.file_mode = None
        if self.spec["file_mode"] is not None:
            if not self.spec["recursive"]:
                raise SpecError("file_mode", "file_mode applies with recursive: true")
            try:
                self.file_mode = parse_mode(self.spec["file_mode"])
            except SpecError as exc:
                raise SpecError("file_mode", f"file_{exc}") from None

    def check(self) -> list[Change]:
        try:
            st = os.lstat(self.name)
        except FileNotFoundError:
            st = None
        except NotADirectoryError:
            raise ResourceError(f"a parent of {self.name} is not a directory") from None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise ResourceError(f"{self.name} exists and is not a directory")
        if self.state == "absent":
            if st is None:
                return []
            if not self.spec.get("recursive") and os.listdir(self.name):
                raise ResourceError(f"{self.name} is not empty; set recursive: true to remove "
                                    "it with its contents")
            return [Change("state", "present", "absent")]
        if st is None:
            changes = [Change("parent", None, folder) for folder in self._missing_parents()]
            changes.append(Change("state", "absent", "present"))
            if self.mode is not None:
                changes.append(Change("mode", None, f"{self.mode:04o}"))
            return changes + owner_changes(self.spec, None)
        changes = []
        if self.mode is not None and stat.S_IMODE(st.st_mode) != self.mode:
            changes.append(Change("mode", f"{stat.S_IMODE(st.st_mode):04o}", f"{self.mode:04o}"))
        return changes + owner_changes(self.spec, st) + self._below_changes()

    def _below(self) -> Iterator[tuple[str, os.stat_result, int | None]]:
        """Each entry below the folder that differs: (path, status, its wanted mode)."""
        if not self.spec["recursive"] or self.state == "absent":
            return
        uid, gid = lookup_uid(self.spec["owner"]), lookup_gid(self.spec["group"])
        for folder, dirs, files in os.walk(self.name):
            for name in dirs + files:
                path = os.path.join(folder, name)
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    continue
                want = self.mode if stat.S_ISDIR(st.st_mode) else (
                    self.file_mode if stat.S_ISREG(st.st_mode) else None)
                if ((want is not None and stat.S_IMODE(st.st_mode) != want)
                        or uid not in (-1, st.st_uid) or gid not in (-1, st.st_gid)):
                    yield path, st, want

    def _below_changes(self) -> list[Change]:
        stale = [path for path, _st, _want in self._below()]
        if not stale:
            return []
        return [Change("below", f"{len(stale)} entries differ",
                       f"owner/group/mode of everything below {self.name}")]

    def _missing_parents(self) -> list[str]:
        """The folders above this one that do not exist yet, outermost first."""
        missing = []
        parent = os.path.dirname(os.path.normpath(self.name))
        while not os.path.isdir(parent):
            if os.path.lexists(parent):
                raise ResourceError(f"{parent}, a parent of {self.name}, is not a directory")
            missing.append(parent)
            parent = os.path.dirname(parent)
        return missing[::-1]

    def apply(self, changes: list[Change]) -> None:
        sys = self.ctx.system
        fields = {c.field for c in changes}
        if self.state == "absent":
            sys.rmdir(self.name, recursive=bool(self.spec.get("recursive")))
            return
        uid, gid = lookup_uid(self.spec.get("owner")), lookup_gid(self.spec.get("group"))
        if "state" in fields:
            for change in changes:
                if change.field == "parent":
                    sys.mkdir(change.after, 0o755)
            sys.mkdir(self.name, 0o755 if self.mode is None else self.mode, uid, gid)
            return  # a new folder has nothing below it
        if "mode" in fields:
            sys.chmod(self.name, self.mode)
        if "owner" in fields or "group" in fields:
            sys.chown(self.name, uid, gid)
        if "below" in fields:
            for path, st, want in list(self._below()):
                if uid not in (-1, st.st_uid) or gid not in (-1, st.st_gid):
                    os.chown(path, uid, gid, follow_symlinks=False)
                if want is not None and stat.S_IMODE(st.st_mode) != want:
                    os.chmod(path, want)
