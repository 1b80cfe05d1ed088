"""link: a symbolic or hard link."""

from __future__ import annotations

import os
import stat

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import Resource, f, read_regular, save_backup, writing


class Link(Resource, kind="link"):
    """A symbolic link (or a hard link with ``hard: true``) pointing at ``to``.

    A link in the way is replaced. A regular file in the way is replaced too,
    after its content is kept as a backup under the state dir, like file's
    (``backup: false`` to skip it). A directory, or anything else that is not a
    regular file or a link, is an error and is left alone. With state absent only
    a link is removed (a regular file is refused, unless it is a hard link).

    Spec:
        link (str): absolute path of the link; the resource's name.
        to (str): what it points at (kept as written for symbolic links).
        hard (bool): make a hard link instead (``to`` must exist).
        backup (bool | int): keep a regular file it replaces (default: the
            configured count).
        state (str): present (default) or absent.

    Example:
        - link: /etc/nginx/sites-enabled/app
          to: /etc/nginx/sites-available/app
    """

    FIELDS = {
        "to": f(str, None, "the link's target"),
        "hard": f(bool, False, "a hard link instead of a symbolic one"),
        "backup": f((bool, int), True, "keep a regular file it replaces (true, false or a count)"),
    }
    EXAMPLES = [
        {"link": "{tmp}/latest", "to": "{tmp}/target", "_setup": {"target": "t\n"},
         "_expect": {"latest": {"type": "link", "to": "{tmp}/target"}, "target": "t\n"}},
        {"link": "{tmp}/hard", "to": "{tmp}/target", "hard": True, "_setup": {"target": "t\n"},
         "_expect": {"hard": {"content": "t\n", "links": 2},
                     "target": {"content": "t\n", "links": 2}}},
        {"link": "{tmp}/retarget", "to": "{tmp}/b", "_setup": {"b": "b\n"},
         "_links": {"retarget": "{tmp}/a"},
         "_expect": {"retarget": {"type": "link", "to": "{tmp}/b"}, "b": "b\n"}},
        {"link": "{tmp}/gone", "state": "absent", "_links": {"gone": "{tmp}/x"},
         "_expect": {"gone": None}},
    ]
    SENSITIVE_EXAMPLE = {"link": "{tmp}/current", "to": "{tmp}/release-{canary}",
                         "sensitive": True}

    def validate(self) -> None:
        if not os.path.isabs(self.name):
            raise ValueError(f"link path must be absolute, not {self.name!r}")
        if self.state == "present" and not self.spec.get("to"):
            raise ValueError("a link needs 'to:', the path it points at")
        self.hard = bool(self.spec.get("hard"))

    def check(self) -> list[Change]:
        path, to = self.name, self.spec.get("to")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise ResourceError(f"{path} is a directory; link: does not replace a directory "
                                "(remove it first)")
        if st is not None and not (stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise ResourceError(f"{path} is not a regular file or a link; not replacing it")
        if self.state == "absent":
            if st is None:
                return []
            if not stat.S_ISLNK(st.st_mode) and not (self.hard and st.st_nlink > 1):
                raise ResourceError(f"{path} is a regular file, not a link; not removing it")
            return [Change("state", "present", "absent")]
        if self.hard:
            try:
                tst = os.stat(to)
            except FileNotFoundError:
                raise ResourceError(f"hard link target {to} does not exist") from None
            if st is not None and (st.st_ino, st.st_dev) == (tst.st_ino, tst.st_dev):
                return []
            return [Change("to", None if st is None else "(other file)", to)]
        if st is not None and stat.S_ISLNK(st.st_mode):
            current = os.readlink(path)
            return [] if current == to else [Change("to", current, to)]
        return [Change("to", None if st is None else "(regular file)", to)]

    def apply(self, changes: list[Change]) -> None:
        sys = self.ctx.system
        if self.state == "absent":
            with writing(self.name, "remove"):
                sys.remove(self.name)
            return
        try:
            st = os.lstat(self.name)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):  # keep what the link replaces
            save_backup(self.ctx, self.name, read_regular(self.name), self.spec["backup"])
        with writing(self.name):
            if self.hard:
                sys.atomic_hardlink(self.spec["to"], self.name)
            else:
                sys.atomic_symlink(self.spec["to"], self.name)
