"""trueup's command line: run, plan, validate, report, kinds, facts."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from agent import __version__
from agent.errors import LockBusy, TrueupError

EPILOG = """exit codes: 0 success; 1 could not run (nothing changed); 4 failures;
with --detailed-exitcodes 0 no changes, 2 changes, 4 failures, 6 both;
75 another run holds the lock."""


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", nargs="?", help="bundle folder (same as --source)")
    p.add_argument("--source", "-s", help="bundle folder")
    p.add_argument("--runlist", "-r", default="", help="recipes to converge, comma separated")
    p.add_argument("--event", choices=("setup", "configure", "deploy", "undeploy", "shutdown"),
                   help="lifecycle event: use the bundle's runlist.<event>")
    p.add_argument("--phase", choices=("bake", "boot", "all"), default="all",
                   help="converge only resources of this phase (default all)")
    p.add_argument("-a", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="set an attribute, e.g. -a web.port=8080 (highest precedence)")
    p.add_argument("--attributes", dest="attributes_file", default="", metavar="FILE",
                   help="node attributes JSON/YAML (may hold a run_list)")
    p.add_argument("--detailed-exitcodes", action="store_true",
                   help="0 no changes, 2 changes, 4 failures, 6 both")
    p.add_argument("--json", action="store_true", help="print the JSON report instead")
    p.add_argument("--lock-timeout", type=float, default=None, metavar="SECONDS",
                   help="wait this long for another run to finish (default 0)")
    p.add_argument("--color", choices=("auto", "always", "never"), default=None)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="trueup", epilog=EPILOG,
                                  description="Converge this machine to the state its "
                                  "recipes declare.")
    top.add_argument("--version", action="version", version=f"trueup {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="converge this host", epilog=EPILOG)
    _run_args(run)
    run.add_argument("--noop", action="store_true", help="change nothing; show what would change")
    run.add_argument("--diff", action="store_true", help="show unified diffs of content changes")
    run.add_argument("--splay", type=float, default=None, metavar="SECONDS",
                     help="sleep a random 0..SECONDS before fetching (spreads a fleet's boot)")
    plan = sub.add_parser("plan", help="what run would change, with diffs (changes nothing)",
                          epilog=EPILOG)
    _run_args(plan)
    val = sub.add_parser("validate", help="check a bundle: schema, templates, graph")
    val.add_argument("path", help="bundle folder")
    val.add_argument("--runlist", "-r", default="")
    val.add_argument("-a", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    val.add_argument("--attributes", dest="attributes_file", default="", metavar="FILE")
    rep = sub.add_parser("report", help="the last run's report")
    rep.add_argument("--json", action="store_true")
    sub.add_parser("kinds", help="resource types and their fields")
    sub.add_parser("facts", help="this host's facts as JSON")
    pub = sub.add_parser("publish", help="validate, pack and upload a bundle; move the pointer")
    pub.add_argument("path", nargs="?", default="", help="bundle folder")
    pub.add_argument("--bucket", default="", help="S3 bucket for bundles")
    pub.add_argument("--prefix", default="", help="key prefix in the bucket")
    pub.add_argument("--env", required=True, help="environment: writes /trueup/ENV/bundle")
    pub.add_argument("--rollback", default="", metavar="VERSION|LABEL",
                     help="point ENV again at an earlier parameter version, label or bundle "
                     "version")
    pub.add_argument("--bundle-version", default="", metavar="V",
                     help="the pointer's version string (default: UTC time)")
    pub.add_argument("--label", default="", help="also label the new pointer version")
    pub.add_argument("--kms-key", default="", help="SSE-KMS key (default SSE-S3)")
    pub.add_argument("--ssm-path", default="", metavar="PATH",
                     help="parameter path instead of /trueup/ENV")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from agent.config import Config
    from agent.redact import install_excepthook

    install_excepthook()
    if os.environ.get("TRUEUP_LOG_LEVEL") or os.environ.get("TRUEUP_LOG_FILE"):
        from agent import logs

        logs.setup()  # otherwise set up when a library that logs is first imported
    try:
        cfg = Config.load()
        if getattr(args, "color", None):
            cfg.color = args.color
        return COMMANDS[args.command](args, cfg)
    except TrueupError as exc:
        print(f"trueup: error: {exc}", file=sys.stderr)
        return 1
    except LockBusy as exc:
        print(f"trueup: {exc}; try again later or pass --lock-timeout SECONDS", file=sys.stderr)
        return 75
    except KeyboardInterrupt:
        print("trueup: interrupted", file=sys.stderr)
        return 130


def _options(args: argparse.Namespace, noop: bool) -> object:
    from agent.session import Options

    if args.src and args.source and args.src != args.source:
        raise TrueupError("give the source once: as SRC or as --source")
    return Options(source=args.src or args.source or "", runlist=args.runlist,
                   event=args.event or "", phase=args.phase, noop=noop,
                   detailed_exitcodes=args.detailed_exitcodes, json=args.json,
                   diff=getattr(args, "diff", False) or noop, assignments=args.assignments,
                   attributes_file=args.attributes_file, lock_timeout=args.lock_timeout)


def cmd_run(args: argparse.Namespace, cfg: object) -> int:
    from agent.session import converge

    opts = _options(args, args.noop)
    splay = cfg.splay if args.splay is None else args.splay  # type: ignore[attr-defined]
    if splay < 0:
        raise TrueupError(f"--splay must be 0 or more seconds, not {splay:g}")
    opts.splay = 0.0 if args.noop else splay  # type: ignore[attr-defined]
    return converge(opts, cfg)


def cmd_plan(args: argparse.Namespace, cfg: object) -> int:
    from agent.session import converge

    return converge(_options(args, True), cfg)


def cmd_validate(args: argparse.Namespace, cfg: object) -> int:
    from agent.validate import validate_bundle

    checked = validate_bundle(args.path, args.runlist, args.assignments, args.attributes_file)
    print(f"trueup validate: {args.path}: OK ({checked})")
    return 0


def cmd_report(args: argparse.Namespace, cfg: object) -> int:
    from agent import report as reports

    last = reports.load_last(cfg.state_dir)  # type: ignore[attr-defined]
    if last is None:
        raise TrueupError("no run recorded yet", cfg.state_dir)  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps(last, indent=2))
        return 0
    print(f"run {last['run_id']} ({last['mode']}) started {last['started']}, "
          f"{last['duration_s']:.2f}s, exit {last.get('exit_code')}")
    if last.get("error"):
        print(f"error: {last['error']}")
    for res in last.get("resources", []):
        if res["status"] not in ("unchanged", "guarded"):
            detail = res.get("error") or ", ".join(c["field"] for c in res.get("changes", []))
            print(f"  {res['status']:<12} {res['resource']}  {detail}")
    t = last.get("totals", {})
    if t:
        print("totals: " + ", ".join(f"{k} {v}" for k, v in t.items()))
    return 0


def cmd_kinds(args: argparse.Namespace, cfg: object) -> int:
    import inspect

    from agent.resources import COMMON_FIELDS, load_all

    for kind, cls in load_all().items():
        print(f"{kind}\n{'=' * len(kind)}")
        print(inspect.cleandoc(cls.__doc__ or "").strip())
        print()
    print("Fields every type takes\n=======================")
    for name, fld in COMMON_FIELDS.items():
        print(f"  {name}: {fld.doc}")
    return 0


def cmd_facts(args: argparse.Namespace, cfg: object) -> int:
    from agent.facts import Facts

    print(json.dumps(Facts().gather_all(), indent=2, sort_keys=True, default=str))
    return 0


def cmd_publish(args: argparse.Namespace, cfg: object) -> int:
    from agent import publish

    if args.rollback:
        if args.path:
            raise TrueupError("give a bundle folder or --rollback, not both")
        result = publish.rollback(args.env, args.rollback, args.label, args.ssm_path)
    else:
        if not args.path:
            raise TrueupError("publish needs a bundle folder: trueup publish PATH --bucket B "
                              "--env E (or --rollback VERSION)")
        result = publish.publish(args.path, args.bucket, args.env, args.prefix,
                                 args.bundle_version, args.kms_key, args.label, args.ssm_path)
    print(publish.describe(result))
    return 0


COMMANDS = {"run": cmd_run, "plan": cmd_plan, "validate": cmd_validate, "report": cmd_report,
            "kinds": cmd_kinds, "facts": cmd_facts, "publish": cmd_publish}
