"""A bundle and a request → the catalog of one run: run list, attributes, rendered resources.

Nothing here changes the host; every error is a TrueupError raised before the first change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.compile import attributes as attrs
from agent.compile.catalog import compile_catalog
from agent.compile.loader import Bundle, Recipe, expand_runlist, parse_runlist
from agent.compile.options import Options, Prepared
from agent.compile.phases import BootReads
from agent.compile.render import Renderer
from agent.config import Config
from agent.errors import TrueupError
from agent.host.facts import Facts
from agent.host.pyinfra_bridge import FactHost
from agent.host.system import System
from agent.resources import Context


def load_node_file(path: str) -> tuple[dict[str, Any], list[str] | None]:
    """A node JSON/YAML file (chef-client -j style): attributes, and an optional run_list."""
    from agent.compile import yamlfile

    data = yamlfile.load(path)
    if not isinstance(data, dict):
        raise TrueupError("attributes file must hold a mapping", path)
    data = dict(data)
    runlist = data.pop("run_list", None)
    if runlist is not None:
        if isinstance(runlist, str):
            runlist = parse_runlist(runlist)
        elif not isinstance(runlist, list) or not all(isinstance(x, str) for x in runlist):
            raise TrueupError("run_list must be a list of recipe names", path)
        else:
            runlist = parse_runlist(",".join(runlist))
    return data, runlist


def runlist_recipes(opts: Options, cfg: Config, bundle: Bundle,
                    strict: bool = True) -> tuple[list[str], list[Recipe], dict[str, Any]]:
    """The run's run list, its recipes (expanded) and the attributes they run with.

    The run list is ``--runlist``, else the node file's, else the bundle's (for
    ``opts.event``), else the configuration's. The attributes merge the recipes', the
    bundle's, the node file's and the ``-a`` assignments, later winning. ``strict``
    (a run) refuses an event with no run list of its own and an empty run list;
    ``trueup verify`` (strict=False) falls back to the configured one and accepts it.
    """
    node_attrs: dict[str, Any] = {}
    node_runlist = None
    if opts.attributes_file:
        node_attrs, node_runlist = load_node_file(opts.attributes_file)
    if opts.runlist:
        names, origin = parse_runlist(opts.runlist), "--runlist"
    elif node_runlist:
        names, origin = node_runlist, opts.attributes_file
    else:
        found = bundle.runlist(opts.event or None)
        if found is None and opts.event and strict:
            raise TrueupError(f"no run list for event {opts.event!r}: add runlist.{opts.event} "
                              "to the bundle or pass --runlist", bundle.root)
        if found is None and cfg.runlist:
            found = (parse_runlist(cfg.runlist), "configuration")
        if found is None:
            raise TrueupError("no run list: pass --runlist a,b or add a 'runlist' file to "
                              "the bundle", bundle.root)
        names, origin = found
    if not names and strict:
        raise TrueupError("the run list is empty", origin)
    recipes = expand_runlist(bundle, names, origin)

    layers: list[dict[str, Any]] = [r.attributes for r in recipes]
    bundle_attrs = bundle.attributes()
    if bundle_attrs:
        layers.append(bundle_attrs[0])
    layers.append(node_attrs)
    layers += [attrs.parse_assignment(a) for a in opts.assignments]
    merged = attrs.merge_all(layers)
    return names, recipes, merged


def prepare(opts: Options, cfg: Config, bundle: Bundle, system: System, backups: Any,
            facts: Facts, secrets: Callable[[Any], str]) -> Prepared:
    """Load, render and validate everything; raise TrueupError before any change.

    ``facts`` are the run's host facts (with its instance facts), ``secrets`` resolves
    ``secret("/name")``, ``backups`` keeps replaced file content (engine.backups).
    """
    names, recipes, merged = runlist_recipes(opts, cfg, bundle)

    boot = BootReads(opts.phase)  # secrets and EC2 facts: counted, never baked
    boot.watch_facts(facts)
    renderer = Renderer(merged, facts, {"secret": boot.secret_function(secrets)}, boot,
                        template_options=bundle.settings().get("templates"))

    fact_host = FactHost(system)

    def context(recipe: Recipe) -> Context:
        return Context(recipe.dir, recipe.name, renderer.file, backups, system, fact_host,
                       diffs=opts.noop or opts.diff, state_dir=cfg.state_dir)

    catalog = compile_catalog(recipes, renderer, context, opts.phase)
    reads = {"secrets": boot.secrets, "instance": boot.instance, "volatile": renderer.volatile}
    return Prepared(bundle, names, recipes, catalog, merged, fact_host, reads)
