"""Run reports: the console lines, the JSON report and its bounded history."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter

from agent.errors import TrueupError
from agent.host.system import write_file_atomic
from agent.jsontext import dumps as json_dumps
from agent.jsontext import read_object
from agent.model import (
    CHANGED,
    EXCLUDED,
    FAILED,
    GUARDED,
    IGNORED,
    SKIPPED,
    UNCHANGED,
    Result,
)
from agent.redact import HIDDEN, REDACTOR

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, TextIO

STATUSES = (CHANGED, FAILED, IGNORED, SKIPPED, GUARDED, UNCHANGED, EXCLUDED)
#: Statuses a report stored by an older trueup may lack in its totals.
NEWER_STATUSES = (EXCLUDED,)
COLOURS = {CHANGED: "33", FAILED: "31", IGNORED: "35", SKIPPED: "36", GUARDED: "2",
           EXCLUDED: "2"}


def totals(results: list[Result]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    out = {status: counts.get(status, 0) for status in STATUSES}
    out["total"] = len(results)
    return out


class Console:
    """One line per changed, failed or skipped resource; a summary line at the end.

    On a terminal, a resource that takes more than a second also gets a live line
    (:class:`LiveLine`) while it works; elsewhere nothing but the lines above is written.
    When the reader goes away (``trueup run | head -1``) the console falls silent
    (:func:`silence`) and the run goes on: a closed pipe never stops a converge.
    With ``carry_on=False`` BrokenPipeError is raised instead, for a command whose
    output is all it does.
    """

    def __init__(self, stream: TextIO = sys.stdout, colour: str = "auto",
                 show_diff: bool = False, noop: bool = False, carry_on: bool = True) -> None:
        self.stream = stream
        self.carry_on = carry_on
        tty = stream.isatty()
        self.colour = colour == "always" or (colour == "auto" and tty
                                              and os.environ.get("NO_COLOR") is None)
        self.show_diff = show_diff
        self.noop = noop
        self.live = LiveLine(stream) if tty else None

    def paint(self, text: str, code: str | None) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour and code else text

    def write(self, text: str) -> None:
        text = REDACTOR.scrub(text) if REDACTOR else text
        try:
            if self.live is None:
                self.stream.write(text)
                return
            with self.live.lock:
                self.live.erase()
                self.stream.write(text)
        except BrokenPipeError:
            if not self.carry_on:
                raise
            silence(self.stream)

    def progress(self, ident: str, step: str) -> None:
        """The runner started ``step`` ("applying" …) of ``ident``: shown live after a second."""
        if self.live is not None:
            self.live.step(ident, step)

    def close(self) -> None:
        """Stop and erase the live line, if there is one."""
        if self.live is not None:
            self.live.close()

    def result(self, result: Result) -> None:
        if self.live is not None:
            self.live.finished(result.ident)
        if result.status in (UNCHANGED, GUARDED) or (result.status == EXCLUDED
                                                     and not self.noop):
            return
        label = "would change" if self.noop and result.status == CHANGED else result.status
        if result.status == EXCLUDED:
            label = "skipped"
        line = f"{self.paint(label.ljust(12), COLOURS.get(result.status))} {result.ident}"
        if result.reason:
            line += f"  by condition ({result.reason})"
        if result.changes:
            line += "  " + ", ".join(_change_text(c) for c in result.changes)
        if result.error:
            line += f"  {result.error}"
        self.write(line + "\n")
        if self.show_diff:
            for change in result.changes:
                if change.diff:
                    self.write(_indent(change.diff))

    def summary(self, report: dict[str, Any], label: str | None = None) -> None:
        """The totals line; ``label`` replaces "trueup <mode>" at its start."""
        self.close()
        t = report["totals"]
        verb = "would change" if self.noop else "changed"
        parts = [f"{t[CHANGED]} {verb}", f"{t[FAILED]} failed"]
        for status in (SKIPPED, IGNORED, GUARDED, EXCLUDED):
            if t.get(status):
                word = "skipped by condition" if status == EXCLUDED else status
                parts.append(f"{t[status]} {word}")
        text = (f"{label or 'trueup ' + report['mode']}: {', '.join(parts)}, "
                f"{t[UNCHANGED]} unchanged ({t['total']} resources) in "
                f"{report['duration_s']:.2f}s")
        code = COLOURS[FAILED] if t[FAILED] else (COLOURS[CHANGED] if t[CHANGED] else "32")
        self.write(self.paint(text, code) + "\n")

    def pruned(self, pruned: dict[str, Any]) -> None:
        """One line when old cache entries were removed (see agent.sources.cache.prune)."""
        if not pruned.get("count"):
            return
        what = ", ".join(f"{len(pruned[k])} {label}{'s' if len(pruned[k]) > 1 else ''}"
                         for k, label in PRUNED_LABELS.items() if pruned.get(k))
        count = pruned["count"]
        self.write(f"trueup: pruned {count} old cache {'entry' if count == 1 else 'entries'} "
                   f"({_size(pruned['bytes'])}): {what}\n")


PRUNED_LABELS = {"bundles": "bundle", "recipes": "recipe set", "parsed": "parsed-YAML cache"}


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def silence(stream: TextIO) -> None:
    """Send what is still to be written to ``stream`` to /dev/null: its reader is gone.

    The buffered text is flushed there at exit, instead of failing again with
    EPIPE; a stream without a file descriptor is left as it is.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class LiveLine:
    """The terminal line that shows what a slow resource is doing, and for how long.

    The runner reports each step (:meth:`step`); a small thread, started with the first
    step, redraws "applying file:/x (3s)" every fraction of a second once the resource
    has taken more than ``DELAY`` seconds, and the line is erased before anything else
    is written. Only a Console on a terminal makes one.
    """

    DELAY = 1.0
    PERIOD = 0.25
    ERASE = "\r\033[K"

    def __init__(self, stream: TextIO) -> None:
        import threading  # only a terminal run pays for it

        self.stream = stream
        self.lock = threading.Lock()
        self.shown = False
        self._drawn = ""
        self._ident = ""
        self._step = ""
        self._since = 0.0
        self._stop = threading.Event()
        self._thread: Any = None  # threading.Thread, started with the first step

    def step(self, ident: str, step: str) -> None:
        with self.lock:
            if ident != self._ident:
                self._ident, self._since = ident, time.monotonic()
            self._step = step
        if self._thread is None:
            import threading

            self._thread = threading.Thread(target=self._run, name="trueup-live", daemon=True)
            self._thread.start()

    def finished(self, ident: str) -> None:
        """``ident`` is done: its line goes away."""
        with self.lock:
            if ident == self._ident:
                self._ident = ""
            self.erase()

    def erase(self) -> None:
        """Erase the line if it is on screen (call with ``lock`` held)."""
        if self.shown:
            self.stream.write(self.ERASE)
            self.stream.flush()
            self.shown = False

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self.lock:
            self._ident = ""
            self.erase()

    def _run(self) -> None:
        while not self._stop.wait(self.PERIOD):
            with self.lock:
                self._draw()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self._since
        if not self._ident or elapsed < self.DELAY:
            return
        import shutil

        width = max(20, shutil.get_terminal_size().columns - 1)  # a wrapped line stays put
        text = f"{self._step} {self._ident} ({elapsed:.0f}s)"
        text = (REDACTOR.scrub(text) if REDACTOR else text)[:width]
        if self.shown and text == self._drawn:
            return
        self.stream.write(self.ERASE + text)
        self.stream.flush()
        self.shown, self._drawn = True, text


def _change_text(change: Any) -> str:
    if HIDDEN in (change.before, change.after):
        return ("content (sensitive, diff hidden)" if change.field == "content"
                else f"{change.field} (sensitive)")
    if change.field in ("content", "state", "run") or change.before is None:
        if change.field == "state":
            return "created" if change.after in ("present", "running") else f"-> {change.after}"
        if change.field == "content":
            return "content"
        return f"{change.field} {change.after}" if change.after is not None else change.field
    return f"{change.field} {change.before} -> {change.after}"


def _indent(diff: str) -> str:
    return "".join("    " + line for line in diff.splitlines(keepends=True))


def build(meta: dict[str, Any], results: list[Result], started: float) -> dict[str, Any]:
    """The JSON report of one run."""
    finished = time.time()
    report = dict(meta)
    report["started"] = _iso(started)
    report["finished"] = _iso(finished)
    report["duration_s"] = round(finished - started, 4)
    report["totals"] = totals(results)
    report["resources"] = [r.as_dict() for r in results]
    return report


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def dumps(report: dict[str, Any], indent: int | None = 2) -> str:
    text = json_dumps(report, indent=indent)
    return REDACTOR.scrub(text) if REDACTOR else text


def store(state_dir: str, report: dict[str, Any], keep: int) -> str:
    """Write last_run.json and a copy in history/, keeping the newest ``keep``.

    Each file is whole or untouched (:func:`_write`). last_run.json comes first, so a
    broken history/ still leaves ``trueup report`` the newest run. Raises OSError
    (disk full, a file where a folder belongs, no permission): the caller decides
    what a report that could not be stored means.
    """
    folder = os.path.join(state_dir, "reports")
    history = os.path.join(folder, "history")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    data = dumps(report, indent=None).encode() + b"\n"  # compact: the C encoder
    last = os.path.join(folder, "last_run.json")
    _write(last, data)
    os.makedirs(history, mode=0o700, exist_ok=True)
    _write(os.path.join(history, f"{report['run_id']}.json"), data)
    entries = sorted(os.listdir(history))
    for stale in entries[:-keep] if keep > 0 else entries:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(history, stale))
    return last


def _write(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data``, whole and atomic but not fsync'ed (a report is
    rewritten by every run; host.system.write_file_atomic); an error names ``path`` (a
    full disk's ENOSPC names no file)."""
    try:
        write_file_atomic(path, data, durable=False)
    except OSError as exc:
        if exc.filename is None:
            exc.filename = path
        raise


def load_last(state_dir: str) -> dict[str, Any] | None:
    """The last stored report; None when there is none.

    Raises TrueupError, naming the file, when it cannot be read or is not a report.
    """
    path = os.path.join(state_dir, "reports", "last_run.json")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TrueupError(f"cannot read the last report ({exc.strerror}); {REWRITE}",
                          path) from None
    import json

    try:
        report = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TrueupError(f"not a report: {_first_line(exc)}; {REWRITE}", path) from None
    problem = _shape_problem(report)
    if problem:
        raise TrueupError(f"not a report: {problem}; {REWRITE}", path)
    return report


REWRITE = "the next `trueup run` writes a new one"


def stored(state_dir: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, JSON object) of last_run.json, then of each report in history/ by name
    (oldest first); a file that cannot be read or holds no JSON object is passed over.
    The objects are not checked further to be reports."""
    folder = os.path.join(state_dir, "reports")
    paths = [os.path.join(folder, "last_run.json")]
    history = os.path.join(folder, "history")
    if os.path.isdir(history):
        paths += [os.path.join(history, n) for n in sorted(os.listdir(history))]
    for path in paths:
        report = read_object(path)
        if report is not None:
            yield path, report


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _shape_problem(report: Any) -> str:
    """What keeps ``report`` from being shown as a run report; "" when nothing does."""
    if not isinstance(report, dict):
        return f"JSON {type(report).__name__} instead of an object"
    resources = report.get("resources", [])
    if not isinstance(resources, list):
        return "'resources' is not a list"
    for entry in resources:
        if not _is_result(entry):
            return f"a resource entry is not a result: {_clip(entry)}"
    totals = report.get("totals")
    if totals is not None:
        wanted = (*(s for s in STATUSES if s not in NEWER_STATUSES), "total")
        if not (isinstance(totals, dict) and all(_is_number(totals.get(k)) for k in wanted)
                and _is_number(report.get("duration_s"))):
            return "'totals' or 'duration_s' is not a count"
    return ""


def _is_result(entry: Any) -> bool:
    """Whether ``entry`` has the shape of ``Result.as_dict()`` where Result.from_dict reads."""
    if not (isinstance(entry, dict) and isinstance(entry.get("resource"), str)):
        return False
    changes = entry.get("changes", [])
    return (isinstance(entry.get("status", ""), str) and isinstance(changes, list)
            and all(isinstance(c, dict) and "field" in c for c in changes)
            and isinstance(entry.get("notified", []), list)
            and _is_number(entry.get("duration_ms", 0)))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clip(value: Any, width: int = 40) -> str:
    text = json_dumps(value)
    return text if len(text) <= width else text[:width - 3] + "..."
