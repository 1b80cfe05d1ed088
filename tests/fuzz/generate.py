"""A seeded generator of hostile bundles: each case is a bundle folder that trueup must refuse
cleanly (exit 1, one error line, nothing changed) or converge (exit 0/2/4/6) without a traceback.

``generate(seed, index, root)`` writes case ``index`` of ``seed`` under ``root`` and returns
its :class:`Case`; the same seed and index always give the same bundle. Every resource a
case declares writes only under the case's ``target`` folder (the bundle's attribute
``root``), so "changed nothing" is a snapshot of that folder before and after. Cases that
declare system kinds (package, service, user, group, cron, sysctl) are marked ``system``:
they are validated and planned, never run, so the fuzz never changes this machine. Commands
that a case may run (``run``, ``only_if``, ``not_if``, ``verify``) are harmless: they exit,
print, or write under the target.

Categories (see :data:`CATEGORIES`): valid bundles, system kinds, malformed YAML, wrong
field types for every kind, unknown kinds and fields, alias bombs and deep nesting, bytes
that are not UTF-8, hostile templates (syntax, undefined names, sandbox escapes), odd files
(FIFO, symlink loop, /dev/zero, a folder where a file belongs, empty and 2 MB files), run
lists, dependency graphs, attribute files and flags, and bundle tarballs.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import socket
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.compile.loader import MAX_DEPENDS_DEPTH
from agent.host.files import MAX_TEXT_BYTES
from agent.resources import COMMON_FIELDS, Field, Resource, load_all

#: Kinds whose examples never converge in one run by design: a reboot kind asks for a
#: reboot (exit 194) and the run after the reboot converges. Tested in tests/test_reboot.py.
NOT_FUZZED = frozenset({"reboot"})
KINDS: dict[str, type[Resource]] = {k: cls for k, cls in load_all().items()
                                    if k not in NOT_FUZZED}
FILE_KINDS = sorted(k for k, cls in KINDS.items() if not cls.SYSTEM and cls.EXAMPLES)
SYSTEM_KINDS = sorted(k for k, cls in KINDS.items() if cls.SYSTEM and cls.EXAMPLES)
FIRST = "written before the bad part?\n"


@dataclass
class Case:
    """One generated bundle and how to run it."""

    seed: int
    index: int
    category: str
    label: str           # category:variant, counted in the summaries
    detail: str          # what exactly was generated (kind, field, value …)
    root: Path           # the case's folder: bundle/, target/, state/, cwd/
    source: str          # SRC for run and plan: the bundle folder or a .tar.gz
    system: bool = False  # declares system kinds: validate and plan only, never run
    valid: bool = False   # must converge: run exits 0/2, a second run exits 0
    refused: bool = False  # over a documented limit: every command exits 1, one error line
    plan: bool = False    # plan it too (always for system cases)
    args: list[str] = field(default_factory=list)  # extra flags for validate, plan and run

    @property
    def bundle(self) -> Path:
        return self.root / "bundle"

    @property
    def target(self) -> Path:
        return self.root / "target"

    @property
    def name(self) -> str:
        return f"seed {self.seed} case {self.index} ({self.label})"

    def listing(self, limit: int = 1500) -> str:
        """The bundle's files, each with the start of its content, for a failure report."""
        lines = [f"{self.name}: {self.detail}", f"  source: {self.source}  args: {self.args}"]
        top = self.bundle if self.bundle.exists() else self.root
        for folder, dirs, names in os.walk(top):
            dirs.sort()
            for entry in sorted(dirs + names):
                path = os.path.join(folder, entry)
                rel = os.path.relpath(path, top)
                if os.path.islink(path):
                    lines.append(f"  {rel} -> {os.readlink(path)}")
                elif os.path.isdir(path):
                    if entry in names:  # a folder standing where a file belongs
                        lines.append(f"  {rel}/")
                elif os.path.isfile(path) and entry in names:
                    with open(path, "rb") as fh:
                        data = fh.read(limit + 1)
                    size = os.path.getsize(path)
                    shown = data[:limit].decode("utf-8", "backslashreplace")
                    more = f"\n    … ({size} bytes)" if size > limit else ""
                    lines.append(f"  {rel}:\n" + _indent(shown, "    ") + more)
                else:
                    lines.append(f"  {rel} (special file)")
        return "\n".join(lines)


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


# --- YAML pieces ----------------------------------------------------------------------

def ys(value: Any) -> str:
    """A YAML (JSON) snippet for a plain value.

    Characters beyond the BMP are written as themselves: YAML has no surrogate pairs, so
    JSON's "\\ud83d\\ude00" is an error there. YAML's line breaks (U+0085, U+2028, U+2029)
    and other unprintable characters are escaped.
    """
    text = json.dumps(value, ensure_ascii=False)
    return "".join(c if c.isprintable() or c in " " else f"\\u{ord(c):04x}" for c in text)


Pairs = list[tuple[str, str]]  # a resource as (key snippet, value snippet), keys may repeat


def item(pairs: Pairs, block: bool) -> str:
    """One resource of a ``resources:`` list, in flow or block style."""
    if not block:
        return "  - {" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}\n"
    lines = [f"{k}: {v}" for k, v in pairs]
    return "  - " + "\n    ".join(lines) + "\n"


# Values of the wrong type (or a hostile one of the right type), as YAML snippets. None
# of the strings is a command: some end up as argv or a shell snippet.
WRONG: list[str] = [
    "[1, 2]", "{a: 1}", "true", "false", "3.5", "~", "42", "-1", "0",
    "99999999999999999999999999999", "1e400", ".nan", ".inf", "-.inf", '"text"', '""', '" "',
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "!!binary aGVsbG8=", "!!set {a, b}",
    "!!omap [a: 1, b: 2]", "!!pairs [a: 1, a: 2]", "[[[]]]", "[~]", "{~: ~}", "0x1F", "0o17",
    "1_000", "0b101", "190:20:30", '"0644"', '"99999"', '"-5"', '"1e3"', '"true"', '"on"',
    '"\\ud800"', '"a\\0b"', '"\\x1b[31m"', '"\\u202e"', "!!str", "!!int 12", "!!float 1",
    "!!null ''", "!!bool yes", "=", "<<", "!!python/name:os.system", "!!python/object:os.stat",
    "!!int nope", "!!float nope", "!!timestamp nope", "!custom 1", "[1, [2, [3, [4]]]]",
    "{a: [1, {b: ~}]}", "!!binary '!!!'", '"' + "9" * 5000 + '"', "9" * 5000,
]


def wrong_value(rng: random.Random, fld: Field | None) -> str:
    """A value for ``fld`` that is most often of another type."""
    for _ in range(8):
        snippet = rng.choice(WRONG)
        if fld is None or rng.random() < 0.25:
            return snippet
        kind = _snippet_type(snippet)
        if kind is None or kind not in fld.types:
            return snippet
    return snippet


def _snippet_type(snippet: str) -> type | None:
    import yaml

    try:
        value = yaml.safe_load(f"v: {snippet}")["v"]
    except Exception:
        return None
    return type(value)


# --- the case being written ----------------------------------------------------------

@dataclass
class Draft:
    """What a category writes: recipes, templates, files, run list, attributes, odd files."""

    rng: random.Random
    root: Path
    recipes: dict[str, str | bytes] = field(default_factory=dict)
    templates: dict[str, str | bytes] = field(default_factory=dict)  # "recipe/rel" → content
    files: dict[str, str | bytes] = field(default_factory=dict)
    runlist: str | bytes | None = "app\n"
    attributes: str | bytes | None = None
    extra: dict[str, str | bytes] = field(default_factory=dict)  # bundle-relative files
    odd: list[tuple[str, ...]] = field(default_factory=list)     # (what, bundle-rel path, arg)
    setup: dict[str, str | bytes | None] = field(default_factory=dict)  # target tree
    links: dict[str, str] = field(default_factory=dict)                 # target-tree links
    modes: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    tarball: Callable[[Path, Path], None] | None = None  # (bundle, out) → writes the SRC
    valid: bool = False
    refused: bool = False  # over a documented limit: must be refused with one error line
    system: bool = False
    detail: str = ""
    n: int = 0
    used: set[tuple[str, str]] = field(default_factory=set)  # identities of examples

    def __post_init__(self) -> None:
        self.attributes = f"root: {ys(self.T)}\n"

    @property
    def T(self) -> str:  # noqa: N802 - the target folder, written everywhere
        return str(self.root / "target")

    def next(self) -> int:
        self.n += 1
        return self.n

    def base(self, templated: bool | None = None) -> str:
        """The resources every recipe starts with: a folder and a file in the target."""
        if templated is None:
            templated = self.rng.random() < 0.3
        root = "{{ attributes.root }}" if templated else self.T
        return ("description: fuzz case\nresources:\n"
                f"  - directory: {ys(root + '/new')}\n"
                f"  - file: {ys(root + '/new/first')}\n"
                f"    content: {ys(FIRST)}\n")

    def recipe(self, *items: str, name: str = "app", head: str = "") -> str:
        """recipe.yml text: ``head`` (top-level keys), the base resources, then ``items``."""
        text = head + self.base() + "".join(items)
        self.recipes[name] = text
        return text

    def example(self, kind: str, templated: bool = False) -> Pairs:
        """One of ``kind``'s EXAMPLES, under its own folder of the target, as pairs.

        Its ``_setup``/``_links``/``_modes`` prepare the target tree, its ``_templates``
        go into the recipe's templates/ folder. Names that are not paths get a suffix.
        """
        cls = KINDS[kind]
        example = self.rng.choice(cls.EXAMPLES)
        n = self.next()
        sub = f"ex{n}"
        root = "{{ attributes.root }}" if templated else self.T
        tmp = f"{root}/{sub}"
        self.setup[sub] = None
        for rel, content in example.get("_setup", {}).items():
            self.setup[f"{sub}/{rel}"] = content
        for rel, to in example.get("_links", {}).items():
            self.links[f"{sub}/{rel}"] = to.replace("{tmp}", f"{self.T}/{sub}")
        for rel, mode in example.get("_modes", {}).items():
            self.modes[f"{sub}/{rel}"] = mode
        for name, text in example.get("_templates", {}).items():
            self.templates[f"app/{name}"] = text
        pairs: Pairs = []
        for key, value in example.items():
            if key.startswith("_"):
                continue
            value = _fill(value, tmp)
            if key == kind and (kind, value) in self.used:
                value = f"{value}-{n}"  # command: stamp → stamp-3: one identity each
            if key == kind:
                self.used.add((kind, value))
            pairs.append((key, ys(value)))
        return pairs


def _fill(value: Any, tmp: str) -> Any:
    if isinstance(value, str):
        return value.replace("{tmp}", tmp)
    if isinstance(value, list):
        return [_fill(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, tmp) for k, v in value.items()}
    return value


# --- categories ----------------------------------------------------------------------

def cat_valid(d: Draft) -> str:
    """Bundles that must converge: examples of the file kinds, relations, big content."""
    rng = d.rng
    d.valid = True
    items = []
    kinds = [rng.choice(FILE_KINDS) for _ in range(rng.randint(1, 6))]
    block = rng.random() < 0.5
    for kind in kinds:
        items.append(item(d.example(kind, templated=rng.random() < 0.3), block))
    variant = rng.choice(["examples", "notify", "requires", "big", "unicode", "sensitive",
                          "existing", "empty-recipe"])
    if variant == "notify":
        n = d.next()
        items.append(item([("command", ys(f"notified-{n}")),
                           ("run", ys(["/bin/sh", "-c", f"echo x >> {d.T}/notified-{n}"])),
                           ("refresh_only", "true")], block))
        items.append(item([("file", ys(f"{d.T}/new/notifier-{n}")), ("content", ys("v\n")),
                           ("notify", ys(f"command:notified-{n} run"))], block))
    elif variant == "requires":
        n = d.next()
        items.append(item([("file", ys(f"{d.T}/new/late-{n}")), ("content", ys("late\n")),
                           ("requires", ys([f"file:{d.T}/new/early-{n}"]))], block))
        items.append(item([("file", ys(f"{d.T}/new/early-{n}")), ("content", ys("early\n"))],
                          block))
    elif variant == "big":
        # the largest stays well under the recipe file limit, with room for the examples
        size = rng.choice([10_000, 300_000, MAX_TEXT_BYTES - 64 * 1024])
        items.append(item([("file", ys(f"{d.T}/new/big")), ("content", ys("x" * size))], block))
        d.files["app/big.bin"] = bytes(rng.getrandbits(8) for _ in range(4096)) * 64
        items.append(item([("file", ys(f"{d.T}/new/big.bin")), ("source", ys("big.bin"))],
                          block))
    elif variant == "unicode":
        text = "".join(chr(rng.choice([0xE9, 0x4E2D, 0x1F600, 0x3B1, 0x5D0, 0x2028, 0x41]))
                       for _ in range(200))
        items.append(item([("file", ys(f"{d.T}/new/ünï-{d.next()}")), ("content", ys(text))],
                          block))
    elif variant == "sensitive":
        items.append(item([("file", ys(f"{d.T}/new/secret")), ("content", ys("pw=hunter2\n")),
                           ("sensitive", "true")], block))
    elif variant == "existing":
        d.setup["old.txt"] = "old\n"
        items.append(item([("file", ys(f"{d.T}/old.txt")),
                           ("state", ys(rng.choice(["absent", "present"])))], block))
    d.detail = f"{variant}: {', '.join(kinds)}"
    if variant == "empty-recipe":
        d.recipes["app"] = rng.choice(["", "resources: []\n", "description: nothing\n",
                                       "# only a comment\n", "---\n", "resources:\n"])
        d.detail = "empty recipe"
        return "valid:empty-recipe"
    d.recipe(*items)
    return f"valid:{variant}"


def cat_system(d: Draft) -> str:
    """System kinds, valid or with a wrong field: validated and planned only."""
    rng = d.rng
    d.system = True
    items = []
    wrong = rng.random() < 0.5
    chosen = rng.sample(SYSTEM_KINDS, rng.randint(1, 3))
    for kind in chosen:
        pairs = d.example(kind)
        if wrong:
            pairs = _mutate(d, kind, pairs)
        items.append(item(pairs, rng.random() < 0.5))
    if rng.random() < 0.5:
        items.append(item(d.example(rng.choice(FILE_KINDS)), True))
    d.recipe(*items)
    d.detail = f"{'wrong field' if wrong else 'valid'}: {', '.join(chosen)}; {d.detail}"
    return "system:wrong-type" if wrong else "system:valid"


def _mutate(d: Draft, kind: str, pairs: Pairs) -> Pairs:
    """``pairs`` with one field (or the name) set to a wrong value; notes it in detail."""
    rng = d.rng
    cls = KINDS[kind]
    fields = {**cls.FIELDS, **COMMON_FIELDS}
    key = rng.choice([kind, *fields])
    fld = fields.get(key)
    value = wrong_value(rng, fld)
    d.detail += f"{kind}.{key} = {value[:60]}; "
    out = [(k, v) for k, v in pairs if k != key]
    if key == kind:
        return [(kind, value), *out]
    out.append((key, value))
    return out


def cat_types(d: Draft) -> str:
    """A field of some kind (or its name) given a value of the wrong type."""
    rng = d.rng
    kind = rng.choice(SYSTEM_KINDS if rng.random() < 0.2 else FILE_KINDS)
    d.system = kind in SYSTEM_KINDS
    items = []
    for _ in range(rng.randint(1, 3)):
        pairs = _mutate(d, kind, d.example(kind))
        items.append(item(pairs, rng.random() < 0.5))
    d.recipe(*items)
    return f"types:{kind}"


def cat_unknown(d: Draft) -> str:
    """Unknown kinds, fields and recipe keys; resources that are not mappings."""
    rng = d.rng
    T = d.T
    variant = rng.choice(["kind", "field", "recipe-key", "not-a-mapping", "name",
                          "recipe-field-type"])
    if variant == "kind":
        kind = rng.choice(["flie", "FILE", "file ", "__class__", "_private", "resources",
                           "os.path", "../file", "Resource", "__init__", "REGISTRY", "kind_class",
                           "ファイル", "file\u200b", "1", "~", "null", "[file]", "{a: 1}",
                           "loop", "block", "s3_file", "download", "archive", "pip"])
        d.detail = f"kind {kind!r}"
        d.recipe(f"  - {kind}: {ys(T + '/x')}\n")
    elif variant == "field":
        kind = rng.choice(FILE_KINDS)
        pairs = d.example(kind)
        key = rng.choice(["contnet", "loop", "when", "__dict__", "__class__", "5", "~", "true",
                          "[a]", "{a: 1}", "? complex", "notify_", "Mode", "mode ", "ütf",
                          "item", "variables" if kind != "template" else "content"])
        pairs.append((key, ys("x")))
        d.detail = f"{kind} field {key!r}"
        d.recipe(item(pairs, rng.random() < 0.5))
    elif variant == "recipe-key":
        key = rng.choice(["resorces", "depend", "attribute", "Resources", "__class__", "1",
                          "~", "[x]"])
        d.detail = f"recipe key {key!r}"
        d.recipe(head=f"{key}: []\n")
    elif variant == "not-a-mapping":
        text = rng.choice(["  - hello\n", "  - [a, b]\n", "  - {}\n", "  - ~\n", "  - 42\n",
                           "  - - file: /x\n", "  - !!binary aGk=\n", "  - ''\n",
                           "  - [{file: /x}]\n"])
        d.detail = f"resource {text.strip()!r}"
        d.recipe(text)
    elif variant == "name":
        kind = rng.choice(FILE_KINDS + SYSTEM_KINDS)
        d.system = kind in SYSTEM_KINDS
        name = rng.choice(["", "~", '""', '" "', "[a]", "{a: 1}", "true", "1.5", "-0",
                           '"relative/path"', '"{{ }}"', '"{{ nope }}"', '"\\n"', "!!binary aGk=",
                           "2001-12-14", '"\\t/x"'])
        d.detail = f"{kind} name {name!r}"
        d.recipe(f"  - {kind}: {name}\n")
    else:
        key, value = rng.choice([("description", "[1, 2]"), ("description", "{a: 1}"),
                                 ("depends", "{a: 1}"), ("depends", "[1, 2]"),
                                 ("depends", "[[app]]"), ("attributes", "[1]"),
                                 ("attributes", '"text"'), ("resources", '"text"'),
                                 ("resources", "{a: 1}"), ("resources", "42"),
                                 ("phase", '"never"'), ("phase", "[bake]"), ("phase", "~"),
                                 ("description", "!!binary aGk="), ("depends", "~")])
        d.detail = f"recipe {key}: {value}"
        if key == "resources":
            d.recipes["app"] = f"resources: {value}\n"
        else:
            d.recipes["app"] = d.base().replace("description: fuzz case\n", f"{key}: {value}\n")
    return f"unknown:{variant}"


def _alias_bomb(levels: int, width: int) -> str:
    """Billion laughs: each level an anchor holding ``width`` aliases of the one before."""
    lines = ['  a0: &a0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _deep(rng: random.Random, depth: int, style: str) -> str:
    if style == "flow-list":
        return "[" * depth + "1" + "]" * depth
    if style == "flow-map":
        return "{a: " * depth + "1" + "}" * depth
    if style == "block-list":  # "- - - x" on one line nests sequences
        return "- " * depth + "x"
    lines = []  # block-map: one key per line, ever deeper
    for i in range(depth):
        lines.append("  " * i + "k:")
    lines.append("  " * depth + "v")
    return "\n".join(lines)


def cat_bomb(d: Draft) -> str:
    """YAML alias bombs, recursive anchors, deep nesting, very many resources or keys."""
    rng = d.rng
    T = d.T
    variant = rng.choice(["alias", "alias", "recursive-anchor", "deep", "deep", "wide",
                          "many-keys", "merge", "over-limit"])
    where = rng.choice(["recipe", "attributes"])
    if variant == "alias":
        levels, width = rng.randint(4, 9), rng.choice([9, 10])
        bomb = _alias_bomb(levels, width)
        d.detail = f"{levels} levels of {width} aliases in {where}"
        if where == "recipe":
            d.recipe(f"  - file: {ys(T + '/x')}\n    content: *a{levels}\n",
                     head=f"attributes:\n  bomb:\n{_indent(bomb, '  ')}\n")
        else:
            d.attributes = f"root: {ys(T)}\nbomb:\n{bomb}"
            d.recipe()
    elif variant == "recursive-anchor":
        text = rng.choice(["&a [*a]", "&a {x: *a}", "&a [1, [2, *a]]", "&a {<<: *a}"])
        d.detail = f"{text} in {where}"
        if where == "recipe":
            d.recipe(f"  - file: {ys(T + '/x')}\n    content: {text}\n")
        else:
            d.attributes = f"root: {ys(T)}\nloop: {text}\n"
            d.recipe()
    elif variant == "deep":
        depth = rng.choice([50, 100, 200, 500, 1000, rng.randint(50, 1000)])
        style = rng.choice(["flow-list", "flow-map", "block-list", "block-map"])
        deep = _deep(rng, depth, style)
        place = rng.choice(["value", "attributes", "resources", "top"])
        d.detail = f"{style} nested {depth} deep in {place}"
        if place == "value":
            if style.startswith("block"):
                d.recipe(f"  - file: {ys(T + '/x')}\n    content:\n{_indent(deep, '      ')}\n")
            else:
                d.recipe(f"  - file: {ys(T + '/x')}\n    content: {deep}\n")
        elif place == "attributes":
            sep = "\n" if style.startswith("block") else " "
            body = _indent(deep, "  ") if style.startswith("block") else deep
            d.attributes = f"root: {ys(T)}\ndeep:{sep}{body}\n"
            d.recipe()
        elif place == "resources":
            if style.startswith("block"):
                d.recipes["app"] = "resources:\n" + _indent(deep, "  ") + "\n"
            else:
                d.recipes["app"] = f"resources: {deep}\n"
        else:
            d.recipes["app"] = deep + "\n"
    elif variant == "wide":
        count = rng.choice([500, 1000, 3000])
        d.detail = f"{count} file resources"
        d.recipe(*(f"  - {{file: {ys(f'{T}/new/w{i}')}, content: {ys(str(i))}}}\n"
                   for i in range(count)))
        d.valid = True
    elif variant == "over-limit":  # a well-formed file one step over the size limit
        size = MAX_TEXT_BYTES + rng.choice([1, 64 * 1024, MAX_TEXT_BYTES])
        d.detail = f"{where} file with a {size:,}-character value (limit {MAX_TEXT_BYTES:,} B)"
        if where == "recipe":
            d.recipe(f"  - file: {ys(T + '/x')}\n    content: {ys('x' * size)}\n")
        else:
            d.attributes = f"root: {ys(T)}\nbig: {ys('x' * size)}\n"
            d.recipe()
        d.refused = True
    elif variant == "many-keys":
        count = rng.choice([10_000, 100_000])
        d.detail = f"{count} attribute keys"
        keys = "".join(f"  k{i}: {i}\n" for i in range(count))
        d.attributes = f"root: {ys(T)}\nmany:\n{keys}"
        d.recipe()
    else:
        text = rng.choice(["<<: 5", "<<: [1, 2]", "<<: *s", "<<: [*s]", "<<: 'str'",
                           "<<: *m", "<<: [*m, *m]", "<<: ~", "<<: {<<: 5}"])
        anchors = "x-scalar: &s 5\nx-map: &m {mode: '0644'}\n"
        d.detail = f"merge key {text!r}"
        if rng.random() < 0.5:
            d.recipe(f"  - file: {ys(T + '/x')}\n    {text}\n", head=f"attributes:\n"
                     f"{_indent(anchors, '  ')}\n")
        else:
            d.attributes = f"root: {ys(T)}\n{anchors}y:\n  {text}\n"
            d.recipe()
    return f"bomb:{variant}"


def cat_yaml(d: Draft) -> str:
    """Malformed YAML: syntax errors, tabs, control characters, duplicate keys, wrong
    top-level types, huge scalars, tags, anchors, directives."""
    rng = d.rng
    T = d.T
    variant = rng.choice(["unclosed", "tab", "control", "duplicate", "top-level", "huge",
                          "indent", "tag", "anchor", "directive", "bom", "line-ends"])
    target = rng.choice(["recipe", "recipe", "recipe", "attributes"])
    text = d.recipe(f"  - file: {ys(T + '/x')}\n    content: {ys('hi')}\n    mode: '0644'\n")
    if variant == "unclosed":
        bad = rng.choice(["[unclosed", "{a: 1", '"unterminated', "'unterminated", "[1, 2",
                          "{a: [1}", "- x", "a: b: c", "@reserved", "`tick", "|\n  x\n y",
                          "> \n\tx", "!!", "*", "&", "? ", ": x", "%x", "[,]", "{,}",
                          "{a: 1, a}", "\"\\q\""])
        d.detail = f"value {bad!r}"
        text = text.replace(ys("hi"), bad)
    elif variant == "tab":
        lines = text.splitlines(keepends=True)
        i = rng.randrange(len(lines))
        lines[i] = lines[i].replace("  ", "\t", 1)
        text = "".join(lines)
        d.detail = f"tab in line {i + 1}"
    elif variant == "control":
        char = chr(rng.choice([0, 1, 7, 8, 0x0B, 0x0C, 0x1B, 0x1F, 0x7F, 0x80, 0x85, 0x9F,
                               0xFEFF, 0xFFFE, 0xFFFF, 0xD7FF, 0x2028, 0x2029]))
        pos = rng.randrange(len(text) + 1)
        text = text[:pos] + char + text[pos:]
        d.detail = f"U+{ord(char):04X} at {pos}"
    elif variant == "duplicate":
        dup = rng.choice(["top", "resource", "nested"])
        if dup == "top":
            text += "resources: []\n"
        elif dup == "resource":
            text += "    content: again\n"
        else:
            text = "attributes: {a: {b: 1, b: 2}}\n" + text
        d.detail = f"duplicate key ({dup})"
    elif variant == "top-level":
        text = rng.choice(["- a\n- b\n", "42\n", "just a string\n", "~\n", "---\n...\n",
                           "a: 1\n---\nb: 2\n", "[]\n", "{}\n", "!!binary aGk=\n",
                           "? complex\n: key\n", "true\n", "3.5\n", "!!set {a}\n", '"x"\n',
                           "--- |\n  text\n", "- resources: []\n", "[resources]\n"])
        d.detail = f"whole file {text!r}"
    elif variant == "huge":
        size = rng.choice([100_000, 1_000_000, 3_000_000])
        form = rng.choice(["plain", "quoted", "literal", "key", "number", "float", "comment",
                           "line"])
        d.detail = f"{form} of {size} characters"
        if form == "plain":
            text = text.replace(ys("hi"), "x" * size)
        elif form == "quoted":
            text = text.replace(ys("hi"), '"' + "\\x41" * (size // 4) + '"')
        elif form == "literal":
            text = text.replace(ys("hi"), "|\n" + ("      " + "y" * 80 + "\n") * (size // 87))
        elif form == "key":
            text = "attributes: {" + "k" * size + ": 1}\n" + text
        elif form == "number":
            text = text.replace("'0644'", "9" * size)
        elif form == "float":
            text = text.replace("'0644'", "1." + "9" * size + "e9")
        elif form == "comment":
            text = "#" + "c" * size + "\n" + text
        else:
            text = text.replace(ys("hi"), ys("z" * size))
    elif variant == "indent":
        text = text.replace("    content", "  content", 1) if rng.random() < 0.5 else \
            text.replace("  - file", "- file", 1) + "   mode: x\n"
        d.detail = "bad indentation"
    elif variant == "tag":
        tag = rng.choice(["!!python/object/apply:os.system ['true']", "!!python/name:os.system",
                          "!custom x", "!!int abc", "!!float x", "!!timestamp bad",
                          "!!binary '%%%'", "!<tag:yaml.org,2002:str> x", "!!map [1]",
                          "!!seq {a: 1}", "!!str [1]", "!!bool maybe", "!!null 5", "!e!x 1",
                          "!!merge x", "!!value x", "!!omap {a: 1}", "!!pairs 5"])
        d.detail = f"tag {tag!r}"
        text = text.replace(ys("hi"), tag)
    elif variant == "anchor":
        bad = rng.choice(["*nope", "&a x\n    mode: &a y", "&a 1", "*a", "& x", "&a &b x"])
        d.detail = f"anchor {bad!r}"
        text = text.replace(ys("hi"), bad)
    elif variant == "directive":
        head = rng.choice(["%YAML 9.9\n---\n", "%YAML 1.1\n%YAML 1.1\n---\n",
                           "%TAG ! tag:x,2000:\n---\n", "%FOO bar\n---\n", "%YAML\n---\n",
                           "%TAG !x! y\n"])
        d.detail = f"directive {head!r}"
        text = head + text
    elif variant == "bom":
        pos = rng.choice([0, 5, len(text) // 2])
        text = text[:pos] + "\ufeff" + text[pos:]
        d.detail = f"BOM at {pos}"
    else:
        end = rng.choice(["\r\n", "\r", "\u2028", "\x85"])
        text = text.replace("\n", end)
        d.detail = f"line ends {end!r}"
    if target == "attributes" and variant not in ("top-level",):
        d.attributes = text.replace("description: fuzz case\n", f"root: {ys(T)}\n")
        d.recipe(f"  - file: {ys(T + '/x')}\n")
        d.detail += " (attributes.yml)"
    else:
        d.recipes["app"] = text
    if variant == "huge":  # over the file size limit: refused before it is parsed
        written = d.attributes if target == "attributes" else text
        d.refused = len(str(written).encode("utf-8", "surrogateescape")) > MAX_TEXT_BYTES
    return f"yaml:{variant}"


def cat_bytes(d: Draft) -> str:
    """Bytes that are not UTF-8, NUL, UTF-16, surrogates in recipe, attributes, templates."""
    rng = d.rng
    T = d.T
    variant = rng.choice(["recipe", "attributes", "runlist", "template", "source",
                          "utf16", "nul", "surrogate-value", "surrogate-name", "nul-escape"])
    bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80",
                      "caf\xe9".encode("latin-1"), b"\xfe\xff"])
    text = d.recipe(f"  - file: {ys(T + '/x')}\n    content: {ys('hi')}\n")
    d.detail = f"{variant}: {bad!r}"
    if variant == "recipe":
        raw = text.encode()
        pos = rng.randrange(len(raw) + 1)
        d.recipes["app"] = raw[:pos] + bad + raw[pos:]
    elif variant == "attributes":
        d.attributes = f"root: {ys(T)}\nx: ".encode() + bad + b"\n"
    elif variant == "runlist":
        d.runlist = b"app\n" + bad + b"\n"
    elif variant == "template":
        d.templates["app/t.j2"] = b"line {{ attributes.root }} " + bad + b"\n"
        d.recipe(f"  - template: {ys(T + '/t')}\n    source: t.j2\n")
    elif variant == "source":  # binary files are fine as file sources
        d.files["app/bin"] = bad * 100 + bytes(range(256))
        d.recipe(f"  - file: {ys(T + '/new/bin')}\n    source: bin\n")
        d.valid = True
    elif variant == "utf16":
        d.recipes["app"] = text.encode(rng.choice(["utf-16", "utf-16-le", "utf-32"]))
    elif variant == "nul":
        raw = text.encode()
        pos = rng.randrange(len(raw) + 1)
        d.recipes["app"] = raw[:pos] + b"\x00" + raw[pos:]
    elif variant == "surrogate-value":
        s = rng.choice(["\\ud800", "\\udfff", "\\udcff", "a\\ud83d"])
        d.detail = f"content {s}"
        d.recipe(f'  - file: {ys(T + "/s")}\n    content: "{s}"\n')
    elif variant == "surrogate-name":
        s = rng.choice(["\\ud800", "\\udcff", "\\udc80x"])
        kind = rng.choice(["file", "directory", "link", "line", "template"])
        d.detail = f"{kind} name with {s}"
        extra = {"link": f"\n    to: {ys(T + '/new/first')}", "line": "\n    text: a\n"
                 "    create: true", "template": "\n    source: t.j2"}.get(kind, "")
        d.templates["app/t.j2"] = "t\n"
        d.recipe(f'  - {kind}: "{T}/new/{s}"{extra}\n')
    else:
        where = rng.choice(["name", "content", "source", "run", "runlist"])
        d.detail = f"\\0 in {where}"
        if where == "name":
            d.recipe(f'  - file: "{T}/new/a\\0b"\n')
        elif where == "content":
            d.recipe(f'  - file: "{T}/new/nul"\n    content: "a\\0b"\n')
            d.valid = True
        elif where == "source":
            d.recipe(f'  - file: "{T}/new/nul"\n    source: "a\\0b"\n')
        elif where == "run":
            d.recipe('  - command: nul\n    run: ["/bin/echo", "a\\0b"]\n')
        else:
            d.runlist = b"app\x00\n"
    return f"bytes:{variant}"


# Template text: syntax errors, undefined names, sandbox escapes, resource bombs.
TEMPLATE_SYNTAX = ["{% if %}", "{{ }}", "{% for x in %}{% endfor %}", "{% endfor %}",
                   "{{ x | }}", "{{ x", "{% raw %}", "{# unclosed", "{{ 1 +* 2 }}",
                   "{% set %}", "{% macro %}", "{{ (( }}", "{% if x %}", "}} {{",
                   "{% block a %}{% block a %}{% endblock %}{% endblock %}", "{{ 'a' 'b' }}",
                   "{% extends 1 %}", "{{ x.1.y }}", "{%- -%}", "{{ -} }}"]
TEMPLATE_UNDEFINED = ["{{ nope }}", "{{ attributes.nope }}", "{{ attributes.root.nope.deeper }}",
                      "{{ facts.nope }}", "{{ nope() }}", "{{ attributes['nope'] }}",
                      "{{ variables.nope }}", "{{ item }}", "{{ nope | upper }}",
                      "{{ attributes.root | nofilter }}", "{% for x in nope %}{% endfor %}",
                      "{{ attributes.root is notatest }}", "{{ range(3) | nope }}"]
TEMPLATE_ESCAPES = ["{{ ''.__class__.__mro__ }}", "{{ self.__init__.__globals__ }}",
                    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
                    "{{ cycler.__init__.__globals__.os.system('touch {T}/escaped') }}",
                    "{{ lipsum.__globals__['os'].popen('echo escaped').read() }}",
                    "{{ joiner.__init__.__globals__.os.getcwd() }}",
                    "{{ namespace.__init__.__globals__ }}", "{{ attributes.__class__ }}",
                    "{{ self._TemplateReference__context }}", "{{ config }}",
                    "{{ attributes.items.__self__ }}", "{{ range.__self__ }}",
                    "{{ ().__class__.__base__.__subclasses__() }}",
                    "{{ facts.__class__.__init__.__globals__ }}",
                    "{{ attributes.root.__class__.__mro__[1] }}", "{{ self.__dict__ }}",
                    "{{ [].__class__.__base__ }}", "{{ x.__globals__ if x else 1 }}",
                    "{% set f = cycler.__init__.__globals__ %}{{ f.os.listdir('/') }}"]
TEMPLATE_BOMBS = ["{{ 'x' * 10**10 }}", "{{ range(10**10) | list | length }}",
                  "{% for i in range(10**9) %}{% endfor %}",
                  "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
                  "{{ 'x' * 100000000 }}", "{{ 99 ** 99 }}", "{{ 1 / 0 }}", "{{ 10 // 0 }}",
                  "{{ '%s' % () }}", "{{ '{0}'.format() }}", "{{ [1] * 10**10 }}",
                  "{% set l = [] %}{% for i in range(100000) %}{{ l.append(i) }}{% endfor %}",
                  "{{ 'a'.join(['x'] * 10**8) | length }}", "{{ 10 ** 100000 }}",
                  "{% include 'other.j2' %}", "{% include '/etc/hostname' %}",
                  "{% extends 'base.j2' %}", "{% import 'x.j2' as x %}",
                  "{{ '\\x00' }}", "{{ '\\ud800' }}"]


def cat_template(d: Draft) -> str:
    """Hostile Jinja2 in a template file, a recipe value, a name or template variables."""
    rng = d.rng
    T = d.T
    group, pool = rng.choice([("syntax", TEMPLATE_SYNTAX), ("undefined", TEMPLATE_UNDEFINED),
                              ("escape", TEMPLATE_ESCAPES), ("escape", TEMPLATE_ESCAPES),
                              ("bomb", TEMPLATE_BOMBS), ("source", None)])
    if pool is None:
        kind = rng.choice(["template", "file"])
        source = rng.choice(["../recipe.yml", "/etc/hostname", "../../../../etc/hostname",
                             "", ".", "..", "t.j2/", "sub/../t.j2", "./t.j2", "nope.j2",
                             "sub", "t.j2\n", " t.j2", "~/t.j2", "$HOME/t.j2"])
        d.templates["app/t.j2"] = "ok\n"
        d.templates["app/sub/x.j2"] = "x\n"
        d.files["app/t.j2"] = "ok\n"
        d.files["app/sub/x"] = "x\n"
        d.detail = f"{kind} source {source!r}"
        d.recipe(f"  - {kind}: {ys(T + '/new/s')}\n    source: {ys(source)}\n")
        return "template:source"
    payload = rng.choice(pool).replace("{T}", T)
    where = rng.choice(["file", "file", "value", "name", "variables"])
    d.detail = f"{payload} in {where}"
    if where == "file":
        before = "".join(f"line {i}\n" for i in range(rng.randint(0, 5)))
        d.templates["app/t.j2"] = before + payload + "\n"
        d.recipe(f"  - template: {ys(T + '/new/t')}\n    source: t.j2\n")
    elif where == "value":
        d.recipe(f"  - file: {ys(T + '/new/v')}\n    content: {ys(payload)}\n")
    elif where == "name":
        d.recipe(f"  - file: {ys(T + '/new/' + payload)}\n")
    else:
        d.templates["app/t.j2"] = "{{ v }}\n"
        d.recipe(f"  - template: {ys(T + '/new/t')}\n    source: t.j2\n"
                 f"    variables: {{v: {ys(payload)}}}\n")
    return f"template:{group}"


def cat_odd_file(d: Draft) -> str:
    """FIFOs, symlink loops, /dev/zero, folders where files belong, empty and 2 MB files."""
    rng = d.rng
    T = d.T
    odd = rng.choice(["fifo", "symlink-loop", "dev-zero", "dev-urandom", "dev-null", "dir",
                      "empty", "2mb", "socket", "dangling", "outside", "unreadable",
                      "self-link"])
    where = rng.choice(["source", "source", "template", "recipe", "attributes", "runlist",
                        "templates-folder", "recipe-folder"])
    d.detail = f"{odd} as {where}"
    if where in ("source", "template"):
        folder, kind = ("files", "file") if where == "source" else ("templates", "template")
        rel = f"app/{folder}/odd"
        d.recipe(f"  - {kind}: {ys(T + '/new/odd')}\n    source: odd\n")
    elif where == "recipe":
        rel = "app/recipe.yml"
        d.recipes.pop("app", None)
    elif where == "attributes":
        rel = "attributes.yml"
        d.attributes = None
        d.recipe()
    elif where == "runlist":
        rel = "runlist"
        d.runlist = None
        d.recipe()
    elif where == "templates-folder":
        rel = "app/templates"
        d.recipe(f"  - template: {ys(T + '/new/odd')}\n    source: odd\n")
    else:
        rel = "app"
        d.recipes.pop("app", None)
    d.odd.append((odd, rel))
    return f"odd:{odd}"


def cat_runlist(d: Draft) -> str:
    """Run lists that are folders, empty, name missing or strange recipes; depends cycles
    and chains; --runlist flags."""
    rng = d.rng
    variant = rng.choice(["names", "flag", "event", "cycle", "self", "missing-depends",
                          "chain", "empty", "depends-type"])
    d.recipe()
    if variant == "names":
        text = rng.choice(["nosuch\n", "../app\n", "/etc\n", ".hidden\n", "recipe[app\n",
                           "app,,app\n", "app\napp\n", "äpp\n", "a" * 5000 + "\n",
                           "app # comment\nnosuch\n", "#app\n", "recipe[]\n", "app/\n",
                           "app/recipe.yml\n", "~\n", "*\n", "app\x0bnosuch\n",
                           "app\rnosuch\n", "- app\n", "[app]\n", "{{ app }}\n"])
        d.runlist = text
        d.detail = f"runlist {text[:60]!r}"
    elif variant == "flag":
        flag = rng.choice([",,,", "../app", "/etc", "nosuch", "app," * 1000, " ", "app,.",
                           "recipe[app]", "app\nnosuch", "-a", "--noop", "app\x1b[2J"])
        d.args = ["--runlist", flag]
        d.detail = f"--runlist {flag[:60]!r}"
    elif variant == "event":
        d.runlist = None
        d.extra[rng.choice(["runlist.setup", "runlist.", "runlist.bogus", "runlist..",
                            "runlist.deploy"])] = rng.choice(["app\n", "nosuch\n", "", "\xff"])
        d.detail = "event run lists only"
        if rng.random() < 0.5:
            d.args = ["--event", rng.choice(["setup", "deploy"])]
    elif variant == "cycle":
        k = rng.randint(2, 20)
        for i in range(k):
            d.recipes[f"r{i}"] = f"depends: [r{(i + 1) % k}]\n"
        d.runlist = "app\nr0\n"
        d.detail = f"depends cycle of {k}"
    elif variant == "self":
        d.recipes["app"] = "depends: [app]\n" + d.base().replace("description: fuzz case\n", "")
        d.detail = "depends on itself"
    elif variant == "missing-depends":
        dep = rng.choice(["nosuch", "../app", "", ".", "/etc", "app/..", "a" * 300])
        d.recipes["app"] = f"depends: [{ys(dep)}]\n" + d.base().replace(
            "description: fuzz case\n", "")
        d.detail = f"depends on {dep[:40]!r}"
    elif variant == "chain":
        k = rng.choice([10, MAX_DEPENDS_DEPTH, MAX_DEPENDS_DEPTH + 1, 3000])
        for i in range(k):
            d.recipes[f"c{i}"] = f"depends: [c{i + 1}]\n" if i + 1 < k else "resources: []\n"
        d.runlist = "app\nc0\n"
        d.detail = f"depends chain of {k} recipes (limit {MAX_DEPENDS_DEPTH})"
        d.valid = k <= MAX_DEPENDS_DEPTH
        d.refused = not d.valid
    elif variant == "empty":
        d.runlist = rng.choice(["", "\n", "# nothing\n", ",\n", "   \n"])
        d.detail = f"runlist {d.runlist!r}"
    else:
        d.recipes["dep"] = "resources: []\n"
        value = rng.choice(["dep", "[dep, dep]", "[[dep]]", "{dep: 1}", "42", "[~]", "''"])
        d.recipes["app"] = f"depends: {value}\n" + d.base().replace("description: fuzz case\n",
                                                                    "")
        d.detail = f"depends: {value}"
    return f"runlist:{variant}"


def cat_graph(d: Draft) -> str:
    """Dependency cycles, duplicate identities, references to nothing, wrong actions."""
    rng = d.rng
    T = d.T
    variant = rng.choice(["requires-cycle", "notify-cycle", "subscribe-cycle", "self",
                          "duplicate", "duplicate-rendered", "unknown-ref", "no-actions",
                          "bad-action", "bad-ref", "fan-in", "alias-path"])
    items = []
    if variant == "requires-cycle":
        k = rng.randint(2, 50)
        for i in range(k):
            items.append(f"  - {{file: {ys(f'{T}/new/c{i}')}, "
                         f"requires: [{ys(f'file:{T}/new/c{(i + 1) % k}')}]}}\n")
        d.detail = f"requires cycle of {k}"
    elif variant in ("notify-cycle", "subscribe-cycle"):
        k = rng.randint(2, 10)
        key = variant.split("-")[0]
        for i in range(k):
            ref = f"command:c{(i + 1) % k}" + (" run" if key == "notify" else "")
            items.append(f"  - {{command: c{i}, run: [/bin/true], refresh_only: true, "
                         f"{key}: {ys(ref)}}}\n")
        d.detail = f"{key} cycle of {k}"
    elif variant == "self":
        key = rng.choice(["requires", "notify", "subscribe"])
        items.append(f"  - {{command: me, run: [/bin/true], refresh_only: true, "
                     f"{key}: {ys('command:me')}}}\n")
        d.detail = f"{key} itself"
    elif variant == "duplicate":
        kind = rng.choice(FILE_KINDS)
        pairs = d.example(kind)
        items += [item(pairs, False), item(pairs, True)]
        d.detail = f"{kind} declared twice"
    elif variant == "duplicate-rendered":
        items.append(f"  - file: {ys('{{ attributes.root }}/new/first')}\n")
        d.detail = "base file again through a template"
    elif variant == "unknown-ref":
        key = rng.choice(["requires", "notify", "subscribe"])
        items.append(f"  - {{file: {ys(T + '/new/u')}, {key}: {ys('command:nosuch')}}}\n")
        d.detail = f"{key} names nothing"
    elif variant == "no-actions":
        items.append(f"  - {{file: {ys(T + '/new/n')}, notify: {ys(f'file:{T}/new/first')}}}\n")
        d.detail = "notify a file"
    elif variant == "bad-action":
        action = rng.choice(["restart", "RUN", "run now", "", "__init__", "1", "run!"])
        items.append("  - {command: c, run: [/bin/true], refresh_only: true}\n")
        items.append(f"  - {{file: {ys(T + '/new/n')}, notify: {ys('command:c ' + action)}}}\n")
        d.detail = f"action {action!r}"
    elif variant == "bad-ref":
        ref = rng.choice(["nocolon", ":x", "file:", "", " ", "file :x", "::", "file:/x:y",
                          "FILE:" + T + "/new/first", "file:" + T + "/new/first "])
        key = rng.choice(["requires", "notify", "subscribe"])
        items.append(f"  - {{file: {ys(T + '/new/r')}, {key}: [{ys(ref)}]}}\n")
        d.detail = f"{key}: [{ref!r}]"
    elif variant == "fan-in":
        k = rng.choice([100, 1000])
        refs = ", ".join(ys(f"file:{T}/new/f{i}") for i in range(k))
        items += [f"  - {{file: {ys(f'{T}/new/f{i}')}}}\n" for i in range(k)]
        items.append(f"  - {{file: {ys(T + '/new/last')}, requires: [{refs}]}}\n")
        d.detail = f"one resource requires {k}"
        d.valid = True
    else:
        alias = rng.choice([f"{T}/new//first", f"{T}/new/./first", f"{T}/new/../new/first",
                            f"{T}//new/first"])
        items.append(f"  - {{file: {ys(alias)}, content: {ys('other')}}}\n")
        d.detail = f"{alias} besides {T}/new/first"
    d.recipe(*items)
    return f"graph:{variant}"


def cat_attributes(d: Draft) -> str:
    """Attribute files of the wrong shape, recipe attributes, -a and --attributes flags."""
    rng = d.rng
    T = d.T
    variant = rng.choice(["file", "json", "both", "recipe", "flag", "node-file"])
    value = ys("{{ attributes.x | default(1) }}")
    d.recipe(f"  - file: {ys(T + '/new/a')}\n    content: {value}\n")
    if variant == "file":
        extra = rng.choice(["- 1\n- 2\n", "42\n", "~\n", "x: [1\n", "x: {a: 1, a: 2}\n",
                            "root: [1]\n", "root: ~\n", "root: 5\n", "!!set {a}\n",
                            "x: &a [*a]\n", "x: !!binary aGk=\n", "'': 1\n", "~: 1\n",
                            "[1]: 2\n", "x.y: 1\n", "attributes: {root: x}\n"])
        own_root = extra.startswith(("root", "-", "42", "~\n", "!!"))
        d.attributes = extra if own_root else f"root: {ys(T)}\n" + extra
        d.detail = f"attributes.yml {d.attributes[-40:]!r}"
    elif variant == "json":
        d.attributes = None
        d.extra["attributes.json"] = rng.choice(['{"root": ' + json.dumps(T) + ',}',
                                                 "[1, 2]", '{"root": ' + json.dumps(T) + "}",
                                                 "{", "NaN", '{"a": NaN}', '{"a": 1e999}',
                                                 '{"a": "\\ud800"}', "",
                                                 json.dumps({"root": T, "smile": "\U0001F600"})])
        d.detail = f"attributes.json {d.extra['attributes.json'][-40:]!r}"
    elif variant == "both":
        d.extra["attributes.json"] = json.dumps({"root": f"{T}/json-root"})
        d.detail = "attributes.yml and attributes.json"
    elif variant == "recipe":
        value = rng.choice(["[1]", '"text"', "{x: {y: [1, {z: ~}]}}", "{root: [1]}",
                            "{x: !!set {a}}", "{x: 2001-12-14}", "{x: .nan}",
                            "{'': 1}", "{~: 1}"])
        d.recipes["app"] = f"attributes: {value}\n" + d.recipes["app"].replace(
            "description: fuzz case\n", "")
        d.detail = f"recipe attributes: {value}"
    elif variant == "flag":
        flag = rng.choice(["novalue", "=1", "a..b=1", "x.y=", "x=[1,2]", "x.__class__=1",
                           "root.x=1", "a" * 5000 + "=1", "x={{ 7*7 }}", ".=1", "x.=1",
                           "x=\udcff", "x.y.z.w.v.u=1", "x=" + "9" * 5000, " = "])
        d.args = ["-a", flag]
        d.detail = f"-a {flag[:60]!r}"
    else:
        node = d.root / "node.json"
        content = rng.choice(['{"run_list": 5}', '{"run_list": [1, 2]}',
                              '{"run_list": ["nosuch"]}', '{"run_list": "app"}', "[1]",
                              "{", '{"x": {"y": 1}}', "", '{"run_list": [["app"]]}',
                              '{"run_list": ["recipe[app]"]}', "\xff", "DIR", "MISSING"])
        d.args = ["--attributes", str(node)]
        if content == "DIR":
            d.extra["../node.json/x"] = "x"
        elif content != "MISSING":
            d.extra["../node.json"] = content.encode("latin-1") if content == "\xff" else content
        d.detail = f"--attributes with {content!r}"
    return f"attributes:{variant}"


def cat_tarball(d: Draft) -> str:
    """The bundle as a .tar.gz: corrupt, truncated, escaping members, bombs, or valid."""
    rng = d.rng
    variant = rng.choice(["valid", "garbage", "truncated", "dotdot", "absolute", "symlink-out",
                          "hardlink-out", "device", "gzip-bomb", "many-members", "not-tar",
                          "empty"])
    d.recipe()
    d.detail = f"tarball {variant}"

    def write(bundle: Path, out: Path) -> None:
        buf = io.BytesIO()
        if variant in ("garbage", "empty"):
            out.write_bytes(b"" if variant == "empty" else rng.randbytes(rng.randint(1, 5000)))
            return
        if variant == "not-tar":
            out.write_bytes(gzip.compress(b"hello, not a tar\n" * 100))
            return
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(bundle, arcname=".")
            member = tarfile.TarInfo()
            if variant == "dotdot":
                member.name, data = "../escaped", b"x"
            elif variant == "absolute":
                member.name, data = str(d.root / "target" / "abs"), b"x"
            elif variant == "symlink-out":
                member.name, member.type, member.linkname = "app/files/out", tarfile.SYMTYPE, \
                    "/etc/hostname"
                data = b""
            elif variant == "hardlink-out":
                member.name, member.type, member.linkname = "app/files/hard", tarfile.LNKTYPE, \
                    "/etc/hostname"
                data = b""
            elif variant == "device":
                member.name, member.type = "app/files/dev", tarfile.CHRTYPE
                member.devmajor, member.devminor = 1, 5
                data = b""
            elif variant == "gzip-bomb":
                member.name, data = "app/files/bomb", b""
                member.size = 200 * 1024 * 1024
            elif variant == "many-members":
                for i in range(rng.choice([2000, 12000])):
                    info = tarfile.TarInfo(f"app/files/m{i}")
                    tar.addfile(info, io.BytesIO(b""))
                member = None
                data = b""
            else:
                member = None
                data = b""
            if member is not None:
                if variant == "gzip-bomb":
                    tar.addfile(member, _Zeros(member.size))
                else:
                    member.size = len(data) if member.type == tarfile.REGTYPE else 0
                    tar.addfile(member, io.BytesIO(data) if data else None)
        blob = buf.getvalue()
        if variant == "truncated":
            blob = blob[: rng.randint(10, max(11, len(blob) - 1))]
        out.write_bytes(blob)

    d.tarball = write
    d.valid = variant == "valid"
    return f"tarball:{variant}"


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read without holding them in memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


CATEGORIES: dict[str, tuple[int, Callable[[Draft], str]]] = {
    "valid": (14, cat_valid),
    "system": (6, cat_system),
    "yaml": (12, cat_yaml),
    "types": (16, cat_types),
    "unknown": (6, cat_unknown),
    "bomb": (7, cat_bomb),
    "bytes": (6, cat_bytes),
    "template": (10, cat_template),
    "odd": (9, cat_odd_file),
    "runlist": (6, cat_runlist),
    "graph": (5, cat_graph),
    "attributes": (5, cat_attributes),
    "tarball": (3, cat_tarball),
}


# --- writing a case --------------------------------------------------------------------

def generate(seed: int, index: int, root: Path, plan_ratio: float = 0.25,
             only: str | None = None) -> Case:
    """Write case ``index`` of ``seed`` under ``root`` (created) and return it.

    ``only`` restricts the case to one category (for reproducing); ``plan_ratio`` is the
    share of non-system cases that are planned as well as run.
    """
    rng = random.Random(f"trueup-fuzz/{seed}/{index}")
    names = list(CATEGORIES)
    category = only or rng.choices(names, weights=[CATEGORIES[n][0] for n in names])[0]
    root.mkdir(parents=True, exist_ok=True)
    draft = Draft(rng, root)
    label = CATEGORIES[category][1](draft)
    plan = draft.system or rng.random() < plan_ratio
    bundle = root / "bundle"
    _write(draft, bundle)
    source = str(bundle)
    if draft.tarball is not None:
        out = root / "bundle.tar.gz"
        draft.tarball(bundle, out)
        source = str(out)
    return Case(seed=seed, index=index, category=category, label=label, detail=draft.detail,
                root=root, source=source, system=draft.system, valid=draft.valid,
                refused=draft.refused, plan=plan,
                args=list(draft.args))


def _put(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8", "surrogateescape"))


def _write(d: Draft, bundle: Path) -> None:
    """The bundle, the target tree as the case starts from, and the odd files."""
    bundle.mkdir(parents=True)
    for name, text in d.recipes.items():
        _put(bundle / name / "recipe.yml", text)
    for folder, entries in (("templates", d.templates), ("files", d.files)):
        for key, content in entries.items():
            recipe, _, rel = key.partition("/")
            _put(bundle / recipe / folder / rel, content)
    if d.runlist is not None:
        _put(bundle / "runlist", d.runlist)
    if d.attributes is not None:
        _put(bundle / "attributes.yml", d.attributes)
    for rel, content in d.extra.items():
        _put(Path(os.path.normpath(bundle / rel)), content)
    target = d.root / "target"
    target.mkdir()
    (target / "existing.txt").write_text("existing\n")
    (target / "sub").mkdir()
    (target / "sub" / "keep.txt").write_text("keep\n")
    for rel, content in d.setup.items():
        path = target / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            _put(path, content)
    for rel, to in d.links.items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(to, target / rel)
    for rel, mode in d.modes.items():
        os.chmod(target / rel, int(mode, 8))
    (d.root / "cwd").mkdir()
    for what, rel in d.odd:
        _odd(d.rng, what, bundle / rel)


def _odd(rng: random.Random, what: str, path: Path) -> None:
    """Make ``path`` an odd file: FIFO, symlink loop, device link, folder, socket …"""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if what == "fifo":
        os.mkfifo(path)
    elif what == "symlink-loop":
        other = path.with_name(path.name + ".loop")
        os.symlink(other.name, path)
        os.symlink(path.name, other)
    elif what == "self-link":
        os.symlink(path.name, path)
    elif what == "dev-zero":
        os.symlink("/dev/zero", path)
    elif what == "dev-urandom":
        os.symlink("/dev/urandom", path)
    elif what == "dev-null":
        os.symlink("/dev/null", path)
    elif what == "dir":
        path.mkdir()
        (path / "inside").write_text("x\n")
    elif what == "empty":
        path.write_bytes(b"")
    elif what == "2mb":
        chunk = rng.choice([b"#" * 1023 + b"\n", b"resources: []\n" + b" " * 1010,
                            bytes(range(256)) * 4, b"x: 1\n" * 204 + b"\n" * 4])
        path.write_bytes(chunk * 2048)
    elif what == "socket":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
        except OSError:  # a path too long for a socket: a FIFO instead
            os.mkfifo(path)
        finally:
            sock.close()
    elif what == "dangling":
        os.symlink(str(path) + ".nowhere", path)
    elif what == "outside":
        os.symlink("/etc/hostname", path)
    elif what == "unreadable":
        path.write_text("secret\n")
        os.chmod(path, 0)
    else:
        raise ValueError(f"unknown odd file {what!r}")
