"""YAML (and JSON) files read into plain values that remember their line numbers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from agent.errors import TrueupError


class LineDict(dict):
    """A mapping from a YAML file; ``line`` is its own line, ``lines[key]`` each key's."""

    __slots__ = ("line", "lines")


class LineList(list):
    """A sequence from a YAML file; ``line`` is its line, ``lines[i]`` each item's."""

    __slots__ = ("line", "lines")


def read_text(path: str) -> str:
    """The text of ``path``, or a TrueupError that says why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise TrueupError("file not found", path) from None
    except IsADirectoryError:
        raise TrueupError("is a directory, expected a file", path) from None
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
    import hashlib
    import pickle

    try:
        st = os.stat(path)
    except OSError:
        return parse(path, read_text(path))
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cached = os.path.join(cache_dir, hashlib.sha256(path.encode()).hexdigest() + ".pickle")
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
    """Parse YAML ``text`` read from ``path`` (named in errors)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
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
    finally:
        loader.dispose()
    if node is None:
        return None
    return _convert(node, loader, path)


def _convert(node: Any, loader: Any, path: str) -> Any:
    if node.id == "mapping":
        out = LineDict()
        out.line = node.start_mark.line + 1
        out.lines = {}
        _flatten(node, loader, path)
        for knode, vnode in node.value:
            key = _convert(knode, loader, path)
            line = knode.start_mark.line + 1
            if isinstance(key, (dict, list)):
                raise TrueupError("a mapping key must be a plain value", path, line)
            if key in out:
                raise TrueupError(f"duplicate key {key!r} (first at line {out.lines[key]})",
                                  path, line)
            out[key] = _convert(vnode, loader, path)
            out.lines[key] = line
        return out
    if node.id == "sequence":
        seq = LineList()
        seq.line = node.start_mark.line + 1
        seq.lines = []
        for item in node.value:
            seq.append(_convert(item, loader, path))
            seq.lines.append(item.start_mark.line + 1)
        return seq
    try:
        return loader.construct_object(node, deep=True)
    except Exception as exc:  # yaml.constructor.ConstructorError, ValueError of int() …
        # a ConstructorError's str() adds a second line: where, in "<unicode string>"
        problem = getattr(exc, "problem", None) or str(exc)
        raise TrueupError(f"invalid value: {problem}", path, node.start_mark.line + 1) from None


def _flatten(node: Any, loader: Any, path: str) -> None:
    """Resolve the merge keys (``<<: *defaults``) of a mapping node, in place."""
    import yaml

    try:
        loader.flatten_mapping(node)
    except yaml.MarkedYAMLError as exc:  # << given a scalar, or a list holding one
        mark = exc.problem_mark or node.start_mark
        raise TrueupError(f"invalid merge key (<<): {exc.problem}", path,
                          mark.line + 1) from None
