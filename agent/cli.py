"""trueup's command line: run, plan, validate, report, kinds, facts, publish, verify, fleet."""

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
    _report_to_args(p)


def _report_to_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report-to", default=None, metavar="SINKS",
                   help="also send the report to cloudwatch,ssm,metrics (comma separated; "
                   "default: report_to in the configuration)")


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", nargs="?", help="bundle folder, s3:// or ssm:/trueup/ENV")
    p.add_argument("--source", "-s", help="same as SRC")
    p.add_argument("--runlist", "-r", default="", help="recipes whose checks run, comma separated")
    p.add_argument("--event", choices=("setup", "configure", "deploy", "undeploy", "shutdown"),
                   help="use the run list of this lifecycle event")
    p.add_argument("-a", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="set an attribute the checks read")
    p.add_argument("--attributes", dest="attributes_file", default="", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _report_to_args(p)


def _fleet_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="fleet_command", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="converge instances by tag through SSM Run Command")
    run.add_argument("--env", required=True, help="instances tagged trueup:env=ENV")
    run.add_argument("--role", default="", help="and tagged trueup:role=ROLE")
    run.add_argument("--target", action="append", default=[], metavar="TAG=VALUE",
                     help="and tagged TAG=VALUE (repeatable; instead of --role)")
    run.add_argument("--event", choices=("setup", "configure", "deploy", "undeploy", "shutdown"))
    run.add_argument("--noop", action="store_true", help="plan only: report drift, change nothing")
    run.add_argument("--source", default="", help="SRC for the instances (default: theirs)")
    run.add_argument("--runlist", default="", help="recipes to converge, comma separated")
    run.add_argument("--verify", action="store_true", help="run trueup verify after the run")
    run.add_argument("--report-to", default="", metavar="SINKS",
                     help="the instances send reports to cloudwatch,ssm,metrics")
    run.add_argument("--max-concurrency", default="10%", metavar="N|N%",
                     help="instances running at once (default 10%%)")
    run.add_argument("--max-errors", default="0", metavar="N|N%",
                     help="failures before SSM stops sending (default 0)")
    run.add_argument("--document", default="", metavar="NAME",
                     help="SSM Command document (default trueup-run-ENV, the stack's "
                     "RunDocumentName output)")
    run.add_argument("--timeout", type=int, default=3600, metavar="SECONDS",
                     help="delivery timeout of the command")
    run.add_argument("--wait", action="store_true",
                     help="follow the invocations: a row per instance, exit 1 if any failed")
    run.add_argument("--interval", type=float, default=5.0, help=argparse.SUPPRESS)
    run.add_argument("--wait-timeout", type=float, default=7200.0, metavar="SECONDS",
                     help="give up following after this long (default 7200)")
    status = sub.add_parser("status", help="per-instance compliance from SSM")
    status.add_argument("--env", required=True, help="instances tagged trueup:env=ENV")
    status.add_argument("--role", default="", help="and tagged trueup:role=ROLE")
    status.add_argument("--json", action="store_true")


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
    _verify_args(sub.add_parser("verify", help="run the recipes' testinfra checks on this host"))
    _fleet_args(sub.add_parser("fleet", help="run trueup across instances; their compliance"))
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
COMMANDS = {"run": ("run", "main"), "plan": ("run", "plan_main"),
            "validate": ("validate", "main"), "report": ("report", "main"),
            "kinds": ("kinds", "main"), "facts": ("facts", "main"),
            "publish": ("publish", "main"), "fleet": ("fleet", "main"),
            "verify": ("verify", "main")}


def _command(name: str) -> Callable[[argparse.Namespace, Any], int]:
    import importlib

    module, func = COMMANDS[name]
    return getattr(importlib.import_module(f"agent.commands.{module}"), func)
