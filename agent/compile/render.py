"""Jinja2 rendering of recipe values and template files, with undefined names as errors.

Plain strings pass through untouched and ``{{ dotted.name }}`` placeholders are
resolved without Jinja (the common case, and a hot path) by Jinja's own lookup rules;
anything else, and any lookup those rules leave to the environment (a method, a
private name, a Jinja global), is compiled once by Jinja2 and cached.

Jinja2 runs sandboxed (``jinja2.sandbox.SandboxedEnvironment``): a template can use
filters, tests, loops, ``secret()`` and the methods of plain values, but not Python's
internals (``__class__``, ``__globals__``, ``mro`` …), so a recipe or a template cannot
run Python; reaching for them is an error naming the attribute.
"""

from __future__ import annotations

import copy
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

from agent.errors import RenderError
from agent.host import files

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SIMPLE = re.compile(r"\{\{\s*(" + _NAME + r"(?:\." + _NAME + r")*)\s*\}\}")
#: Names Jinja does not look up in the context when they start an expression: constants
#: (``{{ none }}`` is None), the ``not`` operator, and ``self`` (the template itself).
_NOT_CONTEXT = frozenset({"true", "false", "none", "True", "False", "None", "not", "self"})


class Renderer:
    """Renders strings and template files over ``attributes``, ``facts`` and helpers."""

    def __init__(self, attributes: Mapping[str, Any], facts: Any,
                 functions: Mapping[str, Callable[..., Any]] | None = None,
                 boot: Any = None, template_options: Mapping[str, bool] | None = None) -> None:
        self.boot = boot  # compile.phases.BootReads: which values read secrets or EC2 facts
        self.context: dict[str, Any] = {"attributes": attributes, "facts": facts}
        self.context.update(functions or {})
        # how template files treat the whitespace around {% %} tags (see file())
        self.template_options = {**TEMPLATE_DEFAULTS, **(template_options or {})}
        self._env: Any = None
        self._file_envs: dict[tuple[bool, bool], Any] = {}
        self._compiled: dict[str, Any] = {}
        self._files: dict[tuple[str, bool, bool], Any] = {}

    def scoped(self, names: Mapping[str, Any]) -> Renderer:
        """A renderer that also sees ``names`` (``item`` and ``loop_index`` of a loop).

        It shares this one's Jinja environment and compiled templates (a compiled
        template does not hold its context, so the caches stay valid).
        """
        child = copy.copy(self)
        child.context = {**self.context, **names}
        child.env = self.env  # type: ignore[method-assign] # one environment for both
        return child

    # --- values in recipes --------------------------------------------------------

    def value(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        """Render every string inside ``value`` (str, list or dict), recursively.

        A string that is one ``{{ expression }}`` inside a list or mapping keeps the
        expression's type, as Ansible does: ``variables: {conf: "{{ attributes.site }}"}``
        passes the mapping itself. ``value`` itself, when a string, stays a string.
        """
        if isinstance(value, str):
            return self.string(value, extra) if "{" in value else value
        if extra:
            return self.scoped(extra).value(value)
        if isinstance(value, list):
            return [self._inner(v) for v in value]
        if isinstance(value, dict):
            return {k: self._inner(v) for k, v in value.items()}
        return value

    def _inner(self, value: Any) -> Any:
        if (isinstance(value, str) and value.startswith("{{") and value.endswith("}}")
                and value.count("{{") == 1):
            return _plain(self.native(value))
        return self.value(value)

    def string(self, text: str, extra: Mapping[str, Any] | None = None) -> str:
        if "{{" not in text and "{%" not in text and "{#" not in text:
            return text
        ctx = self.context if not extra else {**self.context, **extra}
        template = self._compiled.get(text)
        if template is None:
            template = self._compiled[text] = _Placeholders.parse(text) or self._jinja(text)
        try:
            try:
                return template.render(ctx)
            except _Unsure:  # the fast path cannot decide: Jinja renders this text from now on
                template = self._compiled[text] = self._jinja(text)
                return template.render(ctx)
        except RenderError:
            raise
        except Exception as exc:
            raise RenderError(f"{_message(exc)} in {text!r}") from None

    def _jinja(self, text: str) -> Any:
        try:
            return self.env().from_string(text)
        except Exception as exc:  # jinja2.TemplateSyntaxError
            raise RenderError(f"template syntax error: {_message(exc)} in {text!r}") from None

    def native(self, text: str) -> Any:
        """The value of a string that is one ``{{ expression }}``, not its text.

        ``names: "{{ attributes.base.packages }}"`` gives the list itself.
        """
        inner = text.strip()
        if not (inner.startswith("{{") and inner.endswith("}}")) or inner.count("{{") != 1:
            return self.string(text)
        expr = inner[2:-2].strip()
        try:
            if _SIMPLE.fullmatch(inner) and _in_context(expr):
                try:
                    return _resolve(self.context, expr)
                except _Unsure:
                    pass
            env = self.env()
            compiled = env.compile_expression(expr, undefined_to_none=False)
            value = compiled(self.context)
            _fail_if_undefined(value, env.undefined)
            return value
        except RenderError:
            raise
        except Exception as exc:
            raise RenderError(f"{_message(exc)} in {text!r}") from None

    # --- template files ------------------------------------------------------------

    def file(self, path: str, variables: Mapping[str, Any] | None = None,
             trim_blocks: bool | None = None, lstrip_blocks: bool | None = None) -> str:
        """Render the template file at ``path``; ``variables`` are top-level names too.

        ``trim_blocks`` (drop the newline after a ``{% %}`` tag) and ``lstrip_blocks``
        (drop the spaces before one on its line) default to ``template_options``: the
        bundle's, else Ansible's (trim on, lstrip off).
        """
        trim = self.template_options["trim_blocks"] if trim_blocks is None else trim_blocks
        lstrip = (self.template_options["lstrip_blocks"] if lstrip_blocks is None
                  else lstrip_blocks)
        key = (path, bool(trim), bool(lstrip))
        template = self._files.get(key)
        if template is None:
            try:
                source = files.read_text(path, files.MAX_SOURCE_BYTES)
            except files.NotRegular as exc:  # a FIFO, device, link loop …; or too large
                raise RenderError(str(exc)) from None
            except FileNotFoundError:
                raise RenderError("template file not found") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise RenderError(f"cannot read template: {exc}") from None
            template = self._files[key] = (_Placeholders.parse(source)
                                           or self._jinja_file(source, key[1:]))
        ctx = dict(self.context)
        if variables:
            ctx.update(variables)
            ctx["variables"] = variables
        try:
            try:
                return template.render(ctx)
            except _Unsure:
                template = self._files[key] = self._jinja_file(template.source, key[1:])
                return template.render(ctx)
        except RenderError:
            raise
        except Exception as exc:
            raise RenderError(_message(exc), _template_line(exc)) from None

    def _jinja_file(self, source: str, options: tuple[bool, bool]) -> Any:
        try:
            return self._file_env(options).from_string(source)
        except Exception as exc:
            raise RenderError(f"template syntax error: {_message(exc)}",
                              getattr(exc, "lineno", None)) from None

    def _file_env(self, options: tuple[bool, bool]) -> Any:
        """The environment for template files with these (trim_blocks, lstrip_blocks)."""
        env = self._file_envs.get(options)
        if env is None:
            env = self._file_envs[options] = self.env().overlay(
                trim_blocks=options[0], lstrip_blocks=options[1])
        return env

    def env(self) -> Any:
        """The Jinja2 environment (made on first use): sandboxed, strict about undefined
        names, trailing newline kept, no escaping."""
        if self._env is None:
            import jinja2

            from agent.compile import filters

            env = _bounded_environment()(
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
                autoescape=False,  # noqa: S701 - renders config files, not HTML
            )
            filters.install(env)
            self._env = env
        return self._env


def _plain(value: Any) -> Any:
    """A rendered value as recipe data: YAML's types (a tuple becomes a list) and mappings;
    any other object as its text (an offline secret attribute fails there, before any
    change, as it does in a string)."""
    if value is None or isinstance(value, (str, int, float, bool, list, dict, Mapping)):
        return value
    if isinstance(value, tuple):
        return list(value)
    return str(value)


#: Template files, like Ansible's template module: the newline after a block tag is
#: dropped, the indentation before one is kept. A bundle's ``bundle.yml`` or a template's
#: own fields change them.
TEMPLATE_DEFAULTS = {"trim_blocks": True, "lstrip_blocks": False}

MAX_ITEMS = 1_000_000  # the longest string or sequence ``*`` may build in a template
MAX_POWER_BITS = 100_000  # the largest integer ``**`` may build


def _bounded_environment() -> type:
    """Jinja2's sandbox, with ``*`` and ``**`` bounded: the sandbox keeps a template from
    Python's internals, this keeps it from spending the machine (``['x'] * 10**8``)."""
    import math

    from jinja2.sandbox import SandboxedEnvironment, SecurityError

    class Bounded(SandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                for seq, count in ((left, right), (right, left)):
                    if (isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int)
                            and len(seq) * count > MAX_ITEMS):
                        raise SecurityError(f"template builds {len(seq) * count:,} items "
                                            f"with * (the limit is {MAX_ITEMS:,})")
            elif (isinstance(left, int) and isinstance(right, int) and right > 0
                  and abs(left) > 1 and right * math.log2(abs(left)) > MAX_POWER_BITS):
                raise SecurityError(f"template computes a number of over {MAX_POWER_BITS:,} "
                                    "bits with **")
            return super().call_binop(context, operator, left, right)

    return Bounded


class _Unsure(Exception):
    """Jinja's own environment must answer this lookup: the caller renders with Jinja."""


class _Placeholders:
    """A template that only substitutes ``{{ dotted.name }}``: rendered without Jinja.

    The output is what Jinja would print for the same text, or :class:`_Unsure` is
    raised where only the environment can say (see :func:`_getattr`).
    """

    __slots__ = ("parts", "source")

    def __init__(self, source: str, parts: list[str]) -> None:
        self.source = source
        self.parts = parts  # literal, name, literal, name, …, literal

    @classmethod
    def parse(cls, text: str) -> _Placeholders | None:
        """The placeholders of ``text``, or None when it needs Jinja itself."""
        if "{%" in text or "{#" in text or "\r" in text:  # Jinja also rewrites line ends
            return None
        parts = _SIMPLE.split(text)
        literals = parts[::2]
        if any("{{" in lit or "}}" in lit for lit in literals):
            return None
        # "{{{ a }}": Jinja's lexer starts the expression at the first "{{"
        if any(lit.endswith("{") for lit in literals[:-1]):
            return None
        if not all(_in_context(name) for name in parts[1::2]):
            return None
        return cls(text, parts)

    def render(self, ctx: Mapping[str, Any]) -> str:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        out = parts[:]
        for i in range(1, len(parts), 2):
            try:
                value = _resolve(ctx, parts[i])
            except RenderError as exc:
                exc.line = "".join(parts[:i]).count("\n") + 1
                raise
            out[i] = value if type(value) is str else str(value)
        return "".join(out)


def _in_context(dotted: str) -> bool:
    """Whether Jinja reads the first name of ``dotted`` from the render context."""
    return dotted.partition(".")[0] not in _NOT_CONTEXT


#: Objects whose every attribute Jinja's sandbox calls internal (see jinja2.sandbox).
_INTERNAL = (types.CodeType, types.TracebackType, types.FrameType, types.GeneratorType,
             types.CoroutineType, types.AsyncGeneratorType)


def _attribute_names(cls: type) -> frozenset[str] | None:
    """Every name ``getattr`` can answer on an instance of ``cls``, if the class alone says.

    True of dicts, lists, scalars and slotted classes such as LineDict; None for classes
    whose instances have a ``__dict__``, a ``__getattr__`` or a Python ``__getattribute__``.
    """
    if cls.__dictoffset__ or hasattr(cls, "__getattr__") or any(
            isinstance(k.__dict__.get("__getattribute__"), types.FunctionType)
            for k in cls.__mro__):
        return None
    return frozenset().union(*(k.__dict__ for k in cls.__mro__))  # where getattr looks


_NAMES: dict[type, frozenset[str] | None] = {}


def _resolve(ctx: Mapping[str, Any], dotted: str) -> Any:
    """The value of ``a.b.c`` in ``ctx``, looked up as Jinja does it.

    Raises:
        RenderError: a name is undefined (Jinja's StrictUndefined fails there too).
        _Unsure: the answer depends on the Jinja environment.
    """
    parts = dotted.split(".")
    try:
        obj = ctx[parts[0]]
    except KeyError:
        raise _Unsure from None  # Jinja looks in its globals (range, dict, ...) next
    for i in range(1, len(parts)):
        obj = _getattr(obj, parts[i], parts, i)
    return obj


def _getattr(obj: Any, name: str, parts: list[str], i: int) -> Any:
    """``obj.name`` by Jinja's ``Environment.getattr``: the attribute, else the item.

    That rule is the same in every Jinja environment, sandboxed or not, except when
    the attribute exists and the sandbox could refuse it: a method or other callable
    (``{{ web.items }}`` is ``dict.items``, not the key ``items``), a name starting
    with ``_``, or an attribute of a callable or of an internal object. There the
    fast path raises :class:`_Unsure` and Jinja's environment decides.
    """
    cls = type(obj)
    try:
        names = _NAMES[cls]
    except KeyError:
        names = _NAMES[cls] = _attribute_names(cls)
    if names is not None and name not in names:  # the hot path: no attribute can answer
        try:
            return obj[name]
        except (TypeError, LookupError):
            raise _undefined(parts, i) from None
    try:
        value = getattr(obj, name)
    except AttributeError:
        try:
            return obj[name]
        except (TypeError, LookupError):
            raise _undefined(parts, i) from None
    if name.startswith("_") or callable(value) or callable(obj) or isinstance(obj, _INTERNAL):
        raise _Unsure
    return value


def _undefined(parts: list[str], i: int) -> RenderError:
    dotted = ".".join(parts)
    return RenderError(f"'{'.'.join(parts[:i])}' has no attribute '{parts[i]}' in "
                       f"'{{{{ {dotted} }}}}'")


def _fail_if_undefined(value: Any, undefined: type) -> None:
    """Raise the UndefinedError of an undefined name in ``value``, or in a list, tuple or
    dict it holds (``{{ ['/bin/echo', nope] }}``): such a value is never half rendered."""
    if isinstance(value, undefined):
        value._fail_with_undefined_error()
    elif isinstance(value, (list, tuple)):
        for item in value:
            _fail_if_undefined(item, undefined)
    elif isinstance(value, dict):
        for key, item in value.items():
            _fail_if_undefined(key, undefined)
            _fail_if_undefined(item, undefined)


_UNSAFE = re.compile(r"access to attribute ('[^']*') of ('[^']*') object is unsafe\.?")


def _message(exc: BaseException) -> str:
    """The first line of a Jinja2 error; the sandbox's refusals say what was refused."""
    msg = (getattr(exc, "message", None) or str(exc)).split("\n")[0]
    if type(exc).__name__ == "SecurityError":  # jinja2.sandbox refused it
        if msg.startswith(("template builds", "template computes")):  # _bounded_environment
            return msg
        unsafe = _UNSAFE.fullmatch(msg)
        if unsafe:
            msg = (f"template tries to access an unsafe attribute {unsafe[1]} of a "
                   f"{unsafe[2]} object")
        return f"{msg} (templates cannot run Python)"
    return msg


def _template_line(exc: BaseException) -> int | None:
    """The template line an exception was raised at, from its traceback."""
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return lineno
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

