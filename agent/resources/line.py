"""line: one line present in (or absent from) a file, or a regex's line replaced."""

from __future__ import annotations

import os
import re
import stat

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import Resource, SpecError, f


class Line(Resource, kind="line"):
    """A line in a file that trueup does not otherwise own.

    With ``match``, the first line matching the regex is replaced by ``line``
    (appended when none matches); every other matching line is removed, so the
    setting appears once. Without ``match``, ``line`` is appended if missing. With
    state absent, lines equal to ``line`` (or matching ``match``) are removed.
    The file is rewritten atomically, keeping its mode and owner; a missing file
    is an error unless ``create: true``.

    Spec:
        line (str): the file's path; the resource's name.
        text (str): the line (without newline).
        match (str): a Python regex selecting the line to replace.
        create (bool): create the file (mode 0644) when it does not exist.
        state (str): present (default) or absent.

    Example:
        - line: /etc/ssh/sshd_config
          text: PasswordAuthentication no
          match: "^#?PasswordAuthentication\\\\b"
    """

    FIELDS = {
        "text": f(str, None, "the line, without newline"),
        "match": f(str, None, "regex of the line to replace"),
        "create": f(bool, False, "create the file if missing"),
    }
    EXAMPLES = [
        {"line": "{tmp}/conf", "text": "b = 2", "match": "^b\\s*=",
         "_setup": {"conf": "a = 1\n# b = 0\nb = 1\nc = 3\nb = 9\n"}},
        {"line": "{tmp}/new", "text": "only line", "create": True},
        {"line": "{tmp}/drop", "text": "gone", "state": "absent",
         "_setup": {"drop": "keep\ngone\nkeep too\n"}},
    ]
    SENSITIVE_EXAMPLE = {"line": "{tmp}/app.ini", "text": "token = {canary}",
                         "match": "^token\\s*=", "sensitive": True,
                         "_setup": {"app.ini": "a = 1\ntoken = old\n"}}

    def validate(self) -> None:
        if not os.path.isabs(self.name):
            raise ValueError(f"line path must be absolute, not {self.name!r}")
        text = self.spec.get("text")
        if self.state == "present" and text is None:
            raise SpecError("text", "line needs text: the line to ensure")
        if text is not None and "\n" in text:
            raise SpecError("text", "text is one line: it may not contain a newline")
        pattern = self.spec.get("match")
        try:
            self.regex = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise SpecError("match", f"match is not a valid regex: {exc}") from None

    def _wanted(self, current: str) -> str:
        text = self.spec.get("text")
        lines = current.splitlines()
        hits = [i for i, line in enumerate(lines)
                if (self.regex.search(line) if self.regex else line == text)]
        if self.state == "absent":
            keep = [line for i, line in enumerate(lines) if i not in set(hits)]
        elif hits:
            first = hits[0]
            keep = [text if i == first else line for i, line in enumerate(lines)
                    if i == first or i not in set(hits)]
        else:
            keep = lines + [text]
        if keep == lines:
            return current
        return "".join(line + "\n" for line in keep)

    def _current(self) -> str | None:
        try:
            with open(self.name, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ResourceError(f"cannot read {self.name}: {exc}") from None

    def check(self) -> list[Change]:
        current = self._current()
        if current is None:
            if self.state == "absent":
                return []
            if not self.spec.get("create"):
                raise ResourceError(f"{self.name} does not exist (set create: true to create it)")
            current = ""
        wanted = self._wanted(current)
        if wanted == current:
            return []
        import difflib

        diff = "".join(difflib.unified_diff(current.splitlines(True), wanted.splitlines(True),
                                            f"{self.name} (current)", f"{self.name} (declared)"))
        return [Change("line", None, "removed" if self.state == "absent" else
                       self.spec.get("text"), diff)]

    def apply(self, changes: list[Change]) -> None:
        current = self._current()
        try:
            st = os.stat(self.name)
            mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        except FileNotFoundError:
            mode, uid, gid = 0o644, -1, -1
        wanted = self._wanted(current or "")
        if current is not None:
            self.ctx.backups.save(self.name, current.encode())
        self.ctx.system.atomic_write(self.name, wanted.encode(), mode, uid, gid)
