"""Jinja2 rendering of recipe values and template files, with undefined names as errors.

Plain strings pass through untouched and ``{{ dotted.name }}`` placeholders are
resolved without Jinja (the common case, and a hot path); anything else is
compiled once by Jinja2 and cached.

Jinja2 runs sandboxed (``jinja2.sandbox.SandboxedEnvironment``): a template can use
filters, tests, loops, ``secret()`` and the methods of plain values, but not Python's
internals (``__class__``, ``__globals__``, ``mro`` …), so a recipe or a template cannot
run Python; reaching for them is an error naming the attribute.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from agent.errors import RenderError, TrueupError
from agent.host import files

_SIMPLE = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}")


class Renderer:
    """Renders strings and template files over ``attributes``, ``facts`` and helpers."""

    def __init__(self, attributes: Mapping[str, Any], facts: Any,
                 functions: Mapping[str, Callable[..., Any]] | None = None,
                 boot: Any = None) -> None:
        self.boot = boot  # compile.phases.BootReads: which values read secrets or EC2 facts
        self.context: dict[str, Any] = {"attributes": attributes, "facts": facts}
        self.context.update(functions or {})
        self._env: Any = None
        self._compiled: dict[str, Any] = {}
        self._files: dict[str, Any] = {}

    # --- values in recipes --------------------------------------------------------

    def value(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        """Render every string inside ``value`` (str, list or dict), recursively."""
        if isinstance(value, str):
            return self.string(value, extra) if "{" in value else value
        if isinstance(value, list):
            return [self.value(v, extra) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v, extra) for k, v in value.items()}
        return value

    def string(self, text: str, extra: Mapping[str, Any] | None = None) -> str:
        if "{{" not in text and "{%" not in text and "{#" not in text:
            return text
        ctx = self.context if not extra else {**self.context, **extra}
        template = self._compiled.get(text)
        if template is None:
            template = _Placeholders.parse(text)
            if template is None:
                try:
                    template = self.env().from_string(text)
                except Exception as exc:  # jinja2.TemplateSyntaxError
                    raise RenderError(f"template syntax error: {_message(exc)} in {text!r}") \
                        from None
            self._compiled[text] = template
        try:
            return template.render(ctx)
        except RenderError:
            raise
        except Exception as exc:
            raise RenderError(f"{_message(exc)} in {text!r}") from None

    def native(self, text: str) -> Any:
        """The value of a string that is one ``{{ expression }}``, not its text.

        ``names: "{{ attributes.base.packages }}"`` gives the list itself.
        """
        inner = text.strip()
        if not (inner.startswith("{{") and inner.endswith("}}")) or inner.count("{{") != 1:
            return self.string(text)
        expr = inner[2:-2].strip()
        if _SIMPLE.fullmatch(inner):
            return _resolve(self.context, expr)
        try:
            compiled = self.env().compile_expression(expr, undefined_to_none=False)
            value = compiled(self.context)
            _fail_if_undefined(value, self._env.undefined)
            return value
        except RenderError:
            raise
        except Exception as exc:
            raise RenderError(f"{_message(exc)} in {text!r}") from None

    # --- template files ------------------------------------------------------------

    def file(self, path: str, variables: Mapping[str, Any] | None = None) -> str:
        """Render the template file at ``path``; ``variables`` are top-level names too."""
        template = self._files.get(path)
        if template is None:
            try:
                source = files.read_text(path, files.MAX_SOURCE_BYTES)
            except files.NotRegular as exc:  # a FIFO, device, link loop …; or too large
                raise RenderError(str(exc)) from None
            except FileNotFoundError:
                raise RenderError("template file not found") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise RenderError(f"cannot read template: {exc}") from None
            template = _Placeholders.parse(source)
            if template is None:
                try:
                    template = self.env().from_string(source)
                except Exception as exc:
                    raise RenderError(f"template syntax error: {_message(exc)}",
                                      getattr(exc, "lineno", None)) from None
            self._files[path] = template
        ctx = dict(self.context)
        if variables:
            ctx.update(variables)
            ctx["variables"] = variables
        try:
            return template.render(ctx)
        except RenderError:
            raise
        except Exception as exc:
            raise RenderError(_message(exc), _template_line(exc)) from None

    def env(self) -> Any:
        """The Jinja2 environment: sandboxed, strict about undefined names, no escaping."""
        if self._env is None:
            import jinja2
            from jinja2.sandbox import SandboxedEnvironment

            self._env = SandboxedEnvironment(
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
                autoescape=False,  # noqa: S701 - renders config files, not HTML
            )
        return self._env


class _Placeholders:
    """A template that only substitutes ``{{ dotted.name }}``: rendered without Jinja.

    The output is what Jinja would print for the same text.
    """

    __slots__ = ("parts",)

    def __init__(self, parts: list[str]) -> None:
        self.parts = parts  # literal, name, literal, name, …, literal

    @classmethod
    def parse(cls, text: str) -> _Placeholders | None:
        if "{%" in text or "{#" in text or "\r" in text:  # Jinja also rewrites line ends
            return None
        parts = _SIMPLE.split(text)
        if any("{{" in lit or "}}" in lit for lit in parts[::2]):
            return None
        return cls(parts)

    def render(self, ctx: Mapping[str, Any]) -> str:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        out = parts[:]
        for i in range(1, len(parts), 2):
            try:
                out[i] = _lookup(ctx, parts[i])
            except RenderError as exc:
                exc.line = "".join(parts[:i]).count("\n") + 1
                raise
        return "".join(out)


def _lookup(ctx: Mapping[str, Any], dotted: str) -> str:
    obj = _resolve(ctx, dotted)
    if isinstance(obj, str):
        return obj
    return "None" if obj is None else str(obj)


def _resolve(ctx: Mapping[str, Any], dotted: str) -> Any:
    parts = dotted.split(".")
    try:
        obj = ctx[parts[0]]
    except KeyError:
        raise RenderError(f"'{parts[0]}' is undefined in '{{{{ {dotted} }}}}'") from None
    for i, part in enumerate(parts[1:], 1):
        if isinstance(obj, Mapping):
            if part in obj:
                obj = obj[part]
                continue
        else:
            try:
                obj = getattr(obj, part)
                continue
            except AttributeError:
                pass
        where = ".".join(parts[:i])
        raise RenderError(f"'{where}' has no attribute '{part}' in '{{{{ {dotted} }}}}'")
    return obj


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


def render_error(exc: RenderError, file: str, line: int | None) -> TrueupError:
    """A RenderError as the user sees it, pointing at ``file`` and ``line``."""
    return TrueupError(str(exc), file, exc.line or line)
