"""file: a regular file's content, mode and owner."""

from __future__ import annotations

import os
import stat

from agent.errors import ResourceError
from agent.host import files
from agent.host.system import temp_name
from agent.model import Change
from agent.resources import (
    Resource,
    SpecError,
    apply_file,
    f,
    lstat_file,
    owner_changes,
    parse_mode,
    read_regular,
    removal_changes,
    writing,
)

MAX_DIFF = 256 * 1024


class File(Resource, kind="file"):
    """A regular file with exact content, mode and owner.

    Spec:
        file (str): absolute path; the resource's name.
        content (str): the exact content.
        source (str): a file from the recipe's files/ folder, copied byte for byte; a
            regular file of at most 16 MiB (host.files.MAX_SOURCE_BYTES).
        owner, group (str): user and group names or numbers.
        mode (str): octal string such as "0644".
        backup (bool | int): keep the replaced content (default: the configured count).
            A backup is made only when content is replaced or removed, after
            ``verify`` accepted the new content, and before the file is touched: a
            backup that cannot be written (a full disk) fails the resource.
        verify (list): argv run on the new content before it replaces the file;
            ``%{path}`` stands for the temporary file. A non-zero exit refuses it.
        state (str): present (default) or absent.

    With neither content nor source, only existence, mode and owner are managed.
    Writes are atomic: a temporary file in the same folder gets mode and owner,
    is flushed to disk, then renamed over the target.

    A symbolic link at the path is an error, whatever the state: file (and
    template, line, cron) never writes through a link, over one, or removes one
    ("PATH is a symbolic link; manage it with link: or remove it"). Links among
    the folders above the path are followed as usual.

    Example:
        - file: /etc/motd
          content: "Managed by trueup\\n"
          mode: "0644"
    """

    FIELDS = {
        "content": f(str, None, "the exact content"),
        "source": f(str, None, "file under the recipe's files/ folder"),
        "owner": f((str, int), None, "user name or uid"),
        "group": f((str, int), None, "group name or gid"),
        "mode": f((str, int), None, 'octal string such as "0644"'),
        "backup": f((bool, int), True, "keep replaced content (true, false or a count)"),
        "verify": f(list, None, "argv that must accept the new content (%{path})"),
    }
    EXAMPLES = [
        {"file": "{tmp}/motd", "content": "hello\n", "mode": "0640",
         "_expect": {"motd": {"content": "hello\n", "mode": "0640"}}},
        {"file": "{tmp}/empty", "_expect": {"empty": {"content": "", "mode": "0644"}}},
        {"file": "{tmp}/gone", "state": "absent", "_setup": {"gone": "old\n"},
         "_expect": {"gone": None}},
        {"file": "{tmp}/replace", "content": "new\n", "_setup": {"replace": "old\n"},
         "_modes": {"replace": "0640"},
         "_expect": {"replace": {"content": "new\n", "mode": "0640"}}},
        {"file": "{tmp}/checked", "content": "ok\n", "verify": ["grep", "-q", "ok", "%{path}"],
         "_expect": {"checked": "ok\n"}},
        {"file": "{tmp}/private", "mode": "0600", "_setup": {"private": "key\n"},
         "_modes": {"private": "0644"},
         "_expect": {"private": {"content": "key\n", "mode": "0600"}}},
        {"file": "{tmp}/interrupted", "content": "same\n", "mode": "0600",
         "_setup": {"interrupted": "same\n", ".interrupted.trueup-new": "sa"},
         "_modes": {"interrupted": "0644"},
         "_expect": {"interrupted": {"content": "same\n", "mode": "0600"},
                     ".interrupted.trueup-new": None}},
    ]
    SENSITIVE_EXAMPLE = {"file": "{tmp}/secret.conf", "content": "password={canary}\n",
                         "sensitive": True, "_setup": {"secret.conf": "password=old\n"}}
    ACTIONS = ()

    desired: bytes | None = None

    def validate(self) -> None:
        if not os.path.isabs(self.name):
            raise ValueError(f"{self.kind} path must be absolute, not {self.name!r}")
        if self.spec.get("content") is not None and self.spec.get("source") is not None:
            raise ValueError("give content or source, not both")
        self.mode = parse_mode(self.spec["mode"]) if self.spec["mode"] is not None else None

    PREPARE_IS_PURE = True  # the spec, and files/ of the recipe (agent.compile.stored)

    def prepare(self) -> None:
        content = self.spec.get("content")
        if content is not None:
            self.desired = content.encode()
        elif self.spec.get("source") is not None:
            self.desired = self._read_source("files", self.spec["source"])

    def _read_source(self, folder: str, rel: str) -> bytes:
        base = os.path.join(self.ctx.recipe_dir, folder)
        path = os.path.normpath(os.path.join(base, rel))
        if not path.startswith(base + os.sep):
            raise SpecError("source", f"source {rel!r} leaves the recipe's {folder}/ folder")
        try:
            return files.read_bytes(path, files.MAX_SOURCE_BYTES)
        except files.NotRegular as exc:  # a folder, FIFO, device or link loop; or too large
            raise SpecError("source", f"source {path} {exc}") from None
        except FileNotFoundError:
            raise SpecError("source", f"source file not found: {path} (put it in "
                               f"{self.ctx.recipe} recipe's {folder}/ folder)") from None
        except OSError as exc:
            raise SpecError("source", f"cannot read source {path}: {exc.strerror}") from None

    # --- check ------------------------------------------------------------------------

    def check(self) -> list[Change]:
        path = self.name
        st = lstat_file(path)
        if self.state == "absent":
            return removal_changes(path, st)
        if st is not None and not stat.S_ISREG(st.st_mode):
            what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ResourceError(f"{path} is {what}; remove it or manage it with its own type")
        changes = []
        if os.path.lexists(temp_name(path)):  # left by a run that was killed mid-write
            changes.append(Change("leftover", temp_name(path), None))
        if st is None:
            diff = self._diff(b"", self.desired or b"") if self.ctx.diffs else None
            changes.append(Change("state", "absent", "present", diff,
                                  payload=self.desired or b""))
            if self.mode is not None:
                changes.append(Change("mode", None, f"{self.mode:04o}"))
            changes += owner_changes(self.spec, None)
            return changes
        if self.desired is not None and not self._same_content(st):
            current = self._read_current()
            changes.append(Change("content", self._summary(current),
                                  self._summary(self.desired),
                                  self._diff(current, self.desired), payload=self.desired))
        if self.mode is not None and stat.S_IMODE(st.st_mode) != self.mode:
            changes.append(Change("mode", f"{stat.S_IMODE(st.st_mode):04o}", f"{self.mode:04o}"))
        changes += owner_changes(self.spec, st)
        return changes

    def _same_content(self, st: os.stat_result) -> bool:
        if st.st_size != len(self.desired):
            return False
        return self._read_current() == self.desired

    def _read_current(self) -> bytes:
        try:
            return read_regular(self.name)
        except OSError as exc:
            raise ResourceError(f"cannot read {self.name}: {exc.strerror}") from None

    def _summary(self, data: bytes | None) -> str:
        if data is None:
            return ""
        import hashlib

        return f"sha256:{hashlib.sha256(data).hexdigest()[:16]} ({len(data)} bytes)"

    def _diff(self, before: bytes, after: bytes | None) -> str | None:
        if after is None:
            return None
        if len(before) > MAX_DIFF or len(after) > MAX_DIFF:
            return "(content too large to diff)"
        import difflib

        try:
            old, new = before.decode(), after.decode()
        except UnicodeDecodeError:
            return "(binary content differs)"
        lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                     fromfile=f"{self.name} (current)",
                                     tofile=f"{self.name} (declared)")
        text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in lines)
        return text

    # --- apply ------------------------------------------------------------------------

    def apply(self, changes: list[Change]) -> None:
        with writing(self.name, "remove" if self.state == "absent" else "write"):
            apply_file(self, changes, lambda: _planned_content(changes),
                       self._verify if self.spec["verify"] else None)

    def _verify(self, temp: str) -> None:
        argv = [str(a).replace("%{path}", temp) for a in self.spec["verify"]]
        done = self.ctx.system.run(argv, timeout=300)
        if not done.ok:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            detail = (": " + " | ".join(tail)) if tail else ""
            raise ResourceError(f"verify {argv[0]} refused the new content "
                                f"(exit {done.returncode}), {self.name} left unchanged{detail}")


def _planned_content(changes: list[Change]) -> bytes:
    """The bytes check planned to write, carried by its state or content change."""
    for change in changes:
        if change.field in ("state", "content"):
            if not isinstance(change.payload, bytes):
                raise ResourceError(f"change {change.field!r} carries no content to write")
            return change.payload
    raise ResourceError("no state or content change to write")
