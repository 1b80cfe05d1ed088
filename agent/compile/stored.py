"""A compiled catalog kept between runs: a run whose inputs did not change skips loading
the recipes and compiling them, and converges the catalog the last run compiled.

The catalog is kept under the state dir in ``cache/catalogs/`` (mode 0700), as
``<bundle>.<phase>.<plain|diffs>.pickle`` (``<bundle>`` names the bundle's parse cache
folder), written whole and atomically; the :data:`KEEP` most recently written are
kept. It is reused only when everything that can change it is the same as when it was
compiled (the key):

- trueup itself: its version, the size and mtime of every one of its modules, Python's
  version and the format of the file;
- the bundle: every entry of its folder (and of the folder of its Parameter Store
  recipes) by name, type, size, inode, mtime, ctime and link target, so an edit, a new
  file or a removed one changes it; the run lists, attributes and recipes that the
  source gave beside the folder. A file changed less than :data:`RACY_NS` before the
  compile could change again within the same tick of the file system's clock, keeping
  its size and times: its content's digest is part of the key as well, checked on
  every run (as git does for "racily clean" files);
- the request: the run list given (``--runlist``, ``--event``, the configured one), the
  phase, ``-a`` assignments, the ``--attributes`` file (its path, size, inode, mtime and
  ctime), and whether file contents are shown as diffs (``plan``, ``--noop``, ``--diff``);
- the facts compiling read (``facts.hostname`` ...): their values are read again on every
  run and compared with those the catalog was compiled with (as digests: ``facts.env``
  can hold credentials, which never go to disk).

A catalog is never kept when compiling read a secret (``secret()``, a SecureString
attribute) or ``facts.ec2``, holds a sensitive resource, used a random value
(Jinja's ``random`` filter, ``lipsum()``), read pyinfra facts from the host, or holds a
resource whose kind's ``prepare()`` may read more than its recipe's folder (see
``Resource.PREPARE_IS_PURE``); nor for a bundle with a symbolic link to a folder or more
than :data:`MAX_ENTRIES` entries. A missing, damaged or unreadable file is a miss: the
run compiles as if there were none. ``TRUEUP_CATALOG_CACHE=off`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from collections.abc import Callable

from agent import __version__
from agent.compile.options import Options, Prepared
from agent.config import Config
from agent.host.files import sha256

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

FORMAT = 1
MAX_ENTRIES = 20_000  # entries of a bundle's folder tree; a larger bundle is compiled each run
KEEP = 16  # stored catalogs kept (two modes and three phases of a few bundles)
RACY_NS = 3_000_000_000  # wider than the coarsest file-system clock tick (2 s on FAT)


def load_or_prepare(opts: Options, cfg: Config, bundle: Any, system: Any, backups: Any,
                    facts: Any, secrets: Callable[[Any], str]) -> Prepared:
    """The catalog of this run: the stored one if its key still holds, else
    :func:`agent.compile.prepare.prepare`'s, stored for the next run when it may be."""
    parsed = getattr(bundle, "cache_dir", None)
    path = key = None
    if parsed and cfg.state_dir and os.environ.get("TRUEUP_CATALOG_CACHE", "") != "off":
        mode = "diffs" if opts.noop or opts.diff else "plain"
        path = os.path.join(catalogs_dir(cfg.state_dir),
                            f"{os.path.basename(parsed)}.{opts.phase}.{mode}.pickle")
        key = inputs(opts, cfg, bundle)
        if key is not None:
            found = load(path, key, facts, system, backups, secrets, opts.phase)
            if found is not None:
                found.bundle = bundle
                return found
    racy = racy_digests(key) if key is not None else {}  # read before the compile reads
    from agent.compile.prepare import prepare

    prepared = prepare(opts, cfg, bundle, system, backups, facts, secrets)
    if path is not None:
        if key is not None and storable(prepared, facts):
            store(path, key, prepared, facts, system, backups, racy)
        else:  # what may be secret now must not stay on disk from an earlier compile
            forget(path)
    return prepared


def catalogs_dir(state_dir: str) -> str:
    return os.path.join(state_dir, "cache", "catalogs")


def forget(path: str) -> None:
    """Remove every stored catalog of the bundle that ``path`` is one of."""
    folder, name = os.path.split(path)
    bundle = name.partition(".")[0] + "."
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for other in names:
        if other.startswith(bundle):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, other))


def _keep_recent(folder: str) -> None:
    """Remove all but the :data:`KEEP` most recently written catalogs (and leftovers of
    a killed run's writes)."""
    try:
        entries = [(e.stat().st_mtime_ns, e.path) for e in os.scandir(folder)]
    except OSError:
        return
    entries.sort(reverse=True)
    for _, path in entries[KEEP:]:
        with contextlib.suppress(OSError):
            os.unlink(path)


# --------------------------------------------------------------------------- the key

def inputs(opts: Options, cfg: Config, bundle: Any) -> tuple[Any, ...] | None:
    """Everything but the facts that the catalog of this run depends on; None when that
    cannot be told cheaply (a link to a folder in the bundle, a huge bundle, secrets)."""
    trees = []
    fetched = getattr(bundle, "fetched", None)
    for root in (bundle.root, getattr(bundle, "recipes_dir", "")):
        if root:
            tree = folder_tree(root)
            if tree is None:
                return None
            trees.append((root, tree))
    extra = None
    if fetched is not None:
        if fetched.secrets or fetched.secret_attributes:
            return None
        extra = (fetched.root, fetched.runlists, fetched.attributes, fetched.recipes)
    if opts.attributes_file:
        path = os.path.abspath(opts.attributes_file)
        trees.append((os.path.dirname(path), [_stat_row(path, os.path.basename(path))]))
    return (FORMAT, __version__, sys.version, code_stamp(), trees, extra, opts.runlist,
            opts.event, opts.phase, bool(opts.noop or opts.diff), tuple(opts.assignments),
            opts.attributes_file, cfg.runlist)


def _stat_row(path: str, name: str) -> tuple[Any, ...]:
    try:
        st = os.stat(path)
    except OSError as exc:
        return (name, "error", exc.errno)
    return (name, st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def racy_digests(key: tuple[Any, ...]) -> dict[str, str]:
    """The content digest of each file of the key changed less than :data:`RACY_NS` ago."""
    import time

    since = time.time_ns() - RACY_NS
    out: dict[str, str] = {}
    for root, rows in key[4]:
        for row in rows:
            if len(row) > 5 and stat.S_ISREG(row[1]) and max(row[4], row[5]) >= since:
                path = os.path.join(root, row[0])
                out[path] = _content_digest(path)
    return out


def _content_digest(path: str) -> str:
    """The digest of the regular file at ``path``; never blocks on a FIFO or a device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        return f"error {exc.errno}"
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return f"mode {st.st_mode:o}"
        try:
            return sha256(fh.read()).hexdigest()
        except OSError as exc:
            return f"error {exc.errno}"


def folder_tree(root: str) -> list[tuple[Any, ...]] | None:
    """Every entry under ``root`` with what changes when it is edited, in a fixed order.

    Hidden folders right under the bundle root (``.git``) are left out: no recipe can
    live there. None for a link to a folder (what is behind it could change unseen) or
    more than :data:`MAX_ENTRIES` entries.
    """
    out: list[tuple[Any, ...]] = []
    todo = [(root, "")]
    while todo:
        folder, rel = todo.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            out.append((rel, "error", exc.errno))
            continue
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            if not rel and entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                out.append((name, "error", exc.errno))
                continue
            row: tuple[Any, ...] = (name, st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns,
                                    st.st_ctime_ns)
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(entry.path)
                    behind = os.stat(entry.path)
                except OSError:
                    behind = None
                    target = None
                if behind is not None and stat.S_ISDIR(behind.st_mode):
                    return None
                row += (target, None if behind is None else
                        (behind.st_ino, behind.st_size, behind.st_mtime_ns, behind.st_ctime_ns))
            elif stat.S_ISDIR(st.st_mode):
                todo.append((entry.path, name))
            out.append(row)
            if len(out) > MAX_ENTRIES:
                return None
    return out


_STAMP: list[Any] = []


def code_stamp() -> list[Any]:
    """The name, size and mtime of each of trueup's modules: a changed trueup (installed
    again, edited in a checkout) never reuses a catalog an older one compiled."""
    if _STAMP:
        return _STAMP[0]
    import agent

    stamp: list[Any] = []
    todo = [os.path.dirname(os.path.abspath(agent.__file__))]
    while todo:
        folder = todo.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(".py"):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                stamp.append((entry.path, st.st_size, st.st_mtime_ns))
            elif entry.name != "__pycache__" and entry.is_dir():
                todo.append(entry.path)
    _STAMP.append(stamp)
    return stamp


def _digest(value: Any) -> str:
    """A digest of a fact's value: compared, never the value itself kept on disk."""
    return sha256(repr(_ordered(value)).encode("utf-8", "backslashreplace")).hexdigest()


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted(((repr(k), _ordered(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return [_ordered(v) for v in value]
    return value


# --------------------------------------------------------------------------- store and load

def storable(prepared: Prepared, facts: Any) -> bool:
    """Whether this catalog may be kept: see the module's description."""
    from agent.redact import REDACTOR
    from agent.resources import Resource

    reads = prepared.reads
    if reads is None or reads.get("secrets") or reads.get("instance") or reads.get("volatile"):
        return False
    if REDACTOR or "ec2" in getattr(facts, "used", ()) or prepared.fact_host.reads:
        return False
    for node in prepared.catalog.nodes:
        res = node.res
        kind = type(res)
        if res.sensitive or (kind.prepare is not Resource.prepare and not kind.PREPARE_IS_PURE):
            return False
    return True


def store(path: str, key: tuple[Any, ...], prepared: Prepared, facts: Any, system: Any,
          backups: Any, racy: dict[str, str] | None = None) -> bool:
    """Write the catalog to ``path`` (whole, atomically, mode 0600); False if it cannot be.

    The run's services (the system, backups, pyinfra fact host, template renderer) are
    not part of it: a run that loads it gives its own. Nor are the parsed recipes: a
    loaded catalog's ``Prepared.recipes`` is empty (run and plan do not read them).
    """
    import pickle
    import types

    services = {id(system): "system", id(backups): "backups", id(prepared.fact_host): "fact_host"}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> str | None:
            found = services.get(id(obj))
            if found is not None:
                return found
            if isinstance(obj, types.MethodType) and type(obj.__self__).__name__ == "Renderer":
                return "render_file"
            return None

    fact_digests = {name: _digest(facts[name]) for name in sorted(getattr(facts, "used", ()))}
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        body = io.BytesIO()
        Pickler(body, protocol=pickle.HIGHEST_PROTOCOL).dump(
            (prepared.runlist, prepared.catalog, prepared.attributes))
        data = pickle.dumps((key, racy or {}, fact_digests, body.getvalue()),
                            pickle.HIGHEST_PROTOCOL)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        _keep_recent(os.path.dirname(path))
    except BaseException as exc:  # something unpicklable, a full disk: the next run compiles
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if not isinstance(exc, Exception):  # SIGTERM's Interrupted, KeyboardInterrupt
            raise
        return False
    return True


def load(path: str, key: tuple[Any, ...], facts: Any, system: Any, backups: Any,
         secrets: Callable[[Any], str], phase: str = "all") -> Prepared | None:
    """The catalog stored at ``path`` if its key is ``key`` and the facts it read still
    have the values it was compiled with; None otherwise (a damaged file too)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    try:  # the C unpickler alone: pickle.py's own imports are not needed to load
        from _pickle import Unpickler, loads
    except ImportError:
        from pickle import Unpickler, loads

    try:
        # the state dir is trueup's own (mode 0700): nobody else can write this file
        stored_key, racy, fact_digests, body = loads(data)  # noqa: S301
        if stored_key != key:
            return None
        for file, digest in racy.items():
            if _content_digest(file) != digest:
                return None
        for name, digest in fact_digests.items():
            if _digest(facts[name]) != digest:
                return None
        from agent.host.pyinfra_bridge import FactHost

        fact_host = FactHost(system)
        attributes: dict[str, Any] = {}
        services = {"system": system, "backups": backups, "fact_host": fact_host,
                    "render_file": _render_file(attributes, facts, secrets, phase)}
        unpickler = Unpickler(io.BytesIO(body))  # noqa: S301 - as above
        unpickler.persistent_load = services.__getitem__  # type: ignore[method-assign]
        runlist, catalog, stored_attributes = unpickler.load()
        attributes.update(stored_attributes)
    except Exception:  # a damaged or foreign file is a miss, never an error
        return None
    return Prepared(None, runlist, [], catalog, attributes, fact_host,
                    {"secrets": 0, "instance": 0, "volatile": False, "stored": True})


def _render_file(attributes: dict[str, Any], facts: Any, secrets: Callable[[Any], str],
                 phase: str) -> Callable[..., str]:
    """Context.render_file for a loaded catalog: the renderer is made on first use."""
    made: list[Any] = []

    def render_file(path: str, variables: Any = None) -> str:
        if not made:
            from agent.compile.phases import BootReads
            from agent.compile.render import Renderer

            boot = BootReads(phase)
            boot.watch_facts(facts)
            made.append(Renderer(attributes, facts,
                                 {"secret": boot.secret_function(secrets)}, boot))
        return made[0].file(path, variables)

    return render_file
