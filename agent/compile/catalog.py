"""Recipes + attributes → the catalog: rendered, validated resources in convergence order.

Nothing here changes the host. Every error is a TrueupError naming the recipe
file and line, raised before the first change.
"""

from __future__ import annotations

import contextlib
import heapq
import math
from collections.abc import Callable
from typing import Any

from agent.compile import loops
from agent.compile.loader import Recipe
from agent.compile.nodes import Catalog, Excluded, Node
from agent.compile.phases import refuse_baked_reads, source_reads, strings_in
from agent.compile.render import Renderer, RenderError
from agent.compile.yamlfile import LineDict
from agent.errors import TrueupError, did_you_mean
from agent.model import Location
from agent.resources import Context, Field, Resource, Spec, kind_class, load_all

PHASES = {"bake": ("bake", "any"), "boot": ("boot", "any"), "all": ("bake", "boot", "any")}
# A sensitive resource's render errors name the field and line, never the value's text
# (a Jinja message quotes the expression, and a literal in it can be the secret).
HIDDEN_DETAILS = "details hidden: the resource is sensitive"
HIDDEN_RENDER_ERROR = f"cannot be rendered ({HIDDEN_DETAILS})"
#: Fields the compiler consumes itself (agent.compile.loops): never part of a spec.
COMPILE_ONLY = frozenset({"loop", "when"})


def _check_type(key: str, value: Any, fld: Field) -> Any:
    """The value converted to the field's type, or ValueError saying what is allowed."""
    types = fld.types
    if isinstance(value, bool) and bool not in types:
        pass  # True is an int in Python, never in a recipe
    elif isinstance(value, types):
        if fld.choices and value not in fld.choices:
            raise ValueError(f"{key} must be one of {', '.join(map(str, fld.choices))}, "
                             f"not {value!r}")
        return value
    if isinstance(value, str):
        if int in types and value.strip().lstrip("-").isdigit():
            return int(value)
        if float in types:
            try:
                return float(value)
            except ValueError:
                pass
        if bool in types and value in ("True", "False", "true", "false"):
            return value in ("True", "true")
    names = " or ".join({str: "a string", int: "an integer", float: "a number",
                         bool: "true or false", list: "a list", dict: "a mapping"}[t]
                        for t in types)
    raise ValueError(f"{key} must be {names}, not {type(value).__name__} {value!r}")


#: Fields whose strings may hold a NUL character: file content, template variables.
NUL_ALLOWED = frozenset({"content", "variables"})


def _check_value(key: str, value: Any) -> Any:
    """``value`` if the system can take it: no NUL character (paths, argv, names cannot
    hold one), a retry delay that ends. ValueError otherwise."""
    if key == "retry_delay" and not math.isfinite(value):
        raise ValueError(f"retry_delay must be a finite number of seconds, not {value}")
    if key not in NUL_ALLOWED and _holds_nul(value):
        raise ValueError(f"{key} holds a NUL character (\\0), which no path, name or "
                         "command argument can hold")
    surrogate = _lone_surrogate(value)
    if surrogate:
        raise ValueError(f"{key} holds {surrogate}")
    return value


def _lone_surrogate(value: Any) -> str:
    """"a lone surrogate (U+D800), which is not text" for the first string in ``value``
    (a template's ``'\\ud800'``) that cannot be written as UTF-8; "" when there is none."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"a lone surrogate (U+{ord(value[exc.start]):04X}), which is not text "
                    "and cannot be written as UTF-8")
        return ""
    if isinstance(value, list):
        return next((found for v in value if (found := _lone_surrogate(v))), "")
    if isinstance(value, dict):
        return next((found for k, v in value.items()
                     if (found := _lone_surrogate(k) or _lone_surrogate(v))), "")
    return ""


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return False


def compile_catalog(recipes: list[Recipe], renderer: Renderer,
                    make_context: Callable[[Recipe], Context], phase: str = "all") -> Catalog:
    """Render and validate every resource of ``recipes``; order them; check references.

    ``loop:`` makes one resource per item and ``when:`` keeps a resource (or a recipe)
    out: each one kept out is listed in ``Catalog.excluded`` (agent.compile.loops).
    """
    nodes: list[Node] = []
    by_ident: dict[str, Node] = {}
    excluded: list[Excluded] = []
    wanted = PHASES[phase]
    for recipe in recipes:
        ctx = make_context(recipe)
        if recipe.when is not None and not _holds(recipe.when, renderer, recipe.file,
                                                  recipe.when_line, False):
            excluded.append(Excluded(f"recipe:{recipe.name}",
                                     Location(recipe.file, recipe.when_line),
                                     _reason(recipe.when)))
            excluded += _names_of(recipe, renderer)
            continue
        for pos, item in enumerate(recipe.resources):
            line = recipe.resources.lines[pos]
            kind, cls, item_phase = _shape(recipe, item, line)
            if item_phase not in wanted:
                continue
            if item_phase == "bake":
                _refuse_baked_source(recipe, item, line, kind, renderer)
            hide = _hides_values(item)
            for scope, about in _scopes(recipe, item, line, renderer, hide):
                scoped = renderer if scope is None else renderer.scoped(scope)
                if "when" in item and not _holds(item["when"], scoped, recipe.file,
                                                 item.lines["when"], hide):
                    excluded.append(Excluded(_name_or_raw(item[kind], kind, scoped),
                                             Location(recipe.file, line),
                                             _reason(item["when"], about)))
                    continue
                item_ctx = ctx if scope is None else _scoped_context(ctx, scoped)
                node = _compile_one(recipe, item, line, item_ctx, scoped, len(nodes), kind, cls,
                                    item_phase)
                node.item = about
                twin = by_ident.get(node.ident)
                if twin is not None:
                    raise _duplicate(node, twin, recipe.file, line)
                by_ident[node.ident] = node
                nodes.append(node)
    _resolve(nodes, by_ident, phase == "all", {e.ident for e in excluded})
    return Catalog(_order(nodes, by_ident), by_ident, excluded)


def boot_subset(catalog: Catalog, baked: dict[str, str]) -> tuple[Catalog, list[str]]:
    """A boot run on a baked image: boot and any resources, plus the baked ones whose
    input digest is not the one in the bake manifest (``baked``: ident → digest).

    Returns the smaller catalog and the idents that "left the image".
    """
    from agent.compile.phases import input_digest

    keep: list[Node] = []
    left: list[str] = []
    for node in catalog.nodes:
        if node.phase != "bake":
            keep.append(node)
        elif baked.get(node.ident) != input_digest(node.res):
            keep.append(node)
            left.append(node.ident)
    keep.sort(key=lambda n: n.index)
    by_ident = {n.ident: n for n in keep}
    _resolve(keep, by_ident, False)
    return Catalog(_order(keep, by_ident), by_ident, catalog.excluded), left


def _duplicate(node: Node, twin: Node, file: str, line: int) -> TrueupError:
    """Two declarations render to one identity: name both (and their loop items)."""
    if node.item and twin.item and twin.loc == node.loc:
        return TrueupError(f"duplicate resource {node.ident}: {twin.item} and {node.item} of "
                           "this loop both render to that name; make each item's name "
                           "unique (use item in the name)", file, line)
    this = f" ({node.item})" if node.item else ""
    that = f" ({twin.item})" if twin.item else ""
    return TrueupError(f"duplicate resource {node.ident}{this}: already declared at "
                       f"{twin.loc}{that}; declare it once (merge the fields)", file, line)


def _shape(recipe: Recipe, item: Any, line: int) -> tuple[str, type[Resource], str]:
    """The kind, class and phase of a declaration, checked before anything is rendered
    (so ``validate`` finds a misspelt field even in a resource a condition keeps out)."""
    file = recipe.file
    if not isinstance(item, LineDict) or not item:
        raise TrueupError("each resource is a mapping that starts with '<type>: <name>', "
                          "e.g. '- file: /etc/motd'", file, line)
    kind = next(iter(item))
    cls = kind_class(kind) if isinstance(kind, str) else None
    if cls is None:
        kinds = sorted(load_all())
        raise TrueupError(f"unknown resource type {kind!r}{did_you_mean(str(kind), kinds)}; "
                          f"types: {', '.join(kinds)} (the first key of a resource names "
                          "its type)", file, line)
    for key in item:
        if key != kind and key not in cls.SPEC_FIELDS:
            allowed = sorted(cls.SPEC_FIELDS)
            raise TrueupError(f"unknown field {key!r} for {kind}{did_you_mean(str(key), allowed)}; "
                              f"allowed: {', '.join(allowed)}", file, item.lines[key])
    phase = item.get("phase") or recipe.phase or "any"
    if phase not in ("bake", "boot", "any"):
        raise TrueupError(f"phase must be bake, boot or any, not {phase!r}", file,
                          item.lines.get("phase", line))
    return kind, cls, phase


def _refuse_baked_source(recipe: Recipe, item: LineDict, line: int, kind: str,
                         renderer: Renderer) -> None:
    """A bake-phase declaration must not read secrets or EC2 facts, found in its source:
    a branch that is false on this machine counts too."""
    for key, value in item.items():
        for text in strings_in(value):
            for what, _ in source_reads(renderer, text):
                refuse_baked_reads(f"{kind}:{item[kind]}", what, recipe.file,
                                   item.lines.get(key, line))


def _scopes(recipe: Recipe, item: LineDict, line: int, renderer: Renderer,
            hide: bool) -> list[tuple[dict[str, Any] | None, str]]:
    """The names each copy of a declaration renders with: one copy without ``loop``,
    else one per item (``item``, ``loop_index``), each with its description."""
    if "loop" not in item:
        return [(None, "")]
    at = item.lines["loop"]
    try:
        items = loops.loop_items(item["loop"], renderer)
    except (RenderError, loops.LoopError) as exc:
        raise TrueupError(_loop_message("loop", exc, hide), recipe.file, at) from None
    return [({"item": value, "loop_index": i}, loops.describe_item(i, value, hide))
            for i, value in enumerate(items)]


def _holds(raw: Any, renderer: Renderer, file: str, line: int, hide: bool) -> bool:
    try:
        return loops.condition(raw, renderer)
    except (RenderError, loops.LoopError) as exc:
        raise TrueupError(_loop_message("when", exc, hide), file, line) from None


def _loop_message(key: str, exc: Exception, hide: bool) -> str:
    if hide:  # the message may quote the value
        return f"{key} {HIDDEN_RENDER_ERROR}" if isinstance(exc, RenderError) else \
            f"{key} gives no usable value ({HIDDEN_DETAILS})"
    return str(exc) if isinstance(exc, loops.LoopError) else f"{key}: {exc}"


def _reason(raw: Any, about: str = "") -> str:
    text = raw if isinstance(raw, str) else str(raw).lower()
    return f"when: {text} is false" + (f" for {about}" if about else "")


def _name_or_raw(raw: Any, kind: str, renderer: Renderer) -> str:
    """The identity a kept-out resource would have had; its name unrendered when that
    name cannot be rendered (a condition often guards exactly that)."""
    text = str(raw)
    with contextlib.suppress(RenderError):
        text = renderer.string(text)
    return f"{kind}:{text}"


def _names_of(recipe: Recipe, renderer: Renderer) -> list[Excluded]:
    """Every resource of a recipe kept out by its ``when`` (a loop counts once)."""
    out = []
    for pos, item in enumerate(recipe.resources):
        if isinstance(item, LineDict) and item:
            kind = next(iter(item))
            out.append(Excluded(_name_or_raw(item[kind], str(kind), renderer),
                                Location(recipe.file, recipe.resources.lines[pos]),
                                f"recipe {recipe.name} kept out by its when"))
    return out


def _scoped_context(ctx: Context, renderer: Renderer) -> Context:
    """``ctx`` whose templates also see the loop's names."""
    return Context(ctx.recipe_dir, ctx.recipe, renderer.file, ctx.backups, ctx.system,
                   ctx.fact_host, ctx.diffs)


def _compile_one(recipe: Recipe, item: LineDict, line: int, ctx: Context, renderer: Renderer,
                 index: int, kind: str, cls: type[Resource], phase: str) -> Node:
    file = recipe.file
    raw_name = item[kind]
    if isinstance(raw_name, (int, float)) and not isinstance(raw_name, bool):
        raw_name = str(raw_name)
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise TrueupError(f"{kind} needs a name: '- {kind}: <name>'", file, line)
    if "\0" in raw_name:
        raise TrueupError(f"{kind} name holds a NUL character (\\0), which no path or name "
                          "can hold", file, line)
    given: dict[str, Any] = {}  # the recipe's values, rendered and typed
    boot = renderer.boot
    mark = boot.mark() if boot is not None else None
    hide = _hides_values(item)
    try:
        name = renderer.string(raw_name)
        if "\0" in name:  # rendered from "{{ '\\x00' }}"
            raise TrueupError(f"{kind} name holds a NUL character (\\0), which no path or "
                              "name can hold", file, line)
        surrogate = _lone_surrogate(name)
        if surrogate:
            raise TrueupError(f"{kind} name holds {surrogate}", file, line)
        for key, value in item.items():
            if key == kind or key in COMPILE_ONLY:
                continue
            fld = cls.SPEC_FIELDS[key]
            try:
                if isinstance(value, str) and (list in fld.types or dict in fld.types):
                    rendered = renderer.native(value)  # "{{ attributes.pkgs }}" → the list
                else:
                    rendered = renderer.value(value)
            except RenderError as exc:
                message = f"{key} {HIDDEN_RENDER_ERROR}" if hide else str(exc)
                raise TrueupError(message, file, item.lines[key]) from None
            if rendered is None:
                continue
            try:
                given[key] = _check_value(key, _check_type(key, rendered, fld))
            except ValueError as exc:
                message = str(exc)
                if hide:  # "backup must be true or false, not str 'x'": no value
                    message = message.partition(", not ")[0] + f" ({HIDDEN_DETAILS})"
                raise TrueupError(message, file, item.lines[key]) from None
    except RenderError as exc:  # the name
        message = f"the name {HIDDEN_RENDER_ERROR}" if hide else str(exc)
        raise TrueupError(message, file, line) from None
    for key, fld in cls.FIELDS.items():
        if fld.required and key not in given:
            raise TrueupError(f"{kind} {name!r} needs the field {key!r} ({fld.doc})", file, line)
    state = given.get("state")
    if state is not None and state not in cls.STATES:
        raise TrueupError(f"state of {kind} must be one of {', '.join(cls.STATES)}, "
                          f"not {state!r}", file, item.lines.get("state", line))

    spec = cls.make_spec(given)
    try:
        res = _build(cls, name, spec, ctx)
        if boot is not None:
            overrides = boot.settle(res, mark)
            if overrides:  # it holds a secret: built again from the spec that says so
                spec = spec.replace(**overrides)
                res = _build(cls, name, spec, ctx)
    except RenderError as exc:
        template = getattr(exc, "file", None)  # a template file: its own line
        message = str(exc)
        if hide:
            message = f"{'template' if template else kind} {HIDDEN_RENDER_ERROR}"
        raise TrueupError(message, template or file, exc.line if template else line) from None
    except (ValueError, OSError) as exc:
        key = getattr(exc, "field", None)
        raise TrueupError(str(exc), file, item.lines.get(key, line)) from None

    source = getattr(res, "source_path", None)
    if phase == "bake" and source:
        _refuse_template_reads(res.ident, source, renderer)

    guards: dict[str, list[str] | None] = {}
    for guard in ("only_if", "not_if"):
        argv = spec[guard]
        if argv is not None and (not argv or not all(isinstance(a, (str, int, float))
                                                     for a in argv)):
            raise TrueupError(f"{guard} takes an argv list such as [test, -f, /etc/x]; "
                              "for a shell snippet write [/bin/sh, -c, '...']",
                              file, item.lines[guard])
        guards[guard] = None if argv is None else [str(a) for a in argv]
    return Node(res=res, loc=Location(file, line), index=index, recipe=recipe.name,
                phase=phase,
                requires=[_ident(r, file, item.lines.get("requires", line))
                          for r in _as_list(spec["requires"])],
                notify=[_split_action(n) for n in _as_list(spec["notify"])],
                subscribe=[_split_action(s) for s in _as_list(spec["subscribe"])],
                immediately=bool(spec["immediately"]),
                only_if=guards["only_if"], not_if=guards["not_if"],
                retries=max(0, int(spec["retries"])),
                retry_delay=max(0.0, float(spec["retry_delay"])),
                ignore_failure=bool(spec["ignore_failure"]),
                lines=item.lines, raw=item)


def _refuse_template_reads(ident: str, path: str, renderer: Renderer) -> None:
    """A baked template file must not read secrets or EC2 facts anywhere in its source."""
    from agent.host import files

    try:
        text = files.read_text(path, files.MAX_SOURCE_BYTES)
    except (OSError, UnicodeDecodeError):
        return  # rendering it already succeeded; nothing more to learn here
    for what, lineno in source_reads(renderer, text):
        refuse_baked_reads(ident, what, path, lineno)


def _hides_values(item: LineDict) -> bool:
    """Whether the resource declares ``sensitive`` (templated counts: it may be true)."""
    return item.get("sensitive") not in (None, False, "false", "False")


def _build(cls: type[Resource], name: str, spec: Spec, ctx: Context) -> Resource:
    """The resource of ``spec``, validated and prepared (sources read, templates rendered)."""
    res = cls(name, spec, ctx)
    res.validate()
    res.prepare()
    return res


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _ident(text: str, file: str, line: int) -> str:
    kind, sep, name = text.partition(":")
    if not sep or not kind or not name:
        raise TrueupError(f"{text!r} is not a resource reference; write type:name, "
                          "e.g. package:nginx", file, line)
    return text


def _split_action(text: str) -> tuple[str, str]:
    """'service:nginx restart' → ('service:nginx', 'restart'); no action → ''."""
    head, sep, tail = text.rpartition(" ")
    if sep and ":" in head and tail.isidentifier():
        return head.strip(), tail
    return text.strip(), ""


def _resolve(nodes: list[Node], by_ident: dict[str, Node], strict: bool,
             excluded: set[str] | frozenset[str] = frozenset()) -> None:
    """Check that every reference names a declared resource and a known action.

    A reference to a resource a ``when:`` kept out (``excluded``) is dropped, as one
    to a resource of another phase is when a single phase runs.
    """
    for node in nodes:
        node.requires = [r for r in node.requires
                         if _target(node, r, "requires", by_ident, strict, excluded)]
        notify = []
        for ident, action in node.notify:
            tgt = _target(node, ident, "notify", by_ident, strict, excluded)
            if tgt is not None:
                notify.append((ident, _action(node, tgt.res, action, "notify")))
        node.notify = notify
        node.subscribe = [(ident, _action(node, node.res, action, "subscribe"))
                          for ident, action in node.subscribe
                          if _target(node, ident, "subscribe", by_ident, strict, excluded)]


def _line(node: Node, key: str) -> int:
    return node.lines.get(key, node.loc.line)


def _target(node: Node, ident: str, key: str, by_ident: dict[str, Node],
            strict: bool, excluded: set[str] | frozenset[str] = frozenset()) -> Node | None:
    found = by_ident.get(ident)
    if found is None and strict and ident not in excluded:
        raise TrueupError(f"{key} {ident!r} names no declared resource"
                          f"{did_you_mean(ident, list(by_ident))}", node.loc.file, _line(node, key))
    return found


def _action(node: Node, res: Resource, action: str, key: str) -> str:
    file, line = node.loc.file, _line(node, key)
    if not res.ACTIONS:
        raise TrueupError(f"{res.kind} resources take no notifications, so {key} cannot "
                          f"target {res.ident}", file, line)
    if not action:
        return res.ACTIONS[0]
    if action not in res.ACTIONS:
        raise TrueupError(f"{res.ident} has no action {action!r}; actions: "
                          f"{', '.join(res.ACTIONS)}", file, line)
    return action


def _order(nodes: list[Node], by_ident: dict[str, Node]) -> list[Node]:
    """Declaration order, except where requires/subscribe/notify say otherwise."""
    after: dict[int, list[Node]] = {n.index: [] for n in nodes}   # n → those that wait for n
    waiting: dict[int, int] = {n.index: 0 for n in nodes}

    def edge(first: Node, then: Node) -> None:
        after[first.index].append(then)
        waiting[then.index] += 1

    for node in nodes:
        for ident in node.requires:
            edge(by_ident[ident], node)
        for ident, _ in node.subscribe:
            edge(by_ident[ident], node)
        for ident, _ in node.notify:
            edge(node, by_ident[ident])
    for node in nodes:
        node.dependents = after[node.index]

    ready = [(n.index, n) for n in nodes if waiting[n.index] == 0]
    heapq.heapify(ready)
    ordered: list[Node] = []
    while ready:
        _, node = heapq.heappop(ready)
        ordered.append(node)
        for nxt in after[node.index]:
            waiting[nxt.index] -= 1
            if waiting[nxt.index] == 0:
                heapq.heappush(ready, (nxt.index, nxt))
    if len(ordered) != len(nodes):
        raise _cycle_error([n for n in nodes if waiting[n.index] > 0], after)
    return ordered


def _cycle_error(stuck: list[Node], after: dict[int, list[Node]]) -> TrueupError:
    """Name one cycle among the resources that could not be ordered."""
    stuck_ids = {n.index for n in stuck}
    before: dict[int, Node] = {}  # each stuck node waits for at least one stuck node
    for node in stuck:
        for nxt in after[node.index]:
            if nxt.index in stuck_ids:
                before.setdefault(nxt.index, node)
    path: list[Node] = []
    seen: dict[int, int] = {}
    node = stuck[0]
    while node.index not in seen:
        seen[node.index] = len(path)
        path.append(node)
        node = before[node.index]
    cycle = list(reversed(path[seen[node.index]:]))
    first = min(range(len(cycle)), key=lambda i: cycle[i].index)  # start at the first declared
    cycle = cycle[first:] + cycle[:first]
    cycle.append(cycle[0])
    chain = " -> ".join(f"{n.ident} ({n.loc})" for n in cycle)
    first = cycle[0]
    return TrueupError(f"dependency cycle: {chain}; remove one of these requires/notify/"
                       "subscribe relations", first.loc.file, first.loc.line)
