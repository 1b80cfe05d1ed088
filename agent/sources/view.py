"""A fetched bundle as the session loads it: the folder, plus run lists, attributes and
recipes that came from Parameter Store beside it.

Precedence (highest first): Parameter Store run list for the role and event, for the
event, for the role, for the environment; then the bundle's own ``runlist.<event>`` /
``runlist`` files. Parameter Store attributes override the bundle's ``attributes.yml``
(node files and ``-a`` still override both).
"""

from __future__ import annotations

import os

from agent.compile.loader import Bundle, Recipe, parse_recipe
from agent.errors import TrueupError
from agent.host.files import sha256
from agent.host.system import fsync_dir, write_file_atomic
from agent.sources import cache
from agent.sources.base import Fetched

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any


class SourcedBundle(Bundle):
    """A :class:`Bundle` whose extras come from its source; ``fetched`` says where from."""

    def __init__(self, fetched: Fetched, state_dir: str, cache_dir: str | None = None) -> None:
        from agent.aws.secrets import SecretStore

        self.fetched = fetched
        self.recipes_dir = _materialize(fetched.recipes, state_dir) if fetched.recipes else ""
        root = fetched.root or self.recipes_dir
        if not root:
            raise TrueupError(f"{fetched.origin.get('source')}: no bundle pointer and no "
                              "recipes: publish one with trueup publish")
        if cache_dir:  # one folder per bundle read, so old bundles' entries can be pruned
            key = os.fsencode(f"{os.path.abspath(root)}\0{self.recipes_dir}")
            cache_dir = os.path.join(cache_dir, sha256(key).hexdigest()[:32])
        super().__init__(root, cache_dir)
        both = sorted(set(fetched.recipes) & set(super().names())) if fetched.root else []
        if both:
            name = both[0]
            raise TrueupError(f"recipe {name!r} is both in the bundle and in Parameter Store "
                              f"({fetched.recipes[name][1]}): keep one of them")
        self.secrets = SecretStore(fetched.secrets,
                                   offline=fetched.offline_reason if fetched.offline else "")

    def names(self) -> list[str]:
        return sorted(set(super().names()) | set(self.fetched.recipes))

    def cached_paths(self) -> list[str]:
        """The state-dir cache entries this bundle reads: kept when caches are pruned."""
        return [p for p in (self.fetched.root, self.recipes_dir, self.cache_dir) if p]

    def recipe(self, name: str, wanted_by: str | None = None,
               line: int | None = None) -> Recipe:
        stored = self.fetched.recipes.get(name)
        if stored is None or name in self._recipes or not self.recipes_dir:
            return super().recipe(name, wanted_by, line)
        folder = os.path.join(self.recipes_dir, name)
        file = os.path.join(folder, "recipe.yml")
        try:
            recipe = parse_recipe(name, folder, file, self.cache_dir)
        except TrueupError as exc:
            raise TrueupError(exc.message, stored[1], exc.line, exc.column) from None
        recipe.file = stored[1]
        self._recipes[name] = recipe
        return recipe

    def runlist(self, event: str | None = None) -> tuple[list[str], str] | None:
        found = self.fetched.runlists.get(event or "")
        return found if found is not None else super().runlist(event)

    def attributes(self) -> tuple[dict[str, Any], str] | None:
        own = super().attributes()
        if not self.fetched.attributes:
            return own
        from agent.compile import attributes as attrs

        merged = attrs.merge_all([own[0] if own else {}, self.fetched.attributes])
        return merged, self.fetched.attributes_origin


def _materialize(recipes: dict[str, tuple[str, str]], state_dir: str) -> str:
    """Write Parameter Store recipes as ``<name>/recipe.yml`` in a content-addressed folder."""
    import json

    digest = sha256(json.dumps(recipes, sort_keys=True).encode()).hexdigest()
    folder = os.path.join(cache.recipes_dir(state_dir), digest)
    if os.path.isdir(folder):
        return folder
    tmp = f"{folder}.tmp-{os.getpid()}"
    if os.path.isdir(tmp):  # left by a killed run that had this pid
        import shutil

        shutil.rmtree(tmp)
    for name, (text, _) in recipes.items():
        os.makedirs(os.path.join(tmp, name), mode=0o700)
        write_file_atomic(os.path.join(tmp, name, "recipe.yml"), text.encode())
    fsync_dir(tmp)  # the folder is complete on disk before it gets its name
    os.rename(tmp, folder)
    fsync_dir(os.path.dirname(folder))
    return folder
