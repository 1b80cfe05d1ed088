"""trueup's command line: run, plan, validate, report, kinds, facts, publish, verify,
fleet, userdata, watch, bake, seal.

Adding a command takes three steps, and touches nothing else here:

1. write ``agent/commands/<module>.py`` with a function ``(args, cfg) -> exit code``;
2. write ``_<name>_args(p)`` below: it adds the command's arguments to ``p`` with
   ``p.add_argument(...)``, as for any argparse parser;
3. add one line to :data:`COMMANDS`: ``"name": ("help text", _name_args, "module", "main")``.

``trueup <name> ...`` builds only that command's arguments: ``_<name>_args`` is called
with a recorder (:class:`_Recorder`) and the command line is read from what it recorded,
without importing argparse, as long as it uses nothing but plain options (``store``,
``store_true``, ``append``, ``type``, ``choices``, ``default``, one optional positional).
Anything else (``--help``, an error, an abbreviated option, an action the recorder does
not know) is handed to the full argparse parser, :func:`parser`, which reads it exactly
as before. So a new command never slows down ``run``, and its module is imported only
when it is the command that runs.
"""

from __future__ import annotations

import os
import sys

from agent import __version__
from agent.errors import Interrupted, LockBusy, TrueupError

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

EPILOG = """exit codes: 0 success; 1 could not run (nothing changed); 4 failures;
with --detailed-exitcodes 0 no changes, 2 changes, 4 failures, 6 both;
75 another run holds the lock; 194 a recipe asked for a reboot (the next run
resumes); 143 / 130 stopped by SIGTERM / SIGINT (the report
says what was done and what was not); 141 the reader of the output went away
(trueup kinds | head -1) - except run and plan, which finish the converge, keep
the report and exit with its result."""

EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a program killed by SIGPIPE
# output is a side show for these: a closed pipe must not change their exit code
CONVERGING = ("run", "plan")
# commands whose --help ends with the exit codes
WITH_EPILOG = ("run", "plan", "bake")


def _source_args(p: Any, src: str, source: str, runlist: str) -> None:
    """SRC, --source/-s and --runlist/-r (run, plan, bake, verify, watch); the help texts."""
    p.add_argument("src", nargs="?", help=src)
    p.add_argument("--source", "-s", help=source)
    p.add_argument("--runlist", "-r", default="", help=runlist)


def _attribute_args(p: Any, assign: str | None = None, node_file: str | None = None) -> None:
    """-a KEY=VALUE and --attributes FILE (run, plan, bake, verify, validate)."""
    p.add_argument("-a", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help=assign)
    p.add_argument("--attributes", dest="attributes_file", default="", metavar="FILE",
                   help=node_file)


NODE_FILE_HELP = "node attributes JSON/YAML (may hold a run_list)"
CONVERGE_HELP = "recipes to converge, comma separated"


def _run_args(p: Any) -> None:
    """The arguments run and plan share."""
    _source_args(p, "bundle folder (same as --source)", "bundle folder", CONVERGE_HELP)
    p.add_argument("--event", choices=("setup", "configure", "deploy", "undeploy", "shutdown"),
                   help="lifecycle event: use the bundle's runlist.<event>")
    p.add_argument("--phase", choices=("bake", "boot", "all"), default="all",
                   help="converge only resources of this phase (default all)")
    _attribute_args(p, "set an attribute, e.g. -a web.port=8080 (highest precedence)",
                    NODE_FILE_HELP)
    p.add_argument("--detailed-exitcodes", action="store_true",
                   help="0 no changes, 2 changes, 4 failures, 6 both")
    p.add_argument("--json", action="store_true", help="print the JSON report instead")
    p.add_argument("--lock-timeout", type=float, default=None, metavar="SECONDS",
                   help="wait this long for another run to finish (default 0)")
    p.add_argument("--color", choices=("auto", "always", "never"), default=None)
    _report_to_args(p)


def _report_to_args(p: Any) -> None:
    p.add_argument("--report-to", default=None, metavar="SINKS",
                   help="also send the report to cloudwatch,ssm,metrics (comma separated; "
                   "default: report_to in the configuration)")


def _verify_args(p: Any) -> None:
    _source_args(p, "bundle folder, s3:// or ssm:/trueup/ENV", "same as SRC",
                 "recipes whose checks run, comma separated")
    p.add_argument("--event", choices=("setup", "configure", "deploy", "undeploy", "shutdown"),
                   help="use the run list of this lifecycle event")
    _attribute_args(p, "set an attribute the checks read")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _report_to_args(p)


def _fleet_args(p: Any) -> None:
    import argparse

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


def _run_only_args(p: Any) -> None:
    """trueup run: the shared arguments, and those only a real run takes."""
    _run_args(p)
    p.add_argument("--noop", action="store_true", help="change nothing; show what would change")
    p.add_argument("--diff", action="store_true", help="show unified diffs of content changes")
    p.add_argument("--splay", type=float, default=None, metavar="SECONDS",
                   help="sleep a random 0..SECONDS before fetching (spreads a fleet's boot)")
    p.add_argument("--reboot", choices=("defer", "allow"), default="defer",
                   help="when a recipe asks for a reboot: defer (default: exit 194, as SSM "
                   "expects) or allow (reboot once the report is written)")


def _plan_args(p: Any) -> None:
    """trueup plan: the shared arguments, and the bake report."""
    _run_args(p)
    p.add_argument("--bake-report", action="store_true",
                   help="boot cost of OS-only, fully baked and the recipes' split, from "
                   "the last full run (with --json: as JSON)")


def _bake_args(p: Any) -> None:
    _source_args(p, "bundle folder, s3://… or ssm:/trueup/ENV", "the bundle (same as SRC)",
                 "recipes to bake, comma separated")
    _attribute_args(p, "set an attribute (highest precedence)", NODE_FILE_HELP)
    p.add_argument("--detailed-exitcodes", action="store_true",
                   help="0 no changes, 2 changes, 4 failures, 6 both")
    p.add_argument("--json", action="store_true", help="print the JSON report instead")
    p.add_argument("--lock-timeout", type=float, default=None, metavar="SECONDS")
    p.add_argument("--color", choices=("auto", "always", "never"), default=None)
    p.set_defaults(phase="bake", event=None, diff=False)


def _seal_args(p: Any) -> None:
    import argparse

    p.add_argument("--noop", action="store_true",
                   help="list what would be removed; remove nothing")
    p.add_argument("--json", action="store_true", help="print what was (or would be) removed "
                   "as JSON")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)


def _validate_args(p: Any) -> None:
    p.add_argument("path", help="bundle folder")
    p.add_argument("--runlist", "-r", default="")
    _attribute_args(p)


def _report_args(p: Any) -> None:
    p.add_argument("--json", action="store_true")


def _kinds_args(p: Any) -> None:
    p.add_argument("kind", nargs="?", default="", metavar="KIND",
                   help="show this type only, with its description and example")
    p.add_argument("--json", action="store_true",
                   help="print fields, states, actions and example as JSON")


def _facts_args(p: Any) -> None:
    """trueup facts takes no arguments."""


def _publish_args(p: Any) -> None:
    p.add_argument("path", nargs="?", default="", help="bundle folder")
    p.add_argument("--bucket", default="", help="S3 bucket for bundles")
    p.add_argument("--prefix", default="", help="key prefix in the bucket")
    p.add_argument("--env", required=True, help="environment: writes /trueup/ENV/bundle")
    p.add_argument("--rollback", default="", metavar="VERSION|LABEL",
                   help="point ENV again at an earlier parameter version, label or bundle "
                   "version")
    p.add_argument("--bundle-version", default="", metavar="V",
                   help="the pointer's version string (default: UTC time)")
    p.add_argument("--label", default="", help="also label the new pointer version")
    p.add_argument("--kms-key", default="", help="SSE-KMS key (default SSE-S3)")
    p.add_argument("--ssm-path", default="", metavar="PATH",
                   help="parameter path instead of /trueup/ENV")


def _watch_args(p: argparse.ArgumentParser) -> None:
    _source_args(p, "bundle (same as --source; default: configuration)",
                 "bundle folder, s3://... or ssm:/trueup/ENV", CONVERGE_HELP)
    p.add_argument("--interval", type=float, default=1800.0, metavar="SECONDS",
                   help="converge this often (default 1800)")
    p.add_argument("--splay", type=float, default=None, metavar="SECONDS",
                   help="add a random 0..SECONDS to each interval (default: configuration, "
                   "else 300)")
    p.add_argument("--poll", type=float, default=60.0, metavar="SECONDS",
                   help="read the release pointer this often (ssm: sources; default 60)")
    p.add_argument("--debounce", type=float, default=0.1, metavar="SECONDS",
                   help="quiet time after a file changes before it is repaired (default 0.1)")
    p.add_argument("--fight-limit", type=int, default=5, metavar="N",
                   help="more repairs of one resource in a minute is a fight (default 5)")
    p.add_argument("--reboot", choices=("defer", "allow"), default="defer",
                   help="when a recipe asks for a reboot: defer (default: the run exits 194 "
                   "and the request waits) or allow (reboot once the report is written)")


def _userdata_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("shell", "cloud-config"), default="shell",
                   help="a bash script (default) or #cloud-config")
    p.add_argument("--source", default="", help="bundle the instance converges "
                   "(ssm:/trueup/ENV, s3://..., a folder on the instance)")
    p.add_argument("--env", default="", help="environment (default: the trueup:env tag)")
    p.add_argument("--role", default="", help="role (default: the trueup:role tag)")
    p.add_argument("--runlist", default="", help="recipes, comma separated")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--wheel", default="", metavar="PATH|s3://...|https://...",
                       help="trueup wheel to install (a path on the instance, or a URL)")
    where.add_argument("--index-url", default="", metavar="URL",
                       help="install trueup from this package index")
    p.add_argument("--units", choices=("watch", "timer", "none"), default="watch",
                   help="watch: the trueup watch daemon (default); timer: trueup run "
                   "every 30 minutes; none: only the shutdown event")
    p.add_argument("--units-dir", action="store_true",
                   help="print the folder of trueup's systemd units and exit")


# name → (help, arguments builder, module in agent/commands/, function (args, cfg) -> code)
COMMANDS: dict[str, tuple[str, Callable[[Any], None], str, str]] = {
    "run": ("converge this host", _run_only_args, "run", "main"),
    "plan": ("what run would change, with diffs (changes nothing)", _plan_args, "plan", "main"),
    "validate": ("check a bundle: schema, templates, graph", _validate_args, "validate", "main"),
    "report": ("the last run's report", _report_args, "report", "main"),
    "kinds": ("resource types and their fields", _kinds_args, "kinds", "main"),
    "facts": ("this host's facts as JSON", _facts_args, "facts", "main"),
    "publish": ("validate, pack and upload a bundle; move the pointer", _publish_args,
                "publish", "main"),
    "verify": ("run the recipes' testinfra checks on this host", _verify_args, "verify", "main"),
    "fleet": ("run trueup across instances; their compliance", _fleet_args, "fleet", "main"),
    "userdata": ("print user data that installs and starts trueup on an instance",
                 _userdata_args, "userdata", "main"),
    "watch": ("daemon: converge every interval, when the release moves, and when a managed "
              "file drifts", _watch_args, "watch", "main"),
    "bake": ("image build: converge the bake phase, write the bake manifest", _bake_args,
             "bake", "main"),
    "seal": ("image build: remove host keys, machine id, logs and secrets before the snapshot",
             _seal_args, "seal", "main"),
}


def parser() -> argparse.ArgumentParser:
    """The full argparse parser of every command (help, errors, unusual command lines)."""
    top = _parser_class()(prog="trueup", epilog=EPILOG,
                          description="Converge this machine to the state its recipes declare.")
    top.add_argument("--version", action="version", version=f"trueup {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (text, add_args, _, _) in COMMANDS.items():
        extra = {"epilog": EPILOG} if name in WITH_EPILOG else {}
        add_args(sub.add_parser(name, help=text, **extra))
    return top


_PARSER_CLASS: Any = None


def _parser_class() -> type[argparse.ArgumentParser]:
    """argparse's parser, except that a command line it cannot read is trueup's exit 1.

    argparse exits 2, which ``--detailed-exitcodes`` reserves for "changes were made".
    The message is one line, as every error of trueup is.
    """
    global _PARSER_CLASS
    if _PARSER_CLASS is None:
        import argparse

        class Parser(argparse.ArgumentParser):
            __doc__ = _parser_class.__doc__

            def error(self, message: str) -> NoReturn:
                self.exit(1, f"trueup: error: {self.prog}: {message} (see {self.prog} --help)\n")

        _PARSER_CLASS = Parser
    return _PARSER_CLASS


class _Recorder:
    """Stands in for an argparse parser while ``_<name>_args(p)`` declares the arguments.

    ``ok`` turns False on anything :func:`_quick_parse` cannot read exactly as argparse
    would; that command line then goes to the full parser.
    """

    SIMPLE = {"store", "store_true", "append"}

    def __init__(self) -> None:
        self.options: dict[str, dict[str, Any]] = {}   # "--runlist" / "-r" → spec
        self.positional: dict[str, Any] | None = None
        self.dests: list[dict[str, Any]] = []
        self.ok = True

    def add_argument(self, *names: str, **kw: Any) -> None:
        action = kw.get("action", "store")
        spec = {"action": action, "type": kw.get("type"), "choices": kw.get("choices"),
                "required": kw.get("required", False),
                "default": kw.get("default", False if action == "store_true" else None)}
        if action not in self.SIMPLE or kw.get("nargs") not in (None, "?") or not names:
            self.ok = False
            return
        if not names[0].startswith("-"):
            if self.positional is not None or kw.get("nargs") != "?":
                self.ok = False  # a required positional: argparse's error if missing
                return
            spec["dest"] = names[0]
            self.positional = spec
        else:
            if kw.get("nargs") is not None:
                self.ok = False
                return
            long = [n for n in names if n.startswith("--")]
            spec["dest"] = kw.get("dest") or (long[0] if long else names[0]).lstrip("-") \
                .replace("-", "_")
            for n in names:
                self.options[n] = spec
        self.dests.append(spec)

    def __getattr__(self, name: str) -> Any:  # add_mutually_exclusive_group and the like
        self.ok = False
        return lambda *a, **k: self


def _quick_parse(command: str, argv: Sequence[str]) -> Any:
    """``argv`` (after the command name) read without argparse, or None to use argparse.

    The result has the attributes argparse would have set, ``command`` among them.
    """
    from types import SimpleNamespace

    rec = _Recorder()
    COMMANDS[command][1](rec)
    if not rec.ok:
        return None
    values: dict[str, Any] = {}
    seen_positional = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            if rec.positional is None or seen_positional:
                return None
            values[rec.positional["dest"]] = arg
            seen_positional = True
            continue
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        spec = rec.options.get(name)
        if spec is None and not arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[:2], "=", arg[2:]  # -aKEY=VALUE
            spec = rec.options.get(name)
        if spec is None:
            return None  # --help, an abbreviation, a typo: argparse says what it is
        if spec["action"] == "store_true":
            if eq:
                return None
            values[spec["dest"]] = True
            continue
        if not eq:
            if i >= len(argv) or argv[i].startswith("-"):
                return None
            value = argv[i]
            i += 1
        if spec["choices"] is not None and value not in spec["choices"]:
            return None
        if spec["type"] is not None:
            try:
                value = spec["type"](value)
            except (TypeError, ValueError):
                return None
        if spec["action"] == "append":
            values.setdefault(spec["dest"], list(spec["default"] or [])).append(value)
        else:
            values[spec["dest"]] = value
    out = SimpleNamespace(command=command)
    for spec in rec.dests:
        dest = spec["dest"]
        if dest in values:
            setattr(out, dest, values[dest])
        elif spec["required"]:
            return None
        else:
            default = spec["default"]
            setattr(out, dest, list(default) if isinstance(default, list) else default)
    return out


def parse_args(argv: Sequence[str]) -> Any:
    """The command line ``argv`` read: quickly when it is plain, else by argparse."""
    if argv and argv[0] in COMMANDS:
        args = _quick_parse(argv[0], argv[1:])
        if args is not None:
            return args
    return parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """trueup's entry point: the exit code of the command ``argv`` names.

    When stdout's reader goes away, the rest of the output goes to /dev/null, with
    no traceback: a command whose output is its product exits 141; run and plan
    have already finished (their console never raises) and keep their code.

    Called without ``argv`` (the ``trueup`` command, ``python -m agent``), it
    does not return: the process ends through :func:`exit_now`, without the
    interpreter's teardown.
    """
    try:
        code = _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        _reader_gone()
        code = EXIT_PIPE
    if argv is None:
        exit_now(code)
    return code


def _main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
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


def exit_now(code: int) -> NoReturn:
    """End the process with ``code``, everything written, without the interpreter's teardown.

    stdout and stderr are flushed (a reader that went away is no error: the rest goes
    to /dev/null), the ``atexit`` handlers run (logging's closes the log file), then
    ``os._exit`` skips freeing every object one by one, which takes longer than many
    runs. When something needs the ordinary exit (another thread still running, a
    profiler or coverage tracer that writes its data at exit), this is ``sys.exit``.
    """
    import atexit

    if sys.getprofile() is not None or sys.gettrace() is not None or _threads_running() \
            or "coverage" in sys.modules or "cProfile" in sys.modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except BrokenPipeError:
            _reader_gone()
            if code == 0:
                code = EXIT_PIPE
        except (OSError, ValueError):  # closed or failing: what the interpreter exits with
            code = 120
    atexit._run_exitfuncs()
    os._exit(code)


def _threads_running() -> bool:
    """Whether a thread other than this one is alive (the interpreter waits for those)."""
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


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


def _command(name: str) -> Callable[[argparse.Namespace, Any], int]:
    """The function of command ``name``; only its own module is imported."""
    import importlib

    _, _, module, func = COMMANDS[name]
    return getattr(importlib.import_module(f"agent.commands.{module}"), func)
