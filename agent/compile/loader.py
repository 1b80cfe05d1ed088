"""A bundle folder → its recipes, run lists and attribute files, validated in shape.

Layout of a bundle::

    runlist                 recipe names, one per line (or comma separated); '#' comments
    runlist.<event>         the run list of a lifecycle event (setup, configure, deploy …)
    attributes.yml          bundle attributes (or attributes.json)
    bundle.yml              bundle-wide settings: templates: {trim_blocks, lstrip_blocks}
    <name>/recipe.yml       a recipe
    <name>/templates/       its Jinja2 templates
    <name>/files/           its static files
    <name>/tests/           its testinfra checks
"""

from __future__ import annotations

import os

from agent.compile import yamlfile
from agent.compile.yamlfile import LineDict, LineList
from agent.errors import TrueupError
from agent.model import Record

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

RECIPE_KEYS = {
    "description": "one line saying what the recipe manages",
    "depends": "recipes converged first, e.g. [base]",
    "attributes": "default attribute values (a mapping)",
    "resources": "the list of resources",
    "phase": "bake, boot or any: when its resources may run",
    "when": "an expression: false keeps every resource of the recipe out of the run",
}
EVENTS = ("setup", "configure", "deploy", "undeploy", "shutdown")
MAX_DEPENDS_DEPTH = 100  # recipes in one chain of depends, the first one included


class Recipe(Record):
    """One recipe of a bundle, as read from its recipe.yml."""

    __slots__ = ("name", "dir", "file", "description", "depends", "depends_lines", "attributes",
                 "resources", "phase", "when", "when_line")
    DEFAULTS = {"description": "", "depends": [], "depends_lines": [], "attributes": {},
                "resources": [], "phase": None, "when": None, "when_line": 0}
    # when: compile.loops.condition decides it


class Bundle:
    """A folder of recipes. Recipes are read on first use, so a run reads only its own."""

    def __init__(self, root: str, cache_dir: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.cache_dir = cache_dir
        if not os.path.isdir(self.root):
            raise TrueupError("bundle folder not found (give a folder holding "
                              "<recipe>/recipe.yml)", root)
        self._recipes: dict[str, Recipe] = {}

    def names(self) -> list[str]:
        """Every recipe name in the bundle: each entry holding a ``recipe.yml``.

        That recipe.yml may still be unreadable (a folder, a FIFO …): reading it says so.
        An entry that is a symbolic link loop holds nothing, so it is no recipe.
        """
        return sorted(e.name for e in os.scandir(self.root)
                      if os.path.lexists(os.path.join(e.path, "recipe.yml")))

    def recipe(self, name: str, wanted_by: str | None = None,
               line: int | None = None) -> Recipe:
        """The recipe ``name``; ``wanted_by``/``line`` say who asked, for the error."""
        cached = self._recipes.get(name)
        if cached is not None:
            return cached
        folder = os.path.join(self.root, name)
        file = os.path.join(folder, "recipe.yml")
        if not name or "/" in name or name.startswith(".") or not os.path.lexists(file):
            known = ", ".join(self.names()) or "none"
            raise TrueupError(f"recipe {name!r} not found in bundle {self.root} "
                              f"(recipes there: {known})", wanted_by, line)
        recipe = self._recipes[name] = parse_recipe(name, folder, file, self.cache_dir)
        return recipe

    def runlist(self, event: str | None = None) -> tuple[list[str], str] | None:
        """The bundle's run list (for ``event`` if given) and the file it came from.

        None when there is no such file; an error when it is there but no regular file.
        """
        fname = f"runlist.{event}" if event else "runlist"
        path = os.path.join(self.root, fname)
        if not os.path.lexists(path):
            return None
        return parse_runlist(yamlfile.read_text(path)), path

    def settings(self) -> dict[str, Any]:
        """The bundle's bundle.yml (see :func:`parse_settings`); {} when it has none."""
        path = os.path.join(self.root, "bundle.yml")
        return parse_settings(path) if os.path.lexists(path) else {}

    def attributes(self) -> tuple[dict[str, Any], str] | None:
        """The bundle attributes file (attributes.yml or .json), if there is one."""
        for fname in ("attributes.yml", "attributes.yaml", "attributes.json"):
            path = os.path.join(self.root, fname)
            if os.path.lexists(path):  # there, so it must be readable
                data = yamlfile.load(path)
                if data is None:
                    return {}, path
                if not isinstance(data, dict):
                    raise TrueupError("attributes file must hold a mapping", path)
                return data, path
        return None


BUNDLE_SETTINGS = {"templates": {"trim_blocks": bool, "lstrip_blocks": bool}}


def parse_settings(path: str) -> dict[str, Any]:
    """A bundle.yml: ``{templates: {trim_blocks: bool, lstrip_blocks: bool}}``, checked."""
    data = yamlfile.load(path)
    if data is None:
        return {}
    if not isinstance(data, LineDict):
        raise TrueupError("bundle.yml must hold a mapping, e.g. templates: {lstrip_blocks: "
                          "true}", path)
    for key, value in data.items():
        line = data.lines[key]
        allowed = BUNDLE_SETTINGS.get(key)
        if allowed is None:
            raise TrueupError(f"unknown bundle setting {key!r}; allowed: "
                              f"{', '.join(BUNDLE_SETTINGS)}", path, line)
        if not isinstance(value, LineDict):
            raise TrueupError(f"{key} must be a mapping of {', '.join(allowed)}", path, line)
        for name, setting in value.items():
            want = allowed.get(name)
            if want is None:
                raise TrueupError(f"unknown {key} setting {name!r}; allowed: "
                                  f"{', '.join(allowed)}", path, value.lines[name])
            if not isinstance(setting, want):
                raise TrueupError(f"{key}.{name} must be true or false, not {setting!r}",
                                  path, value.lines[name])
    return data


def parse_runlist(text: str) -> list[str]:
    """Names separated by newlines or commas; '#' starts a comment; recipe[x] means x."""
    names = []
    for raw in text.splitlines():
        for item in raw.split("#", 1)[0].split(","):
            item = item.strip()
            if item.startswith("recipe[") and item.endswith("]"):
                item = item[7:-1]
            if item:
                names.append(item)
    return names


def parse_recipe(name: str, folder: str, file: str, cache_dir: str | None = None) -> Recipe:
    """Read and shape-check one recipe.yml (parsed once, then from ``cache_dir``)."""
    data = yamlfile.load(file, cache_dir, storable=_nothing_sensitive)
    recipe = Recipe(name=name, dir=folder, file=file)
    if data is None:
        return recipe
    if not isinstance(data, LineDict):
        raise TrueupError("a recipe must be a mapping with keys "
                          f"{', '.join(RECIPE_KEYS)}", file, getattr(data, "line", 1))
    for key, value in data.items():
        line = data.lines[key]
        if key not in RECIPE_KEYS:
            raise TrueupError(f"unknown recipe key {key!r}; allowed: {', '.join(RECIPE_KEYS)}",
                              file, line)
        if key == "description":
            if not isinstance(value, str):
                raise TrueupError("description must be a string", file, line)
            recipe.description = value
        elif key == "depends":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TrueupError("depends must be a list of recipe names, e.g. [base]",
                                  file, line)
            recipe.depends = list(value)
            recipe.depends_lines = list(getattr(value, "lines", [line] * len(value)))
        elif key == "attributes":
            if value is None:
                continue
            if not isinstance(value, dict):
                raise TrueupError("attributes must be a mapping, e.g. {web: {port: 80}}",
                                  file, line)
            recipe.attributes = value
        elif key == "resources":
            if value is None:
                continue
            if not isinstance(value, LineList):
                raise TrueupError("resources must be a list; each item starts with "
                                  "'- <type>: <name>'", file, line)
            recipe.resources = value
        elif key == "phase":
            if value not in ("bake", "boot", "any"):
                raise TrueupError(f"phase must be bake, boot or any, not {value!r}", file, line)
            recipe.phase = value
        elif key == "when":
            if not isinstance(value, (str, bool)):
                raise TrueupError("when must be an expression such as \"{{ facts.os_family "
                                  "== 'debian' }}\" or true/false", file, line)
            recipe.when, recipe.when_line = value, line
    return recipe


def _nothing_sensitive(data: Any) -> bool:
    """Whether a parsed recipe declares no resource with ``sensitive`` set (or templated)."""
    resources = data.get("resources") if isinstance(data, dict) else None
    if not isinstance(resources, list):
        return True
    return not any(isinstance(item, dict) and item.get("sensitive") not in (None, False)
                   for item in resources)


def expand_runlist(bundle: Bundle, names: list[str], origin: str) -> list[Recipe]:
    """Recipes to converge: each name's ``depends`` first, every recipe once.

    A depth-first walk with its own stack. Depends may nest :data:`MAX_DEPENDS_DEPTH`
    recipes deep: deeper is an error (validate expands each recipe on its own, so its
    work grows with the square of the depth).
    """
    order: list[Recipe] = []
    done: set[str] = set()
    for name in names:
        if name in done:
            continue
        first = bundle.recipe(name, origin, None)
        chain = [name]  # the recipes being expanded, outermost first
        in_chain = {name}
        walk = [(first, iter(zip(first.depends, first.depends_lines, strict=False)))]
        while walk:
            recipe, deps = walk[-1]
            for dep, dep_line in deps:
                if dep in done:
                    continue
                if dep in in_chain:
                    cycle = " -> ".join(chain[chain.index(dep):] + [dep])
                    raise TrueupError(f"recipe dependency cycle: {cycle}", recipe.file,
                                      dep_line)
                if len(chain) >= MAX_DEPENDS_DEPTH:
                    names = chain + [dep]
                    shown = " -> ".join(names[:3] + ["…"] + names[-3:])
                    raise TrueupError(f"depends nested deeper than {MAX_DEPENDS_DEPTH} "
                                      f"recipes: {shown}; depend on fewer levels",
                                      recipe.file, dep_line)
                child = bundle.recipe(dep, recipe.file, dep_line)
                chain.append(dep)
                in_chain.add(dep)
                walk.append((child, iter(zip(child.depends, child.depends_lines,
                                             strict=False))))
                break
            else:
                walk.pop()
                in_chain.discard(chain.pop())
                done.add(recipe.name)
                order.append(recipe)
    return order
