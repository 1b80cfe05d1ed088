"""YAML (and JSON) files read into plain values that remember their line numbers.

Parsing is bounded (see ``parse``): at most MAX_ALIAS_VALUES values produced through
aliases and merge keys, at most MAX_DEPTH levels of nesting.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from agent.errors import TrueupError
from agent.host import files

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

MAX_ALIAS_VALUES = 10_000  # values that aliases and merge keys may produce in one file
MAX_DEPTH = 100            # levels of mappings and lists, one inside the other
# Part of each parse-cache key: a new value makes entries parsed by an older trueup (under
# other rules, e.g. before the limits above) misses.
_CACHE_FORMAT = 2


class LimitError(TrueupError):
    """A YAML document is refused for its shape: too many aliases, or nested too deep."""


class LineDict(dict):
    """A mapping from a YAML file; ``line`` is its own line, ``lines[key]`` each key's."""

    __slots__ = ("line", "lines")


class LineList(list):
    """A sequence from a YAML file; ``line`` is its line, ``lines[i]`` each item's."""

    __slots__ = ("line", "lines")


def read_text(path: str) -> str:
    """The text of ``path``, or a TrueupError that says why it cannot be read.

    Only a regular file of at most host.files.MAX_TEXT_BYTES (1 MiB) is read.
    """
    try:
        return files.read_text(path, files.MAX_TEXT_BYTES)
    except files.NotRegular as exc:  # a folder, FIFO, device or link loop; or too large
        raise TrueupError(str(exc), path) from None
    except FileNotFoundError:
        raise TrueupError("file not found", path) from None
    except PermissionError:
        raise TrueupError("cannot read file: permission denied (run as a user who can "
                          "read it, or fix its mode)", path) from None
    except UnicodeDecodeError as exc:
        raise TrueupError(f"file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                          path) from None
    except OSError as exc:
        raise TrueupError(f"cannot read file: {exc.strerror}", path) from None


def load(path: str, cache_dir: str | None = None,
         storable: Callable[[Any], bool] | None = None) -> Any:
    """Parse the YAML (or JSON, a subset) file at ``path`` into LineDict/LineList/scalars.

    With ``cache_dir``, the parsed value is kept there and reused while the file's
    inode, size, mtime and ctime stay the same (an edit always changes the ctime).
    A value for which ``storable`` says False is never written there (and an older
    entry for the file is removed): the cache must not become a copy of what a recipe
    marks as sensitive.
    """
    if cache_dir is None:
        return parse(path, read_text(path))
    import pickle

    try:
        st = os.stat(path)
    except OSError:
        return parse(path, read_text(path))
    key = (_CACHE_FORMAT, path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cached = os.path.join(cache_dir, files.sha256(os.fsencode(path)).hexdigest() + ".pickle")
    try:
        with open(cached, "rb") as fh:
            # the cache lives in trueup's private state dir (mode 0700), never in a bundle
            stored_key, value = pickle.load(fh)  # noqa: S301
        if stored_key == key:
            return value
    except Exception:  # noqa: S110 - a missing or damaged cache entry is just a miss
        pass
    value = parse(path, read_text(path))
    if storable is not None and not storable(value):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(cached)
        return value
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        tmp = f"{cached}.{os.getpid()}"
        with open(tmp, "wb") as fh:
            pickle.dump((key, value), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cached)
    except OSError:
        pass
    return value


def parse(path: str, text: str) -> Any:
    """Parse YAML ``text`` read from ``path`` (named in errors).

    Bounded: aliases (and merge keys) may produce at most MAX_ALIAS_VALUES values in all,
    and mappings and lists may nest at most MAX_DEPTH deep, so a small file cannot grow
    into an unbounded value ("billion laughs") or exhaust the stack (LimitError).
    """
    import yaml

    cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: libyaml cannot take them
        raise TrueupError(f"not UTF-8 text (at character {exc.start + 1})", path,
                          text[:exc.start].count("\n") + 1) from None
    loader = None
    try:
        loader = cls(text)  # the pure-Python reader checks the characters here
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:  # a control character, or not Unicode
        raise TrueupError(f"YAML syntax error: {_reader_problem(exc)}", path,
                          _reader_line(exc, text, cls)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{exc.context}, {problem}"
        raise TrueupError(f"YAML syntax error: {problem}", path,
                          mark.line + 1 if mark else None,
                          mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise TrueupError(f"YAML syntax error: {exc}", path) from None
    except RecursionError:  # the pure-Python composer recurses once per level
        raise LimitError(f"nested too deep (more than {MAX_DEPTH} levels of mappings and "
                         "lists)", path) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        return None
    return _Converter(loader, path).value(node, node.start_mark.line + 1)


def _reader_problem(exc: Any) -> str:
    """``unacceptable character #x0007: control characters are not allowed``."""
    char = exc.character
    if isinstance(char, (bytes, str)):  # not decodable (we pass text: should not happen)
        char = ord(char[:1] or "\0")
    return f"unacceptable character #x{char:04x}: {exc.reason}"


def _reader_line(exc: Any, text: str, cls: type) -> int:
    """The line of a ReaderError's position: libyaml counts bytes, PyYAML characters."""
    if cls.__name__ == "CSafeLoader":
        return text.encode("utf-8", "surrogatepass")[:exc.position].count(b"\n") + 1
    return text[:exc.position].count("\n") + 1


_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"


class _Converter:
    """YAML nodes → LineDict/LineList/scalars, counting what aliases expand to."""

    __slots__ = ("loader", "path", "seen", "holding", "depth", "aliased", "alias_line")

    def __init__(self, loader: Any, path: str) -> None:
        self.loader = loader
        self.path = path
        self.seen: set[int] = set()     # every node converted once: seeing one again is an alias
        self.holding: set[int] = set()  # the mappings and lists being converted (a path)
        self.depth = 0
        self.aliased = 0                # values produced through aliases so far
        self.alias_line: int | None = None  # where the outermost alias being expanded is used

    def value(self, node: Any, line: int) -> Any:
        """The value of ``node``, used at ``line`` (where an alias to it stands)."""
        ident = id(node)
        outer = self.alias_line
        if ident in self.seen:
            if outer is None:
                self.alias_line = line
        else:
            self.seen.add(ident)
        if self.alias_line is not None:
            self.aliased += 1
            if self.aliased > MAX_ALIAS_VALUES:
                raise LimitError(f"too many aliases: they expand to more than "
                                 f"{MAX_ALIAS_VALUES} values", self.path, self.alias_line)
        if node.id == "scalar":
            result = self._scalar(node)
        else:
            if ident in self.holding:
                raise LimitError("nested too deep: a value holds an alias of itself",
                                 self.path, line)
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise LimitError(f"nested too deep (more than {MAX_DEPTH} levels of mappings "
                                 "and lists)", self.path, node.start_mark.line + 1)
            self.holding.add(ident)
            result = self._mapping(node) if node.id == "mapping" else self._sequence(node)
            self.holding.discard(ident)
            self.depth -= 1
        self.alias_line = outer
        return result

    def _mapping(self, node: Any) -> LineDict:
        out = LineDict()
        out.line = node.start_mark.line + 1
        out.lines = {}
        merged: list[LineDict] = []
        merge_line = None
        for knode, vnode in node.value:
            line = knode.start_mark.line + 1
            if knode.tag == _MERGE:
                if merge_line is not None:
                    raise TrueupError(f"duplicate key '<<' (first at line {merge_line})",
                                      self.path, line)
                merge_line = line
                merged = self._merge_sources(vnode, line)
                continue
            key = "=" if knode.tag == _VALUE else self.value(knode, line)
            if isinstance(key, (dict, list)):
                raise TrueupError("a mapping key must be a plain value", self.path, line)
            if key in out:
                raise TrueupError(f"duplicate key {key!r} (first at line {out.lines[key]})",
                                  self.path, line)
            out[key] = self.value(vnode, line)
            out.lines[key] = line
        for source in merged:  # the mapping's own keys win, then the first merged mapping
            for key, value in source.items():
                if key not in out:
                    out[key] = value
                    out.lines[key] = source.lines[key]
        return out

    def _merge_sources(self, node: Any, line: int) -> list[LineDict]:
        """The mappings a merge key ``<<: *a`` or ``<<: [*a, *b]`` brings in."""
        value = self.value(node, line)
        if isinstance(value, LineDict):
            return [value]
        if isinstance(value, LineList) and all(isinstance(v, LineDict) for v in value):
            return list(value)
        what = "a list holding other values" if isinstance(value, list) else (
            f"{type(value).__name__} {value!r}")
        raise TrueupError(f"merge key '<<' takes a mapping or a list of mappings "
                          f"(e.g. <<: *defaults), not {what}", self.path, line)

    def _sequence(self, node: Any) -> LineList:
        seq = LineList()
        seq.line = node.start_mark.line + 1
        seq.lines = []
        seen = self.seen
        for item in node.value:
            line = item.start_mark.line + 1
            seq.append(self.value(item, seq.line if id(item) in seen else line))
            seq.lines.append(line)
        return seq

    def _scalar(self, node: Any) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as exc:  # yaml.constructor.ConstructorError, ValueError of int() …
            # a ConstructorError's str() adds a second line: where, in "<unicode string>"
            problem = getattr(exc, "problem", None) or str(exc)
            raise TrueupError(f"invalid value: {problem}", self.path,
                              node.start_mark.line + 1) from None
