"""block: a managed block of lines between two marker lines in a file."""

from __future__ import annotations

import re

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import Resource, SpecError, f
from agent.resources.line import (
    Rewrite,
    apply_rewrites,
    edited_path,
    read_current,
    split_lines,
)
from agent.resources.line import _diff as diff_lines


class Block(Resource, kind="block"):
    """Lines kept between a begin and an end marker in a file trueup does not otherwise own.

    The block is found by its marker lines and replaced whole; every byte outside it
    is kept (line endings, a missing final newline, bytes that are not UTF-8). A
    missing block is inserted after the last line matching ``insert_after`` (a regex,
    or ``EOF``, the default) or before the first line matching ``insert_before`` (a
    regex, or ``BOF``); when no line matches it goes at the end. New lines end like
    the file's first line. State absent removes the block with its markers. The
    file is rewritten atomically, keeping its mode and owner; a missing file is an
    error unless ``create: true``. A symbolic link at the path is refused, as for file.

    The name is the file's path, or a label with the file in ``path:`` (the label is
    then part of the default markers, so one file can hold many blocks).

    Spec:
        block (str): the file's absolute path, or a label when ``path`` is given.
        path (str): the file's absolute path, when the name is a label.
        content (str): the block's lines (a final newline is added if missing).
        marker (str): marker line; ``{mark}`` becomes ``marker_begin`` / ``marker_end``
            (default "# {mark} TRUEUP MANAGED BLOCK", plus the label if any).
        marker_begin, marker_end (str): default BEGIN and END.
        insert_after (str): regex or EOF (default): where a new block goes.
        insert_before (str): regex or BOF: where a new block goes.
        create (bool): create the file (mode 0644) when it does not exist.
        state (str): present (default) or absent.

    Example:
        - block: hosts-cluster
          path: /etc/hosts
          content: |
            10.0.0.11 db1
            10.0.0.12 db2
          insert_after: "^127\\\\.0\\\\.0\\\\.1"
    """

    FIELDS = {
        "path": f(str, None, "the file, when the name is a label"),
        "content": f(str, "", "the block's lines"),
        "marker": f(str, None, 'marker line with {mark} (default "# {mark} TRUEUP '
                    'MANAGED BLOCK [label]")'),
        "marker_begin": f(str, "BEGIN", "{mark} of the first marker"),
        "marker_end": f(str, "END", "{mark} of the last marker"),
        "insert_after": f(str, None, "regex or EOF: where a new block goes (default EOF)"),
        "insert_before": f(str, None, "regex or BOF: where a new block goes"),
        "create": f(bool, False, "create the file if missing"),
    }
    EXAMPLES = [
        {"block": "{tmp}/hosts", "content": "10.0.0.1 db\n", "insert_after": "^127\\.",
         "_setup": {"hosts": b"127.0.0.1 localhost\r\n::1 ip6\r\n\xff tail"},
         "_expect": {"hosts": b"127.0.0.1 localhost\r\n# BEGIN TRUEUP MANAGED BLOCK\r\n"
                              b"10.0.0.1 db\r\n# END TRUEUP MANAGED BLOCK\r\n::1 ip6\r\n"
                              b"\xff tail"}},
        {"block": "app", "path": "{tmp}/conf", "content": "a = 2\nb = 3",
         "_setup": {"conf": "x\n# BEGIN TRUEUP MANAGED BLOCK app\na = 1\n"
                            "# END TRUEUP MANAGED BLOCK app\ny"},
         "_expect": {"conf": "x\n# BEGIN TRUEUP MANAGED BLOCK app\na = 2\nb = 3\n"
                             "# END TRUEUP MANAGED BLOCK app\ny"}},
        {"block": "{tmp}/gone", "state": "absent",
         "_setup": {"gone": "keep\n# BEGIN TRUEUP MANAGED BLOCK\nold\n"
                            "# END TRUEUP MANAGED BLOCK\nkeep too\n"},
         "_expect": {"gone": "keep\nkeep too\n"}},
        {"block": "{tmp}/new.conf", "content": "on\n", "create": True,
         "_expect": {"new.conf": {"content": "# BEGIN TRUEUP MANAGED BLOCK\non\n"
                                             "# END TRUEUP MANAGED BLOCK\n", "mode": "0644"}}},
    ]
    SENSITIVE_EXAMPLE = {"block": "{tmp}/app.ini", "content": "token = {canary}\n",
                         "sensitive": True, "_setup": {"app.ini": "a = 1\n"}}

    def validate(self) -> None:
        self.path: str = edited_path("block", self.name, self.spec["path"])
        label = "" if self.spec["path"] is None else " " + self.name
        marker = self.spec["marker"] or "# {mark} TRUEUP MANAGED BLOCK" + label
        if "{mark}" not in marker or "\n" in marker or "\r" in marker:
            raise SpecError("marker", "marker is one line holding {mark}")
        self.begin = marker.replace("{mark}", self.spec["marker_begin"]).encode()
        self.end = marker.replace("{mark}", self.spec["marker_end"]).encode()
        if self.begin == self.end:
            raise SpecError("marker_end", "marker_begin and marker_end must differ")
        if self.spec["insert_after"] and self.spec["insert_before"]:
            raise SpecError("insert_before", "give insert_after or insert_before, not both")
        self.where = None
        for key in ("insert_after", "insert_before"):
            value = self.spec[key]
            if value and value not in ("EOF", "BOF"):
                try:
                    self.where = (key, re.compile(value))
                except re.error as exc:
                    raise SpecError(key, f"{key} is not a valid regex: {exc}") from None
            elif value:
                self.where = (key, value)
        content = self.spec["content"]
        self.body = [line.encode() for line in content.splitlines()]

    def _edit(self, data: bytes) -> tuple[bytes, str]:
        lines = split_lines(data)
        eol = b"\r\n" if lines and lines[0].endswith(b"\r\n") else b"\n"
        bodies = [line.rstrip(b"\n").removesuffix(b"\r") for line in lines]
        start = next((i for i, b in enumerate(bodies) if b == self.begin), None)
        stop = None if start is None else next(
            (i for i in range(start + 1, len(bodies)) if bodies[i] == self.end), None)
        if start is not None and stop is None:
            raise ResourceError(f"{self.path}: the block's begin marker (line {start + 1}) has "
                                "no end marker; fix the file by hand")
        block = [] if self.state == "absent" else [
            line + eol for line in (self.begin, *self.body, self.end)]
        if start is not None:
            ending = lines[stop][len(bodies[stop]):]  # the end marker keeps its own ending
            if block and not ending:
                block[-1] = block[-1][:-len(eol)]
            new = lines[:start] + block + lines[stop + 1:]
            note = "block removed" if not block else "block replaced"
        elif not block:
            return data, ""
        else:
            at = self._insert_at(bodies)
            if at == len(lines) and lines and not lines[-1].endswith(b"\n"):
                lines[-1] += eol
            new = lines[:at] + block + lines[at:]
            note = f"block inserted at line {at + 1}"
        return b"".join(new), note

    def _insert_at(self, bodies: list[bytes]) -> int:
        if self.where is None:
            return len(bodies)
        key, how = self.where
        if how == "BOF":
            return 0
        if how == "EOF":
            return len(bodies)
        hits = [i for i, b in enumerate(bodies) if how.search(b.decode("utf-8", "replace"))]
        if not hits:
            return len(bodies)
        return hits[-1] + 1 if key == "insert_after" else hits[0]

    def check(self) -> list[Change]:
        current = read_current(self.path)
        if current is None:
            if self.state == "absent":
                return []
            if not self.spec["create"]:
                raise ResourceError(f"{self.path} does not exist (set create: true to create it)")
        new, note = self._edit(current or b"")
        if new == current or (current is None and not new):
            return []
        return [Change("block", None, note, diff_lines(current or b"", new, self.path),
                       payload=Rewrite(current, new))]

    def apply(self, changes: list[Change]) -> None:
        apply_rewrites(self.ctx, self.path, changes)
