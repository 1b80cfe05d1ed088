"""trueup run and trueup plan: from source to report."""

from __future__ import annotations

import math
import os
import sys
import time

from agent.aws.ec2 import InstanceFacts
from agent.compile import stored
from agent.compile.options import Options, Prepared
from agent.config import Config
from agent.engine import reboot as reboots
from agent.engine import report as reports
from agent.engine.backups import Backups
from agent.engine.interrupt import StopOnSignal, interrupted_fields, interrupted_line
from agent.engine.lock import RunLock
from agent.errors import Interrupted, TrueupError
from agent.host.facts import Facts
from agent.host.system import System
from agent.model import CHANGED, FAILED
from agent.sources import cache

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from agent.commands.watch import Watching
    from agent.compile.loader import Bundle
    from agent.engine.runner import Runner

EXIT_OK, EXIT_CANNOT_RUN, EXIT_CHANGES, EXIT_FAILURES, EXIT_LOCKED = 0, 1, 2, 4, 75


def resolve_source(opts: Options, cfg: Config, instance: InstanceFacts) -> Bundle:
    """The bundle named by --source/SRC, the configuration, or the trueup:env tag.

    A folder, a .tar.gz, ``s3://bucket/key.tar.gz`` or ``ssm:/trueup/<env>`` (see
    agent.sources); remote ones are verified, and fall back to the last verified
    bundle when AWS cannot be reached.
    """
    from agent import sources

    src = opts.source or cfg.source
    if not src:
        env = cfg.env or instance.tag("trueup:env") or ""
        src = f"ssm:/trueup/{env}" if env else ""
    if not src:
        raise TrueupError("no source: give a bundle folder (trueup run ./recipes) or set "
                          "source in /etc/trueup/config.toml or TRUEUP_SOURCE")
    ctx = sources.FetchContext(cfg.state_dir, role=cfg.role, event=opts.event, instance=instance)
    return sources.open_bundle(src, ctx, os.path.join(cfg.state_dir, "cache", "parsed"))


def converge(opts: Options, cfg: Config, out: Any = None, reboot: str = "defer",
             watch: Watching | None = None,
             after: Callable[[Prepared, list[Any], dict[str, Any]], None] | None = None) -> int:
    """trueup run / plan: the whole job. Returns the exit code.

    ``after(prepared, results, report)`` runs once a converge finished (trueup bake
    writes its manifest there), before the report is stored.

    ``--phase boot`` on a baked image (one with a bake manifest): the baked resources are
    compiled too, and those whose input digest differs from the manifest's (the bundle
    changed since the bake) converge again; the report lists them as ``left_image``.
    Without ``--runlist`` (or a node file) it converges the run list that was baked.

    SIGTERM and SIGINT stop it cleanly (:class:`StopOnSignal`): the running command's
    process group is stopped, a report marked interrupted is kept, the lock is freed,
    and the exit code is 128 + the signal's number (143, 130).

    A reboot asked for by a resource (engine.reboot) ends the run with exit 194 and a
    resume marker; with ``reboot="allow"`` trueup then reboots the machine itself.

    ``watch`` is the daemon's (commands.watch): its signals are its own (SIGTERM lets the
    resource being converged finish, then the run stops with its report), it may limit
    the run to some resources (``only``: a drift repair), and it learns the catalog.
    """
    from agent.engine.runner import Runner

    out = out or sys.stdout
    slept = _splay(opts.splay)
    started = time.time()
    meta = _meta(opts, cfg, started, slept)
    console = reports.Console(out, cfg.color, show_diff=opts.diff or opts.noop, noop=opts.noop)
    os.makedirs(cfg.state_dir, mode=0o700, exist_ok=True)
    timeout = cfg.lock_timeout if opts.lock_timeout is None else opts.lock_timeout
    system = System()
    runner: Runner | None = None
    signals = StopOnSignal() if watch is None else watch.signals()
    with RunLock(os.path.join(cfg.state_dir, "run.lock"), timeout), signals as stop:
        pending = _resume(opts, cfg, meta)
        try:
            baked = _baked(cfg) if opts.phase == "boot" else None
            compile_opts = opts
            if baked:  # the baked run list, unless this run names its own
                runlist = opts.runlist
                if not runlist and not opts.attributes_file and baked.get("runlist"):
                    runlist = ",".join(map(str, baked["runlist"]))
                compile_opts = opts.replace(phase="all", runlist=runlist)
            prepared = _prepare(compile_opts, cfg, meta, started, system)
            if baked:
                from agent.compile.catalog import boot_subset
                from agent.engine import manifest

                prepared.catalog, left = boot_subset(prepared.catalog,
                                                     manifest.digests(baked))
                meta["left_image"] = left
            live = console.live is not None and not opts.json
            on_result = None if opts.json else console.result
            only = None
            if watch is not None:
                meta.update(watch.fields)
                watch.compiled(prepared.catalog)
                on_result, only = watch.on_result(on_result), watch.only
                if only is not None:
                    meta["repair"] = sorted(only)
            runner = Runner(prepared.catalog, system, noop=opts.noop, on_result=on_result,
                            progress=console.progress if live else None, only=only)
            try:
                results = runner.run()
            finally:
                console.close()
        except Interrupted as exc:
            report = reports.build(meta, runner.finished() if runner else [], started)
            report.update(interrupted_fields(exc, runner))
        else:
            fact_reads = prepared.fact_host.reads
            if fact_reads:  # pyinfra facts read from the host this run (once each, ideally)
                meta["facts"] = {"reads": dict(fact_reads)}
            report = reports.build(meta, results, started)
            report["exit_code"] = exit_code(report["totals"], opts.detailed_exitcodes)
            # what trueup seal must not leave in an image: resources that hold a secret
            report["sensitive"] = [n.ident for n in prepared.catalog.nodes if n.res.sensitive]
            report["pruned"] = cache.prune(cfg.state_dir, cfg.cache_keep,
                                           prepared.bundle.cached_paths())
            if not opts.noop:
                _reboot_fields(report, runner, pending, cfg, reboot)
            if after is not None:
                after(prepared, results, report)
        stop.disarm()
        keep_report(cfg, report)
    _tell(report, opts, console)
    if report.get("reboot", {}).get("action") == "reboot":
        done = system.run(["systemctl", "reboot"], timeout=120)
        if not done.ok:
            warn(f"systemctl reboot failed ({done.returncode}); reboot the machine yourself")
    return report["exit_code"]


def _resume(opts: Options, cfg: Config, meta: dict[str, Any]) -> dict[str, Any] | None:
    """Read the resume marker a run that asked for a reboot left (engine.reboot).

    After the reboot, the report says the run resumed; the marker itself goes when the
    run is over. Returns the marker when the reboot has not happened yet (still pending).
    """
    marker = reboots.read_marker(cfg.state_dir)
    if marker is None:
        return None
    if reboots.rebooted_since(marker):
        meta["resumed"] = {key: marker.get(key) for key in ("run_id", "resource", "reason",
                                                             "not_run")}
        say(reboots.resumed_line(marker))
        if not opts.noop:
            reboots.clear_marker(cfg.state_dir)
        return None
    return marker


def _reboot_fields(report: dict[str, Any], runner: Runner, pending: dict[str, Any] | None,
                   cfg: Config, reboot: str) -> None:
    """A reboot asked for by this run, or by an earlier one in this boot: exit 194."""
    request = runner.reboot
    if request is None and pending is not None:
        request = {key: pending.get(key, "") for key in ("resource", "when", "reason")}
        request["pending_since"] = pending.get("run_id", "")
    if request is None:
        return
    action = "reboot" if reboot == "allow" else "exit 194"
    report["reboot"] = {**request, "action": action}
    if runner.reboot_now:
        report["not_run"] = runner.unfinished()
        report["notifications_not_run"] = runner.pending_notifications()
    report["exit_code"] = reboots.EXIT_REBOOT
    try:
        reboots.write_marker(cfg.state_dir, report["run_id"], request,
                             report.get("not_run", []))
    except OSError as exc:
        warn(f"could not write the resume marker: {_os_reason(exc)}")
    say(reboots.request_line(request, "rebooting now" if action == "reboot" else
                             "exit 194 (SSM reboots and runs again; or reboot, then run again)"))


def _tell(report: dict[str, Any], opts: Options, console: reports.Console) -> None:
    """The end of a run on the console: the summary line, or the JSON report.

    An interrupted run says so in one stderr line instead of the summary.
    """
    if "interrupted" in report:
        say(interrupted_line(report))
    if opts.json:
        console.write(reports.dumps(report) + "\n")
    elif "interrupted" not in report:
        if report.get("left_image"):
            console.write("left the image (changed since the bake, converged now): "
                          + ", ".join(report["left_image"]) + "\n")
        console.pruned(report["pruned"])
        console.summary(report)


def _meta(opts: Options, cfg: Config, started: float, slept: float) -> dict[str, Any]:
    """The report fields known before the source is opened."""
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + "-" + os.urandom(4).hex()
    meta: dict[str, Any] = {"run_id": run_id, "mode": "noop" if opts.noop else "run",
                            "source": opts.source or cfg.source, "event": opts.event or None,
                            "phase": opts.phase, "runlist": None}
    if slept:
        meta["splay_s"] = slept
    return meta


def _baked(cfg: Config) -> dict[str, Any] | None:
    """The bake manifest of this machine, None when it was not baked."""
    from agent.engine import manifest

    return manifest.load(cfg.state_dir)


def _prepare(opts: Options, cfg: Config, meta: dict[str, Any], started: float,
             system: System) -> Prepared:
    """Open the source and compile the catalog; ``meta`` gains the bundle's fields.

    A TrueupError (nothing changed yet) is kept as the run's report, then raised.
    """
    from agent import sources

    instance = InstanceFacts()  # one per run: IMDS and DescribeTags asked at most once
    bundle = None
    try:
        bundle = resolve_source(opts, cfg, instance)
        notice = sources.offline_notice(bundle)
        if notice:
            say(notice)
        prepared = stored.load_or_prepare(
            opts, cfg, bundle, system, Backups(os.path.join(cfg.state_dir, "backup"), cfg.backups),
            Facts(ec2=instance), bundle.secrets)
    except TrueupError as exc:
        meta.update(sources.report_fields(bundle))
        report = reports.build({**meta, "error": str(exc), "exit_code": 1}, [], started)
        keep_report(cfg, report)
        raise
    meta["runlist"] = prepared.runlist
    meta["bundle"] = bundle.root
    meta.update(sources.report_fields(bundle))
    return prepared


def keep_report(cfg: Config, report: dict[str, Any]) -> None:
    """Store the report (and ship it, where reports leave the host) once the run is over.

    The exit code is the converge result: a report that cannot be kept (disk full,
    a file where reports/history belongs, no permission) is a one-line warning.
    """
    try:
        reports.store(cfg.state_dir, report, cfg.history)
    except OSError as exc:
        warn(f"could not store the report: {_os_reason(exc)}")
    if cfg.report_to:
        ship_report(cfg, report)


def ship_report(cfg: Config, report: dict[str, Any], kind: str = "run") -> None:
    """Send ``report`` where ``report_to`` says (agent.engine.shipping); a failure is a
    warning and a spooled report, never a different exit code."""
    from agent.aws.reports import instance_id
    from agent.engine import shipping

    try:
        source = report.get("source") or (report.get("origin") or {}).get("source") or ""
        target = shipping.Target(shipping.parse_sinks(cfg.report_to), cfg.state_dir,
                                 env=shipping.env_of(str(source), cfg.env),
                                 log_group=cfg.log_group, instance_id=instance_id())
        shipping.ship(report, target, kind, warn)
    except Exception as exc:  # reporting never fails a run
        warn(f"could not send the report: {exc}")


def warn(text: str) -> None:
    """One "trueup: warning: ..." line on stderr."""
    say(f"trueup: warning: {text}")


def say(line: str) -> None:
    """``line`` on stderr; a stderr nobody reads any more is silenced, never an error."""
    try:
        print(line, file=sys.stderr, flush=True)
    except BrokenPipeError:
        reports.silence(sys.stderr)


def _os_reason(exc: OSError) -> str:
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return exc.strerror or str(exc)


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


def apply_report_to(args: argparse.Namespace, cfg: Config) -> None:
    """``--report-to`` over ``report_to``; an unknown destination is exit 1 before anything."""
    flag = getattr(args, "report_to", None)
    if flag is not None:
        cfg.report_to = flag
    if cfg.report_to:  # a run that reports nowhere does not even import the shipping
        from agent.engine.shipping import parse_sinks

        parse_sinks(cfg.report_to, "--report-to" if flag is not None else "report_to")


def main(args: argparse.Namespace, cfg: Config) -> int:
    apply_report_to(args, cfg)
    opts = _options(args, args.noop)
    splay = cfg.splay if args.splay is None else _finite("--splay", args.splay)
    if splay < 0:
        raise TrueupError(f"--splay must be 0 or more seconds, not {splay:g}")
    opts.splay = 0.0 if args.noop else splay
    return converge(opts, cfg, reboot=args.reboot)


def plan_main(args: argparse.Namespace, cfg: Config) -> int:
    apply_report_to(args, cfg)
    return converge(_options(args, True), cfg)


def _finite(flag: str, seconds: float) -> float:
    """``seconds`` as given on the command line; nan and infinity are refused."""
    if not math.isfinite(seconds):
        raise TrueupError(f"{flag} must be a finite number of seconds, not {seconds}")
    return seconds


def _options(args: argparse.Namespace, noop: bool) -> Options:
    if args.src and args.source and args.src != args.source:
        raise TrueupError("give the source once: as SRC or as --source")
    if args.lock_timeout is not None:
        _finite("--lock-timeout", args.lock_timeout)
    return Options(source=args.src or args.source or "", runlist=args.runlist,
                   event=args.event or "", phase=args.phase, noop=noop,
                   detailed_exitcodes=args.detailed_exitcodes, json=args.json,
                   diff=getattr(args, "diff", False) or noop, assignments=args.assignments,
                   attributes_file=args.attributes_file, lock_timeout=args.lock_timeout)
