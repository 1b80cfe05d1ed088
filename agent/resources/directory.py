"""directory: a folder with its mode and owner; missing parents are created."""

from __future__ import annotations

import os
import stat

from agent.errors import ResourceError
from agent.host.system import lookup_gid, lookup_uid
from agent.model import Change
from agent.resources import Resource, f, owner_changes, parse_mode


class Directory(Resource, kind="directory"):
    """A directory, created with any missing parents (parents get mode 0755).

    Check lists each missing parent as its own change (``parent``), outermost
    first, and apply creates exactly those.

    Spec:
        directory (str): absolute path; the resource's name.
        owner, group (str): user and group names or numbers.
        mode (str): octal string such as "0755".
        recursive (bool): with state absent, remove the folder and everything in
            it; without it, only an empty folder is removed.
        state (str): present (default) or absent.

    Example:
        - directory: /srv/app/releases
          owner: deploy
          mode: "0750"
    """

    FIELDS = {
        "owner": f((str, int), None, "user name or uid"),
        "group": f((str, int), None, "group name or gid"),
        "mode": f((str, int), None, 'octal string such as "0755"'),
        "recursive": f(bool, False, "with state absent: remove the contents too"),
    }
    EXAMPLES = [
        {"directory": "{tmp}/a/b/c", "mode": "0750",
         "_expect": {"a": {"type": "dir", "mode": "0755"}, "a/b": {"type": "dir", "mode": "0755"},
                     "a/b/c": {"type": "dir", "mode": "0750"}}},
        {"directory": "{tmp}/old", "state": "absent", "recursive": True,
         "_setup": {"old/x/y": "data\n"}, "_expect": {"old": None}},
        {"directory": "{tmp}/chmod", "mode": "0700", "_setup": {"chmod/": None},
         "_expect": {"chmod": {"type": "dir", "mode": "0700"}}},
    ]
    SENSITIVE_EXAMPLE = {"directory": "{tmp}/private", "owner": "{canary}", "mode": "0700",
                         "sensitive": True}

    def validate(self) -> None:
        if not os.path.isabs(self.name):
            raise ValueError(f"directory path must be absolute, not {self.name!r}")
        if os.path.normpath(self.name) == "/" and self.state == "absent":
            raise ValueError("refusing to remove /")
        self.mode = parse_mode(self.spec["mode"]) if self.spec["mode"] is not None else None

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
        return changes + owner_changes(self.spec, st)

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
            return
        if "mode" in fields:
            sys.chmod(self.name, self.mode)
        if "owner" in fields or "group" in fields:
            sys.chown(self.name, uid, gid)
