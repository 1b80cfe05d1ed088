"""line: one line present in (or absent from) a file, or a regex's line replaced."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable

from agent.errors import ResourceError
from agent.model import Change, FrozenRecord
from agent.resources import Context, Resource, SpecError, f, read_regular, save_backup, writing


class Line(Resource, kind="line"):
    """A line in a file that trueup does not otherwise own.

    With ``match``, the first line matching the regex (or equal to ``text``) is
    replaced by ``text`` (appended when none matches); every other such line is
    removed, so the setting appears once. Without ``match``, ``text`` is appended
    if missing. With state absent, lines equal to ``text`` or matching ``match``
    are removed.

    Every other byte of the file is kept: each line keeps its own ending (CRLF
    stays CRLF), a missing final newline stays missing, and form feeds or bytes
    that are not UTF-8 are left as they are. Only b"\\n" ends a line; in a CRLF
    file the "\\r" before it is not part of the line that ``text`` and ``match``
    see. ``match`` reads the line as UTF-8 (undecodable bytes never match a
    literal character). An appended line ends like the file's first line, and an
    unterminated last line gets that ending first. The file is rewritten
    atomically, keeping its mode and owner; a missing file is an error unless
    ``create: true``. As for file, a symbolic link at the path is an error,
    whatever the state: a line is never edited through a link, nor the link
    replaced by a file (manage it with link:, or name the file it points at).

    The name is either the file's path (one managed line per file), or a label
    with the file in ``path:``, so one file can hold many managed lines. The
    identity is ``line:<name>``.

    Spec:
        line (str): the file's absolute path, or a label when ``path`` is given.
        path (str): the file's absolute path, when the name is a label.
        text (str): the line (without newline).
        match (str): a Python regex selecting the line to replace.
        create (bool): create the file (mode 0644) when it does not exist.
        state (str): present (default) or absent.

    Example:
        - line: /etc/ssh/sshd_config
          text: PasswordAuthentication no
          match: "^#?PasswordAuthentication\\\\b"

        - line: sshd-root-login          # identity line:sshd-root-login
          path: /etc/ssh/sshd_config
          text: PermitRootLogin no
          match: "^#?PermitRootLogin\\\\b"
          notify: service:ssh reload

        - line: no-telnet
          path: /etc/inetd.conf
          match: "^telnet\\\\b"
          state: absent
    """

    FIELDS = {
        "path": f(str, None, "the file, when the name is a label"),
        "text": f(str, None, "the line, without newline"),
        "match": f(str, None, "regex of the line to replace"),
        "create": f(bool, False, "create the file if missing"),
    }
    EXAMPLES = [
        {"line": "{tmp}/conf", "text": "b = 2", "match": "^b\\s*=",
         "_setup": {"conf": "a = 1\n# b = 0\nb = 1\nc = 3\nb = 9\n"},
         "_expect": {"conf": "a = 1\n# b = 0\nb = 2\nc = 3\n"}},
        {"line": "{tmp}/new", "text": "only line", "create": True,
         "_expect": {"new": {"content": "only line\n", "mode": "0644"}}},
        {"line": "{tmp}/drop", "text": "gone", "state": "absent",
         "_setup": {"drop": "keep\ngone\nkeep too\n"},
         "_expect": {"drop": "keep\nkeep too\n"}},
        {"line": "crlf-setting", "path": "{tmp}/win.ini", "text": "b=2", "match": "^b=",
         "_setup": {"win.ini": b"a=1\x0cx\r\nb=1\r\nc=\xff3"},
         "_expect": {"win.ini": b"a=1\x0cx\r\nb=2\r\nc=\xff3"}},
        {"line": "appended-crlf", "path": "{tmp}/dos.txt", "text": "new",
         "_setup": {"dos.txt": b"one\r\ntwo\x0bthree"},
         "_expect": {"dos.txt": b"one\r\ntwo\x0bthree\r\nnew\r\n"}},
    ]
    SENSITIVE_EXAMPLE = {"line": "{tmp}/app.ini", "text": "token = {canary}",
                         "match": "^token\\s*=", "sensitive": True,
                         "_setup": {"app.ini": "a = 1\ntoken = old\n"}}

    def validate(self) -> None:
        self.path: str = edited_path("line", self.name, self.spec.get("path"))
        text = self.spec.get("text")
        if self.state == "present" and text is None:
            raise SpecError("text", "line needs text: the line to ensure")
        if text is not None and ("\n" in text or "\r" in text):
            raise SpecError("text", "text is one line: it may not contain a newline or \\r")
        self.text: bytes | None = None if text is None else text.encode("utf-8",
                                                                        "surrogateescape")
        pattern = self.spec.get("match")
        if self.state == "absent" and text is None and not pattern:
            raise SpecError("text", "line with state absent needs text or match")
        try:
            self.regex = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise SpecError("match", f"match is not a valid regex: {exc}") from None

    def _selects(self, body: bytes) -> bool:
        if self.text is not None and body == self.text:
            return True
        return bool(self.regex and self.regex.search(body.decode("utf-8", "surrogateescape")))

    def check(self) -> list[Change]:
        current = read_current(self.path)
        if current is None:
            if self.state == "absent":
                return []
            if not self.spec.get("create"):
                raise ResourceError(f"{self.path} does not exist (set create: true to create it)")
        new, notes = edit(current or b"", self.text, self._selects, self.state == "absent")
        if new == current:
            return []
        summary = ", ".join(notes) if current is not None else f"{notes[0]} to a new file"
        diff = _diff(current or b"", new, self.path)
        return [Change("line", None, summary, diff, payload=Rewrite(current, new))]

    def apply(self, changes: list[Change]) -> None:
        apply_rewrites(self.ctx, self.path, changes)


class Rewrite(FrozenRecord):
    """A line change's payload: the file as check read it (None: missing) and as apply
    writes it."""

    __slots__ = ("before", "after")


def edited_path(kind: str, name: str, path: str | None) -> str:
    """The file a line or block edits: ``path:``, else the resource's name; absolute."""
    if path is None:
        if not os.path.isabs(name):
            raise ValueError(f"{kind} path must be absolute, not {name!r} (or name the "
                             f"{kind} with a label and give the file in path:)")
        return name
    if not os.path.isabs(path):
        raise SpecError("path", f"{kind} path must be absolute, not {path!r}")
    return path


def read_current(path: str) -> bytes | None:
    """The bytes of the file ``path`` that line and block edit (None: missing)."""
    try:
        return read_regular(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ResourceError(f"cannot read {path}: {exc.strerror}") from None


def apply_rewrites(ctx: Context, path: str, changes: list[Change]) -> None:
    """Write each :class:`Rewrite` of ``changes`` to ``path`` (line's and block's apply).

    The file must still be as check read it; it keeps its mode and owner (a new one
    is 0644), the old content is backed up, and the new goes in atomically.
    """
    for change in changes:
        rewrite = change.payload
        if not isinstance(rewrite, Rewrite):
            raise ResourceError(f"change {change.field!r} carries no new content")
        current = read_current(path)
        if current != rewrite.before:
            raise ResourceError(f"{path} changed since it was checked; not writing it")
        try:
            st = os.lstat(path)
            mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        except FileNotFoundError:
            mode, uid, gid = 0o644, -1, -1
        if current is not None:
            save_backup(ctx, path, current)
        with writing(path):
            ctx.system.atomic_write(path, rewrite.after, mode, uid, gid,
                                    replacing=current is not None)


def split_lines(data: bytes) -> list[bytes]:
    """``data`` cut after each b"\\n" and nowhere else; each line keeps its own ending."""
    pieces = data.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def edit(data: bytes, text: bytes | None, selects: Callable[[bytes], bool],
         absent: bool) -> tuple[bytes, list[str]]:
    """The file ``data`` with ``text`` ensured (or the selected lines removed), and what
    changed ("line 3 replaced", "appended", "2 lines removed (4, 6)")."""
    lines = split_lines(data)
    eol = b"\r\n" if lines and lines[0].endswith(b"\r\n") else b"\n"
    cut = [_cut(line, eol) for line in lines]
    hits = [i for i, (body, _) in enumerate(cut) if selects(body)]
    notes: list[str] = []
    if absent:
        drop = hits
    elif hits:
        first, drop = hits[0], hits[1:]
        body, ending = cut[first]
        if body != text:
            lines[first] = (text or b"") + ending
            notes.append(f"line {first + 1} replaced")
    else:
        drop = []
        if lines and not lines[-1].endswith(b"\n"):
            lines[-1] += eol
        lines.append((text or b"") + eol)
        notes.append("appended")
    if drop:
        numbers = ", ".join(str(i + 1) for i in drop)
        notes.append(f"line {numbers} removed" if len(drop) == 1
                     else f"{len(drop)} lines removed ({numbers})")
    dropped = set(drop)
    return b"".join(line for i, line in enumerate(lines) if i not in dropped), notes


def _cut(line: bytes, eol: bytes) -> tuple[bytes, bytes]:
    """A line → (what text and match see, its ending); a CRLF file's "\\r\\n" is one ending."""
    if eol == b"\r\n" and line.endswith(b"\r\n"):
        return line[:-2], b"\r\n"
    if line.endswith(b"\n"):
        return line[:-1], b"\n"
    return line, b""


def _diff(before: bytes, after: bytes, path: str) -> str:
    import difflib

    old = [line.decode("utf-8", "replace") for line in split_lines(before)]
    new = [line.decode("utf-8", "replace") for line in split_lines(after)]
    lines = difflib.unified_diff(old, new, f"{path} (current)", f"{path} (declared)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)
