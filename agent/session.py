"""One invocation of run / plan / validate, from source to report."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from agent import attributes as attrs
from agent import report as reports
from agent.backups import Backups
from agent.catalog import Catalog, compile_catalog
from agent.config import Config
from agent.errors import TrueupError
from agent.facts import Facts
from agent.loader import Bundle, Recipe, expand_runlist, parse_runlist
from agent.lock import RunLock
from agent.model import CHANGED, FAILED
from agent.render import Renderer
from agent.resources import Context
from agent.system import System

EXIT_OK, EXIT_CANNOT_RUN, EXIT_CHANGES, EXIT_FAILURES, EXIT_LOCKED = 0, 1, 2, 4, 75


@dataclass
class Options:
    """What the command line asked for."""

    source: str = ""
    runlist: str = ""
    event: str = ""
    phase: str = "all"
    noop: bool = False
    detailed_exitcodes: bool = False
    json: bool = False
    diff: bool = False
    assignments: list[str] = field(default_factory=list)
    attributes_file: str = ""
    lock_timeout: float | None = None
    splay: float = 0.0


@dataclass
class Prepared:
    """A bundle loaded, rendered and validated: ready to converge."""

    bundle: Bundle
    runlist: list[str]
    recipes: list[Recipe]
    catalog: Catalog
    attributes: dict[str, Any]


def resolve_source(opts: Options, cfg: Config) -> Bundle:
    """The bundle named by --source/SRC, the configuration, or the trueup:env tag.

    A folder, a .tar.gz, ``s3://bucket/key.tar.gz`` or ``ssm:/trueup/<env>`` (see
    agent.sources); remote ones are verified, and fall back to the last verified
    bundle when AWS cannot be reached.
    """
    from agent import sources

    src = opts.source or cfg.source
    if not src:
        env = cfg.env or _instance_env()
        src = f"ssm:/trueup/{env}" if env else ""
    if not src:
        raise TrueupError("no source: give a bundle folder (trueup run ./recipes) or set "
                          "source in /etc/trueup/config.toml or TRUEUP_SOURCE")
    ctx = sources.FetchContext(cfg.state_dir, role=cfg.role, event=opts.event)
    return sources.open_bundle(src, ctx, os.path.join(cfg.state_dir, "cache", "parsed"))


def _instance_env() -> str:
    """The trueup:env tag of this EC2 instance, or "" elsewhere."""
    from agent.ec2facts import tag

    return tag("trueup:env") or ""


def load_node_file(path: str) -> tuple[dict[str, Any], list[str] | None]:
    """A node JSON/YAML file (chef-client -j style): attributes, and an optional run_list."""
    from agent import yamlfile

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


def prepare(opts: Options, cfg: Config, bundle: Bundle, system: System,
            backups: Backups, facts: Facts | None = None) -> Prepared:
    """Load, render and validate everything; raise TrueupError before any change."""
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
        if found is None and opts.event:
            raise TrueupError(f"no run list for event {opts.event!r}: add runlist.{opts.event} "
                              "to the bundle or pass --runlist", bundle.root)
        if found is None and cfg.runlist:
            found = (parse_runlist(cfg.runlist), "configuration")
        if found is None:
            raise TrueupError("no run list: pass --runlist a,b or add a 'runlist' file to "
                              "the bundle", bundle.root)
        names, origin = found
    if not names:
        raise TrueupError("the run list is empty", origin)
    recipes = expand_runlist(bundle, names, origin)

    layers: list[dict[str, Any]] = [r.attributes for r in recipes]
    bundle_attrs = bundle.attributes()
    if bundle_attrs:
        layers.append(bundle_attrs[0])
    layers.append(node_attrs)
    layers += [attrs.parse_assignment(a) for a in opts.assignments]
    merged = attrs.merge_all(layers)

    facts = facts or Facts()
    from agent.boot import BootReads
    from agent.secrets import SecretStore

    boot = BootReads(opts.phase)  # secrets and EC2 facts: counted, never baked
    boot.watch_facts(facts)
    secrets = getattr(bundle, "secrets", None) or SecretStore()
    renderer = Renderer(merged, facts, {"secret": boot.secret_function(secrets)})
    renderer.boot = boot  # type: ignore[attr-defined]

    def context(recipe: Recipe) -> Context:
        return Context(recipe.dir, recipe.name, renderer.file, backups, system,
                       diffs=opts.noop or opts.diff)

    catalog = compile_catalog(recipes, renderer, context, opts.phase)
    return Prepared(bundle, names, recipes, catalog, merged)


def converge(opts: Options, cfg: Config, out: Any = None) -> int:
    """trueup run / plan: the whole job. Returns the exit code."""
    from agent import sources
    from agent.runner import Runner

    out = out or sys.stdout
    slept = _splay(opts.splay)
    started = time.time()
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + "-" + os.urandom(4).hex()
    meta: dict[str, Any] = {"run_id": run_id, "mode": "noop" if opts.noop else "run",
                            "source": opts.source or cfg.source, "event": opts.event or None,
                            "phase": opts.phase, "runlist": None}
    if slept:
        meta["splay_s"] = slept
    console = reports.Console(out, cfg.color, show_diff=opts.diff or opts.noop, noop=opts.noop)
    os.makedirs(cfg.state_dir, mode=0o700, exist_ok=True)
    timeout = cfg.lock_timeout if opts.lock_timeout is None else opts.lock_timeout
    system = System()
    with RunLock(os.path.join(cfg.state_dir, "run.lock"), timeout):
        bundle = None
        try:
            bundle = resolve_source(opts, cfg)
            notice = sources.offline_notice(bundle)
            if notice:
                print(notice, file=sys.stderr, flush=True)
            prepared = prepare(opts, cfg, bundle, system,
                               Backups(os.path.join(cfg.state_dir, "backup"), cfg.backups))
        except TrueupError as exc:
            meta.update(sources.report_fields(bundle))
            report = reports.build({**meta, "error": str(exc), "exit_code": 1}, [], started)
            reports.store(cfg.state_dir, report, cfg.history)
            raise
        meta["runlist"] = prepared.runlist
        meta["bundle"] = bundle.root
        meta.update(sources.report_fields(bundle))
        runner = Runner(prepared.catalog, system, noop=opts.noop,
                        on_result=None if opts.json else console.result)
        results = runner.run()
        fact_reads = getattr(getattr(system, "fact_host", None), "reads", None)
        if fact_reads:  # pyinfra facts read from the host this run (once each, ideally)
            meta["facts"] = {"reads": dict(fact_reads)}
        report = reports.build(meta, results, started)
        code = exit_code(report["totals"], opts.detailed_exitcodes)
        report["exit_code"] = code
        reports.store(cfg.state_dir, report, cfg.history)
    if opts.json:
        console.write(reports.dumps(report) + "\n")
    else:
        console.summary(report)
    return code


def _splay(limit: float) -> float:
    """Sleep a random 0..limit seconds (spreads a fleet's boot-time calls); the time slept."""
    if limit <= 0:
        return 0.0
    import random

    slept = random.uniform(0, limit)  # noqa: S311 - spreading load, not cryptography
    time.sleep(slept)
    return round(slept, 3)


def exit_code(totals: dict[str, int], detailed: bool) -> int:
    """0 ok; 4 on failures; with --detailed-exitcodes 2 for changes and 6 for both."""
    failed = totals[FAILED] > 0
    changed = totals[CHANGED] > 0
    if detailed:
        return (EXIT_CHANGES if changed else 0) | (EXIT_FAILURES if failed else 0)
    return EXIT_FAILURES if failed else EXIT_OK
