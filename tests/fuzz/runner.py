"""Run a generated case through ``trueup validate``, ``plan`` and ``run`` in a sandbox, and check
the invariants.

Each command is a subprocess (``python -m agent``) with its own session, the case's private
``TRUEUP_STATE_DIR`` and ``TRUEUP_CONFIG``, no EC2 metadata service, a wall-clock limit (a
command still running then is killed and counts as a hang) and an address-space limit
(``RLIMIT_AS``, 1 GiB by default: running out must be a clean error, never a traceback).
Its peak RSS is read from ``os.wait4``.

Invariants (a broken one is a *violation*):

- no "Traceback" on stdout or stderr;
- exit codes: validate 0 or 1; plan and run 0, 1, 2, 4 or 6 (``--detailed-exitcodes``);
- no hang, peak RSS under the limit, no death by signal;
- validate and plan change nothing (target and bundle); run never changes the bundle, and
  a run that exits 1 leaves the target as it was;
- a valid case converges (run exits 0 or 2) and a second run exits 0, changing nothing;
- a case over one of trueup's documented limits (file sizes, ``depends`` depth) is refused:
  every command exits 1 with one "trueup: error:" line.

Figures that are counted but are not violations (*notes*): an exit-1 stderr that is not one
line starting "trueup: error:", an "internal error" in the output (a kind's bug, caught),
and validate and run disagreeing about whether the bundle can run.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fuzz.generate import Case
from tests.helpers import REPO, snapshot

GIB = 1024 ** 3
VALIDATE_CODES = frozenset({0, 1})
RUN_CODES = frozenset({0, 1, 2, 4, 6})
KEEP_OUTPUT = 4000  # characters of stdout/stderr kept per command


@dataclass
class Limits:
    """The sandbox of one command."""

    timeout: float = 20.0   # seconds of wall clock
    memory: int = GIB       # bytes of address space (RLIMIT_AS) and the RSS ceiling
    python: str = sys.executable
    pycache: str | None = None  # PYTHONPYCACHEPREFIX: compile trueup once, not per command
    # "exec": each command is a new ``python -m agent``. "fork": a warm interpreter (one per
    # thread, its imports done) forks each command, which then runs agent/__main__.py as
    # ``-m`` would; the same limits, about 0.2 s less start-up per command
    mode: str = "exec"


@dataclass
class Outcome:
    """What one command did."""

    command: str                 # validate, plan, run, run2
    argv: list[str]
    code: int | None             # None when killed at the time limit
    stdout: str
    stderr: str
    seconds: float
    max_rss_kb: int
    hang: bool = False
    target_changed: bool = False
    bundle_changed: bool = False
    stderr_lines: int = 0        # lines of the whole stderr (``stderr`` may be cut short)
    stderr_chars: int = 0

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr + self.stdout

    @property
    def one_line_error(self) -> bool:
        """Whether stderr is exactly one line starting "trueup: error:"."""
        return self.stderr_lines == 1 and self.stderr.lstrip().startswith("trueup: error:")

    @property
    def internal_error(self) -> bool:
        return "internal error:" in self.stdout + self.stderr

    def brief(self) -> str:
        status = "HANG" if self.hang else f"exit {self.code}"
        text = (f"  {self.command}: {status} in {self.seconds:.2f}s, "
                f"max RSS {self.max_rss_kb // 1024} MiB"
                + (", target changed" if self.target_changed else "")
                + (", bundle changed" if self.bundle_changed else ""))
        for name, out in (("stdout", self.stdout), ("stderr", self.stderr)):
            if out.strip():
                text += f"\n    {name}:\n" + "\n".join("      " + line
                                                      for line in out.strip().splitlines()[-40:])
        return text


@dataclass
class CaseResult:
    """A case, what each command did, and what broke."""

    case: Case
    outcomes: list[Outcome] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def kinds(self) -> list[str]:
        """Each violation without its detail, e.g. "run: traceback"."""
        return [v.split(" (")[0] for v in self.violations]

    def report(self) -> str:
        """Everything needed to reproduce and judge a failure: case, seed, files, output."""
        lines = [f"{self.case.name}"]
        lines += [f"  VIOLATION: {v}" for v in self.violations]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [o.brief() for o in self.outcomes]
        lines.append(self.case.listing())
        return "\n".join(lines)


def child_env(case: Case, limits: Limits) -> dict[str, str]:
    """The environment of trueup in a case: private state, no config, no AWS, no colour."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRUEUP_", "AWS_", "PYTHON"))}
    env.update({
        "PYTHONPATH": str(REPO),
        "TRUEUP_STATE_DIR": str(case.root / "state"),
        "TRUEUP_CONFIG": str(case.root / "no-config.toml"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "fuzz", "AWS_SECRET_ACCESS_KEY": "fuzz",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens: never the real AWS
        "NO_COLOR": "1",
        "LC_ALL": "C.UTF-8",
    })
    if limits.pycache:
        env["PYTHONPYCACHEPREFIX"] = limits.pycache
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _sandbox(memory: int) -> None:
    """In the child before exec: cap the address space, no core files."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def invoke(command: str, args: list[str], case: Case, limits: Limits) -> Outcome:
    """Run ``python -m agent ARGS`` for ``case`` under ``limits``; snapshots around it."""
    argv = [limits.python, "-m", "agent", *args]
    before_t, before_b = snapshot(case.target), snapshot(case.bundle)
    env, cwd = child_env(case, limits), str(case.root / "cwd")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        if limits.mode == "fork":
            status, max_rss, hung = _zygote(limits).launch(args, env, cwd, out, err, limits)
        else:
            status, max_rss, hung = _exec(argv, env, cwd, out, err, limits)
        seconds = time.monotonic() - start
        stdout, _ = _read(out)
        stderr, whole = _read(err)
    code = os.waitstatus_to_exitcode(status)
    return Outcome(command=command, argv=argv, code=None if hung else code,
                   stdout=stdout, stderr=stderr, seconds=seconds, max_rss_kb=max_rss,
                   hang=hung, target_changed=snapshot(case.target) != before_t,
                   bundle_changed=snapshot(case.bundle) != before_b,
                   stderr_lines=len(whole.strip().splitlines()), stderr_chars=len(whole))


def _exec(argv: list[str], env: dict[str, str], cwd: str, out: Any, err: Any,
          limits: Limits) -> tuple[int, int, bool]:
    """A new interpreter: (wait status, peak RSS in KiB, whether it was killed as hung)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                            cwd=cwd, preexec_fn=lambda: _sandbox(limits.memory),
                            start_new_session=True)
    status, max_rss, hung = wait_group(proc.pid, limits.timeout)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return status, max_rss, hung


def wait_group(pid: int, timeout: float) -> tuple[int, int, bool]:
    """Wait for our child ``pid``, the leader of its own process group, then reap it.

    At ``timeout`` the group is killed (a hang). Whatever the group still holds when the
    leader has exited (a command it left behind) is killed too. Both kills happen while
    the leader is not yet reaped, so the group's id cannot belong to anyone else.
    Returns (wait status, peak RSS in KiB, whether it hung).
    """
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    return status, usage.ru_maxrss, not ready


# --- fork mode: a warm interpreter per thread -------------------------------------------

_local = threading.local()
_zygotes: list[Zygote] = []


def _zygote(limits: Limits) -> Zygote:
    zyg = getattr(_local, "zygote", None)
    if zyg is None or zyg.proc.poll() is not None:
        zyg = _local.zygote = Zygote(limits)
        _zygotes.append(zyg)
    return zyg


def close_zygotes() -> None:
    """Stop every warm interpreter (they also stop when their stdin closes)."""
    while _zygotes:
        _zygotes.pop().close()


class Zygote:
    """A Python process with trueup imported that forks one child per command.

    Protocol, one JSON line each way: a request (args, env, cwd, memory, timeout, the two
    output files); the child's wait status, peak RSS and whether it hung. The warm
    interpreter waits for (and at the time limit kills) its own children.
    """

    def __init__(self, limits: Limits) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if limits.pycache:
            env["PYTHONPYCACHEPREFIX"] = limits.pycache
        self.proc = subprocess.Popen(
            [limits.python, "-c", "from tests.fuzz.runner import zygote_main; zygote_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=str(REPO),
            pass_fds=(), close_fds=True)

    def launch(self, args: list[str], env: dict[str, str], cwd: str, out: Any, err: Any,
               limits: Limits) -> tuple[int, int, bool]:
        import json

        request = {"args": args, "env": env, "cwd": cwd, "memory": limits.memory,
                   "timeout": limits.timeout,
                   "out": f"/proc/{os.getpid()}/fd/{out.fileno()}",
                   "err": f"/proc/{os.getpid()}/fd/{err.fileno()}"}
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork-mode interpreter died")
        answer = json.loads(line)
        return answer["status"], answer["max_rss_kb"], answer["hung"]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def zygote_main() -> None:
    """The warm interpreter: import what trueup imports, then fork a child per request."""
    import json

    import jinja2  # noqa: F401 - imported once here, not in every child
    import yaml  # noqa: F401

    import agent.cli
    import agent.commands.run
    import agent.commands.validate
    import agent.compile.prepare
    import agent.engine.runner
    import agent.resources
    import agent.sources.local  # noqa: F401

    agent.resources.load_all()
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    for line in requests:
        req = json.loads(line)
        out = os.open(req["out"], os.O_WRONLY)
        err = os.open(req["err"], os.O_WRONLY)
        pid = os.fork()
        if pid == 0:
            requests.close()
            answers.close()
            _child(req, out, err)  # never returns
        os.close(out)
        os.close(err)
        status, max_rss, hung = wait_group(pid, req["timeout"])
        answers.write(json.dumps({"status": status, "max_rss_kb": max_rss,
                                  "hung": hung}).encode() + b"\n")
        answers.flush()


def _child(req: dict[str, Any], out: int, err: int) -> None:
    """In the forked child: the sandbox, then agent/__main__.py run as ``python -m agent``
    would run it, down to the exit status of an uncaught exception and the final flush."""
    import atexit
    import io
    import runpy

    code = 1
    try:
        os.setsid()
        _sandbox(req["memory"])
        os.chdir(req["cwd"])
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        os.environ.clear()
        os.environ.update(req["env"])
        sys.stdin = sys.__stdin__ = open(os.devnull)  # noqa: SIM115
        sys.stdout = sys.__stdout__ = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
            errors="backslashreplace", line_buffering=True)
        sys.argv = ["-m", *req["args"]]
        try:
            runpy.run_module("agent", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_status(exc.code)
        except BaseException as exc:  # printed from agent/__main__.py on, as -m prints it
            tb = exc.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename != __file__:
                tb = tb.tb_next
            sys.excepthook(type(exc), exc, tb.tb_next if tb is not None else None)
            code = 1
        threading._shutdown()  # type: ignore[attr-defined] - as the interpreter's exit does
        atexit._run_exitfuncs()
        try:
            sys.stdout.flush()
        except Exception:  # what the interpreter does when the last flush fails
            code = 120
        sys.stderr.flush()
    finally:
        os._exit(code)


def _exit_status(code: object) -> int:
    """The exit status of ``SystemExit(code)``, as the interpreter computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _read(fh: Any) -> tuple[str, str]:
    """The output in ``fh``: its start and end (the middle of a long one cut), and all of it."""
    fh.seek(0)
    text = fh.read().decode("utf-8", "backslashreplace")
    if len(text) > 2 * KEEP_OUTPUT:
        return (text[:KEEP_OUTPUT] + f" … ({len(text)} characters in all) … "
                + text[-KEEP_OUTPUT:]), text
    return text, text


def run_case(case: Case, limits: Limits) -> CaseResult:
    """validate, (plan), run and for valid cases run again; check every invariant."""
    result = CaseResult(case)
    start = time.monotonic()
    flags = list(case.args)
    validate_flags = _validate_flags(flags)
    steps = [("validate", ["validate", case.source, *validate_flags])]
    if case.plan:
        steps.append(("plan", ["plan", case.source, "--detailed-exitcodes", *flags]))
    if not case.system:
        steps.append(("run", ["run", case.source, "--detailed-exitcodes", *flags]))
    for command, args in steps:
        outcome = invoke(command, args, case, limits)
        result.outcomes.append(outcome)
        _check(result, outcome, limits)
        if outcome.hang:
            break  # the rest would hang too, and take as long
    run = next((o for o in result.outcomes if o.command == "run"), None)
    if case.valid and run is not None and not run.hang:
        if run.code not in (0, 2):
            result.violations.append(f"run: valid case not converged (exit {run.code})")
        else:
            again = invoke("run2", ["run", case.source, "--detailed-exitcodes", *flags], case,
                           limits)
            result.outcomes.append(again)
            _check(result, again, limits)
            if again.code != 0:
                result.violations.append(f"run2: second run did not exit 0 (exit {again.code})")
            if again.target_changed:
                result.violations.append("run2: second run changed the target")
    if case.refused:
        for o in result.outcomes:
            if not o.hang and (o.code != 1 or not o.one_line_error):
                result.violations.append(f"{o.command}: over-limit case not refused "
                                         f"(exit {o.code})")
    validate = result.outcomes[0]
    if run is not None and validate.code == 0 and run.code == 1:
        result.notes.append("validate passed, run refused")
    result.seconds = time.monotonic() - start
    return result


def _validate_flags(flags: list[str]) -> list[str]:
    """The flags validate takes too: all but ``--event E``."""
    out, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag == "--event":
            skip = True
        else:
            out.append(flag)
    return out


def _check(result: CaseResult, o: Outcome, limits: Limits) -> None:
    """The invariants of one command."""
    v = result.violations
    name = o.command
    if o.traceback:
        last = [line for line in o.stderr.strip().splitlines() if line.strip()][-1:]
        v.append(f"{name}: traceback ({last[0] if last else '?'})")
    if o.hang:
        v.append(f"{name}: hang (killed after {limits.timeout:g}s)")
    elif o.code is not None and o.code < 0:
        v.append(f"{name}: killed by a signal ({signal.Signals(-o.code).name})")
    elif o.code not in (VALIDATE_CODES if name == "validate" else RUN_CODES):
        v.append(f"{name}: exit code outside the documented set ({o.code})")
    if o.max_rss_kb * 1024 >= limits.memory:
        v.append(f"{name}: memory over the limit ({o.max_rss_kb // 1024} MiB)")
    if "MemoryError" in o.stderr and not o.traceback:
        result.notes.append(f"{name}: MemoryError reported")
    if o.bundle_changed:
        v.append(f"{name}: changed the bundle")
    if name in ("validate", "plan") and o.target_changed:
        v.append(f"{name}: changed the target (exit {o.code})")
    if name in ("run", "run2") and o.code == 1 and o.target_changed:
        v.append(f"{name}: exit 1 but the target changed")
    if o.code == 1 and not o.one_line_error and not o.traceback:
        result.notes.append(f"{name}: exit-1 stderr is not one 'trueup: error:' line")
    if o.stderr_chars > 10_000:
        result.notes.append(f"{name}: stderr of more than 10,000 characters")
    if o.internal_error:
        result.notes.append(f"{name}: internal error in the output")


def ensure_pycache(limits: Limits) -> None:
    """Compile trueup's modules once into ``limits.pycache`` (a warm-up command)."""
    if not limits.pycache:
        return
    Path(limits.pycache).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(REPO), PYTHONPYCACHEPREFIX=limits.pycache)
    code = ("import agent.cli, agent.commands.run, agent.commands.validate, "
            "agent.compile.prepare, agent.engine.runner, agent.resources, agent.sources.local; "
            "agent.resources.load_all()")
    subprocess.run([limits.python, "-c", code], env=env, check=True, cwd=str(REPO))
