"""trueup's command line: run, plan, validate, report, kinds, facts."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from agent import __version__
from agent.errors import Interrupted, LockBusy, TrueupError

EPILOG = """exit codes: 0 success; 1 could not run (nothing changed); 4 failures;
with --detailed-exitcodes 0 no changes, 2 changes, 4 failures, 6 both;
75 another run holds the lock; 143 / 130 stopped by SIGTERM / SIGINT (the report
says what was done and what was not); 141 the reader of the output went away
(trueup kinds | head -1) - except run and plan, which finish the converge, keep
the report and exit with its result."""

EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a program killed by SIGPIPE
# output is a side show for these: a closed pipe must not change their exit code
CONVERGING = ("run", "plan")


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


def _bake_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", nargs="?", help="bundle folder, s3://… or ssm:/trueup/ENV")
    p.add_argument("--source", "-s", help="the bundle (same as SRC)")
    p.add_argument("--runlist", "-r", default="", help="recipes to bake, comma separated")
    p.add_argument("-a", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="set an attribute (highest precedence)")
    p.add_argument("--attributes", dest="attributes_file", default="", metavar="FILE",
                   help="node attributes JSON/YAML (may hold a run_list)")
    p.add_argument("--detailed-exitcodes", action="store_true",
                   help="0 no changes, 2 changes, 4 failures, 6 both")
    p.add_argument("--json", action="store_true", help="print the JSON report instead")
    p.add_argument("--lock-timeout", type=float, default=None, metavar="SECONDS")
    p.add_argument("--color", choices=("auto", "always", "never"), default=None)
    p.set_defaults(phase="bake", event=None, diff=False)


def _seal_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--noop", action="store_true",
                   help="list what would be removed; remove nothing")
    p.add_argument("--json", action="store_true", help="print what was (or would be) removed "
                   "as JSON")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)


class _Parser(argparse.ArgumentParser):
    """argparse, except that a command line it cannot read is trueup's exit 1.

    argparse exits 2, which ``--detailed-exitcodes`` reserves for "changes were made".
    The message is one line, as every error of trueup is.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"trueup: error: {self.prog}: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="trueup", epilog=EPILOG,
                  description="Converge this machine to the state its recipes declare.")
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
    plan.add_argument("--bake-report", action="store_true",
                      help="boot cost of OS-only, fully baked and the recipes' split, from "
                      "the measured full runs")
    val = sub.add_parser("validate", help="check a bundle: schema, templates, graph")
    val.add_argument("path", help="bundle folder")
    val.add_argument("--runlist", "-r", default="")
    val.add_argument("-a", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    val.add_argument("--attributes", dest="attributes_file", default="", metavar="FILE")
    rep = sub.add_parser("report", help="the last run's report")
    rep.add_argument("--json", action="store_true")
    kinds = sub.add_parser("kinds", help="resource types and their fields")
    kinds.add_argument("kind", nargs="?", default="", metavar="KIND",
                       help="show this type only, with its description and example")
    kinds.add_argument("--json", action="store_true",
                       help="print fields, states, actions and example as JSON")
    sub.add_parser("facts", help="this host's facts as JSON")
    _bake_args(sub.add_parser("bake", help="image build: converge the bake phase, write "
                              "the bake manifest", epilog=EPILOG))
    _seal_args(sub.add_parser("seal", help="image build: remove host keys, machine id, "
                              "logs and secrets before the snapshot"))
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
    """trueup's entry point: the exit code of the command ``argv`` names.

    When stdout's reader goes away, the rest of the output goes to /dev/null, with
    no traceback: a command whose output is its product exits 141; run and plan
    have already finished (their console never raises) and keep their code.
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        _reader_gone()
        return EXIT_PIPE


def _main(argv: Sequence[str] | None) -> int:
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
        code = _command(args.command)(args, cfg)
        try:
            sys.stdout.flush()  # here, not at exit, where a failure is a traceback
        except BrokenPipeError:
            _reader_gone()
            return code if args.command in CONVERGING else EXIT_PIPE
        return code
    except TrueupError as exc:
        print(f"trueup: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except LockBusy as exc:
        print(f"trueup: {exc}; try again later or pass --lock-timeout SECONDS", file=sys.stderr)
        return 75
    except Interrupted as exc:
        print(f"trueup: interrupted by {exc.name}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("trueup: interrupted", file=sys.stderr)
        return 130


MAX_ERROR = 2000  # characters of an error line; a longer one loses its middle


def one_line(text: str, limit: int = MAX_ERROR) -> str:
    """``text`` as one line of plain text: line breaks and other control characters
    (a value's newline, a terminal escape) are written as escapes, such as ``\\n``.

    Beyond ``limit`` characters (an error quoting a huge value) the middle is cut:
    the start says where and what, the end often what is allowed.
    """
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]} … ({len(text) - 2 * half} characters cut) … {text[-half:]}"
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _reader_gone() -> None:
    """stdout (and stderr, when it is the same pipe) lost its reader: write on to /dev/null."""
    from agent.engine.report import silence

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            silence(stream)


# each command lives in agent/commands/<module>.py as a function (args, cfg) -> exit code
COMMANDS = {"run": ("run", "main"), "plan": ("plan", "main"),
            "validate": ("validate", "main"), "report": ("report", "main"),
            "kinds": ("kinds", "main"), "facts": ("facts", "main"),
            "publish": ("publish", "main"),
            "bake": ("bake", "main"), "seal": ("seal", "main")}


def _command(name: str) -> Callable[[argparse.Namespace, Any], int]:
    import importlib

    module, func = COMMANDS[name]
    return getattr(importlib.import_module(f"agent.commands.{module}"), func)
