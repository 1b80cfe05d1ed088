"""Resource types: the base class every kind extends, and discovery of the kinds.

A kind lives in ``agent/resources/<kind>.py`` and registers itself by subclassing
:class:`Resource` with ``kind="<kind>"``. Nothing else needs editing: the loader
imports a kind's module the first time a recipe uses it, and ``trueup kinds``
lists every module in this package.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import stat
from collections.abc import Callable, Iterator, Mapping

from agent.errors import ResourceError
from agent.model import Change, FrozenRecord

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any, ClassVar

REGISTRY: dict[str, type[Resource]] = {}


class Field(FrozenRecord):
    """One spec key a kind accepts: its type(s), default, allowed values and meaning.

    ``Field(types, default=None, choices=None, doc="", required=False)``
    """

    __slots__ = ("types", "default", "choices", "doc", "required")
    DEFAULTS = {"default": None, "choices": None, "doc": "", "required": False}


def f(types: type | tuple[type, ...], default: Any = None, doc: str = "", *,
      choices: tuple[Any, ...] | None = None, required: bool = False) -> Field:
    """Shorthand for declaring a :class:`Field`."""
    return Field(types if isinstance(types, tuple) else (types,), default, choices, doc, required)


STRLIST = (list, str)

# Fields every kind takes; the engine interprets them, the kind never sees them.
COMMON_FIELDS: dict[str, Field] = {
    "state": f(str, None, "present (default) or absent; services: running or stopped"),
    "requires": f(STRLIST, (), "resources (type:name) converged first; failure skips this one"),
    "notify": f(STRLIST, (), "'type:name action' to trigger when this one changes"),
    "subscribe": f(STRLIST, (), "'type:name' whose change triggers this one's refresh action"),
    "immediately": f(bool, False, "run notifications at once instead of at the end"),
    "only_if": f(list, None, "argv run first; the resource is managed only if it exits 0"),
    "not_if": f(list, None, "argv run first; the resource is skipped if it exits 0"),
    "retries": f(int, 0, "extra attempts when apply fails"),
    "retry_delay": f((int, float), 1, "seconds between attempts"),
    "ignore_failure": f(bool, False, "a failure is reported but counts as success"),
    "sensitive": f(bool, False, "never show values or diffs of this resource"),
    "phase": f(str, None, "bake, boot or any", choices=("bake", "boot", "any")),
    "loop": f((list, dict, str), None, "one resource per item: a list, a mapping or "
              "\"{{ expression }}\"; item and loop_index in its values"),
    "when": f((str, bool), None, "expression: false keeps the resource out of the catalog"),
}


class Spec(Mapping):  # Mapping[str, Any]
    """A resource's rendered spec, frozen: every declared field, defaulted when not given.

    ``spec["mode"]`` and ``spec.mode`` read a value; a field the recipe left out reads
    its :class:`Field` default, so a kind never repeats a default. ``spec.given("mode")``
    tells whether the recipe set it. Nothing can be assigned: a changed spec is a new
    one, made by :meth:`replace`.

    Example:
        >>> spec = Spec({"mode": f(str), "backup": f(bool, True)}, {"mode": "0644"})
        >>> spec.mode, spec["backup"], spec.given("backup")
        ('0644', True, False)
    """

    __slots__ = ("_values", "_given")
    _values: dict[str, Any]
    _given: frozenset[str]

    def __init__(self, fields: Mapping[str, Field], given: Mapping[str, Any] | None = None) -> None:
        given = given or {}
        unknown = [key for key in given if key not in fields]
        if unknown:
            raise ValueError(f"undeclared field(s) {', '.join(map(repr, unknown))}; "
                             f"declared: {', '.join(fields)}")
        values = {key: given[key] if key in given else _fresh(fld.default)
                  for key, fld in fields.items()}
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_given", frozenset(given))

    def given(self, key: str) -> bool:
        """Whether the recipe set ``key`` (rather than the spec holding its default)."""
        return key in self._given

    def replace(self, **values: Any) -> Spec:
        """A new spec with ``values`` changed; which keys count as given stays the same."""
        unknown = [key for key in values if key not in self._values]
        if unknown:
            raise KeyError(f"undeclared field(s) {', '.join(map(repr, unknown))}")
        return _restore_spec({**self._values, **values}, self._given)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):  # not a field; also no recursion before _values is set
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"spec has no field {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"a spec is read-only (cannot set {key!r}); use replace()")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"a spec is read-only (cannot delete {key!r})")

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle go around __setattr__
        return _restore_spec, (self._values, self._given)

    def __repr__(self) -> str:
        given = {k: v for k, v in self._values.items() if k in self._given}
        return f"Spec({given!r})"


def _restore_spec(values: dict[str, Any], given: frozenset[str]) -> Spec:
    spec = object.__new__(Spec)
    object.__setattr__(spec, "_values", values)
    object.__setattr__(spec, "_given", given)
    return spec


def _fresh(default: Any) -> Any:
    """A default as a spec value: a list or dict copied, so no spec shares the Field's."""
    return default.copy() if isinstance(default, (list, dict)) else default


class Context:
    """What a resource may need beyond its spec: its recipe's folders and the run's services.

    Attributes:
        recipe_dir: the folder of the recipe that declared the resource.
        render_file: renders a template file (path, extra variables) to text.
        backups: stores the previous content of a replaced file.
        system: the host seam.
        fact_host: pyinfra's facts of this host, read once per run (host.pyinfra_bridge).
        diffs: whether the content of a file about to be created is wanted as a diff
            (plan and --diff); a content change of an existing file always has one.
        state_dir: trueup's state folder, for kinds that keep records between runs
            (s3_file's ETags); "" when there is none (then they keep nothing).
    """

    __slots__ = ("recipe_dir", "render_file", "backups", "system", "fact_host", "recipe",
                 "diffs", "state_dir")

    def __init__(self, recipe_dir: str, recipe: str, render_file: Callable[..., str],
                 backups: Any, system: Any, fact_host: Any = None, diffs: bool = True,
                 state_dir: str = "") -> None:
        self.recipe_dir = recipe_dir
        self.recipe = recipe
        self.render_file = render_file
        self.backups = backups
        self.system = system
        self.fact_host = fact_host
        self.diffs = diffs
        self.state_dir = state_dir


class Resource:
    """Base class of every kind.

    A kind declares ``FIELDS`` (its own spec keys), ``EXAMPLES`` (specs the
    conformance test converges), ``SENSITIVE_EXAMPLE`` (a spec whose values must
    never be shown), ``STATES`` (values ``state`` may take) and ``ACTIONS`` (what
    notifications may ask of it). It implements:

    - ``validate()``: pure checks of the rendered spec, raising ``ValueError``;
    - ``check() -> list[Change]``: read-only, ``[]`` means converged;
    - ``apply(changes)``: performs exactly those changes.
    """

    kind: ClassVar[str] = ""
    FIELDS: ClassVar[dict[str, Field]] = {}
    # FIELDS then COMMON_FIELDS: every key a Spec of this kind has (set per subclass)
    SPEC_FIELDS: ClassVar[dict[str, Field]] = COMMON_FIELDS
    EXAMPLES: ClassVar[list[dict[str, Any]]] = []
    # an example with ``sensitive: true`` and "{canary}" in each value the kind shows
    # (tests/test_sensitive.py checks the canary appears in no output, report or file)
    SENSITIVE_EXAMPLE: ClassVar[dict[str, Any]] = {}
    STATES: ClassVar[tuple[str, ...]] = ("present", "absent")
    ACTIONS: ClassVar[tuple[str, ...]] = ()
    # action → the actions it makes unneeded for the rest of the run: a service restarted
    # in a run is not reloaded later in that run (the engine skips them, see engine.runner)
    ABSORBS: ClassVar[dict[str, tuple[str, ...]]] = {"restart": ("reload",)}
    # False for kinds that act every time they are asked (a command without guard)
    IDEMPOTENT: ClassVar[bool] = True
    # True for kinds that change the whole system (packages, services, users …): their
    # EXAMPLES are converged on booted test hosts, never on the developer's machine
    SYSTEM: ClassVar[bool] = False
    # True when the kind's prepare() reads nothing but its spec, its recipe's folder
    # (files/, templates/) and ctx.render_file: a compiled resource of it can then be
    # stored and reused while those stay the same (agent.compile.stored). A kind whose
    # prepare() reads the host leaves it False; a kind without prepare() need not set it.
    PREPARE_IS_PURE: ClassVar[bool] = False
    # actions a notification carries out at once, as with ``immediately: true`` (reboot now)
    IMMEDIATE_ACTIONS: ClassVar[tuple[str, ...]] = ()
    # "end" or "now" once the resource asked for a reboot in this run (the reboot kind)
    reboot_asked: str | None = None

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        clash = set(cls.FIELDS) & set(COMMON_FIELDS)
        if clash:
            raise RuntimeError(f"{cls.__name__} redeclares common field(s) {sorted(clash)}")
        cls.SPEC_FIELDS = {**cls.FIELDS, **COMMON_FIELDS}
        if kind:
            if kind in REGISTRY and REGISTRY[kind] is not cls:
                raise RuntimeError(f"resource kind {kind!r} registered twice")
            cls.kind = kind
            REGISTRY[kind] = cls

    def __init__(self, name: str, spec: Spec | Mapping[str, Any], ctx: Context) -> None:
        """``spec`` is the catalog's :class:`Spec`; a plain mapping (of given values) is
        made into one. The resource never changes it. ``sensitive`` comes from it: the
        recipe's flag, or the compiler's when a secret went into the resource."""
        self.name = name
        self.spec = spec if isinstance(spec, Spec) else self.make_spec(spec)
        self.ctx = ctx
        self.state: str = self.spec["state"] or self.STATES[0]
        self.sensitive: bool = bool(self.spec["sensitive"])

    @classmethod
    def make_spec(cls, given: Mapping[str, Any]) -> Spec:
        """A :class:`Spec` of this kind from the values a recipe gave (ValueError for others)."""
        return Spec(cls.SPEC_FIELDS, given)

    @property
    def ident(self) -> str:
        return f"{self.kind}:{self.name}"

    def get(self, key: str) -> Any:
        """The spec value of ``key`` (its default when not given); None if undeclared."""
        return self.spec.get(key)

    def validate(self) -> None:
        """Check the rendered spec; raise ValueError with what is wrong and what is allowed."""

    def prepare(self) -> None:
        """Read-only work that may fail (read sources, render templates), done before any change."""

    def check(self) -> list[Change]:
        raise NotImplementedError

    def apply(self, changes: list[Change]) -> None:
        raise NotImplementedError

    def settle(self) -> list[Change]:
        """Once-per-run work this changed resource left pending (an index refresh, a
        daemon-reload), run after every resource and before delayed notifications; the
        changes it made, if any. Kinds that defer nothing need not override it."""
        return []

    def refresh(self, action: str) -> bool | None:
        """Carry out a notification's action (restart, reload, run …); False: not needed."""
        raise NotImplementedError(f"{self.kind} has no action {action!r}")

    @property
    def converges(self) -> bool:
        """Whether check() must be empty after apply() (False for unguarded commands)."""
        return self.IDEMPOTENT

    @property
    def reports_changes(self) -> bool:
        """False for a read-only resource (a command with ``changes: false``): it is
        applied, and can fail, but the run never counts it as a change."""
        return True


def owner_changes(spec: Mapping[str, Any], st: Any) -> list[Change]:
    """Changes for the ``owner``/``group`` of ``spec`` against a stat result (None: absent)."""
    from agent.host.system import lookup_gid, lookup_uid

    changes = []
    for key, lookup, current in (("owner", lookup_uid, st.st_uid if st else None),
                                 ("group", lookup_gid, st.st_gid if st else None)):
        want = spec.get(key)
        if want is not None and (current is None or lookup(want) != current):
            changes.append(Change(key, current, want))
    return changes


def symlink_refused(path: str) -> ResourceError:
    """The one error of file, template and line (and cron) for a symbolic link at ``path``.

    They never write through a link, over one, or remove one: a link is link:'s to manage.
    Links in the folders above ``path`` are followed as usual.
    """
    return ResourceError(f"{path} is a symbolic link; manage it with link: or remove it")


def read_regular(path: str) -> bytes:
    """The bytes of the regular file at ``path``, never read through a symbolic link.

    A link there is :func:`symlink_refused`; anything else that is not a regular file
    (a folder, a FIFO that would block, a device) is a ResourceError. A missing file
    raises FileNotFoundError, other failures OSError.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(path) from None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ResourceError(f"{path} is not a regular file")
        return fh.read()


def save_backup(ctx: Context, path: str, data: bytes, keep: bool | int = True) -> None:
    """Keep ``data``, the content about to be replaced at ``path``, before it is touched.

    ``keep`` is a kind's ``backup`` field: False for no backup, True for the configured
    count, or a count. A backup that cannot be written completely (a full disk, say)
    fails the resource with ``path`` still as it was.
    """
    if keep is False:
        return
    try:
        ctx.backups.save(path, data, None if keep is True else int(keep))
    except OSError as exc:
        raise ResourceError(f"{exc.strerror or exc}; {path} left unchanged") from None


def lstat_file(path: str) -> os.stat_result | None:
    """The status of ``path`` itself (None: missing); a symbolic link there is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise ResourceError(f"a parent of {path} is not a directory") from None
    if stat.S_ISLNK(st.st_mode):
        raise symlink_refused(path)
    return st


def removal_changes(path: str, st: os.stat_result | None) -> list[Change]:
    """What check of a file kind (file, template, s3_file) plans for ``state: absent``."""
    if st is None:
        return []
    if stat.S_ISDIR(st.st_mode):
        raise ResourceError(f"{path} is a directory; manage it with directory:")
    return [Change("state", "present", "absent")]


def backup_file(ctx: Context, path: str, keep: bool | int) -> None:
    """Keep the content of ``path``, about to be replaced or removed (a ``backup`` field)."""
    if keep is False:
        return
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return
    save_backup(ctx, path, data, keep)


def apply_file(res: Resource, changes: list[Change], content: Callable[[], bytes],
               verify: Callable[[str], None] | None = None) -> bool:
    """Apply a file kind's planned ``changes`` to the regular file ``res.name``.

    The kind has ``owner``, ``group``, ``backup`` fields and a parsed ``res.mode``
    (None: keep the file's, or 0644, 0600 if sensitive, for a new file).
    ``content()`` gives the bytes to write, which go in atomically after ``verify``
    accepted the temporary file and the old content was backed up. True when the
    content was written.
    """
    from agent.host.system import lookup_gid, lookup_uid

    fields = {c.field for c in changes}
    sys = res.ctx.system
    path = res.name
    st = lstat_file(path)  # a link that appeared since check is refused too
    if "leftover" in fields:
        sys.remove_leftover(path)
    if res.state == "absent":
        backup_file(res.ctx, path, res.spec["backup"])
        sys.remove(path)
        return False
    uid, gid = lookup_uid(res.spec["owner"]), lookup_gid(res.spec["group"])
    mode: int | None = res.mode  # type: ignore[attr-defined]
    if "state" in fields or "content" in fields:
        data = content()
        if st is not None:  # keep what the recipe does not manage
            mode = stat.S_IMODE(st.st_mode) if mode is None else mode
            uid = st.st_uid if uid == -1 else uid
            gid = st.st_gid if gid == -1 else gid
        elif mode is None:
            mode = 0o644 if not res.sensitive else 0o600

        def accept(temp: str) -> None:
            """Last, before the new content replaces the old: verify it, then back up
            the old, so a refused or unwritten file leaves no backup behind."""
            if verify is not None:
                verify(temp)
            if st is not None:
                backup_file(res.ctx, path, res.spec["backup"])

        try:
            sys.atomic_write(path, data, mode, uid, gid, accept, replacing=st is not None)
        except FileNotFoundError:
            raise ResourceError(f"folder {os.path.dirname(path)} does not exist "
                                "(declare a directory: resource for it)") from None
        return True
    if "mode" in fields:
        sys.chmod(path, res.mode)  # type: ignore[attr-defined]
    if "owner" in fields or "group" in fields:
        sys.chown(path, uid, gid)
    return False


@contextlib.contextmanager
def writing(path: str, verb: str = "write") -> Iterator[None]:
    """An OSError while changing ``path`` becomes a ResourceError that names ``path``.

    The error itself often names the temporary file the change goes through
    (``.NAME.trueup-new``): that one is added after, as where it happened.
    """
    try:
        yield
    except OSError as exc:
        culprit = exc.filename if isinstance(exc.filename, str) else None
        where = f" (at {culprit})" if culprit and culprit != path else ""
        raise ResourceError(f"cannot {verb} {path}: {exc.strerror or exc}{where}") from None


def kind_class(kind: str) -> type[Resource] | None:
    """The class of ``kind``, importing its module on first use; None if there is none."""
    cls = REGISTRY.get(kind)
    if cls is None and kind.isidentifier() and not kind.startswith("_"):
        try:
            importlib.import_module(f"{__name__}.{kind}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{kind}":
                raise
            return None
        cls = REGISTRY.get(kind)
    return cls


def load_all() -> dict[str, type[Resource]]:
    """Import every kind module and return the registry, sorted by kind."""
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return dict(sorted(REGISTRY.items()))


class SpecError(ValueError):
    """A spec value is wrong; ``field`` names the key so the error points at its line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_mode(value: Any) -> int:
    """A quoted octal string such as "0644" → 0o644."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise SpecError("mode", f"mode must be a quoted octal string such as \"0644\", not "
                        f"{value!r} (YAML reads an unquoted 0644 as the number 420)")
    try:
        mode = int(value, 8)
    except ValueError:
        raise SpecError("mode", f"mode {value!r} is not an octal number such as \"0644\"") from None
    if not 0 <= mode <= 0o7777:
        raise SpecError("mode", f"mode {value!r} is out of range (0000-7777)")
    return mode
