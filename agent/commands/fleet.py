"""trueup fleet run / trueup fleet status: converge many instances through SSM Run Command,
and see which are converged, drifting or failing.

Examples::

    trueup fleet run --env prod --role web --event deploy --max-concurrency 10% \\
        --max-errors 1 --wait
    trueup fleet run --env prod --target Team=payments --noop --wait
    trueup fleet status --env prod --json

``fleet run`` sends the SSM Command document that infra/ creates (``--document``,
default ``trueup-run-ENV``, the stack's ``RunDocumentName`` output) to the instances tagged
``trueup:env=ENV`` (and ``trueup:role=ROLE``, or the ``--target`` tags), with rate
control. With ``--wait`` it follows the invocations, prints one row per instance as it
finishes (instance, status, changed, failed, duration) and a summary, and exits 1 when
any instance failed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from agent.config import Config
from agent.errors import TrueupError

DEFAULT_DOCUMENT = "trueup-run-{env}"  # infra/trueup.yml names the document so
CONCURRENCY = re.compile(r"^([1-9][0-9]{0,6}|([1-9][0-9]?|100)%)$")
ERRORS = re.compile(r"^([0-9]{1,7}|([0-9]|[1-9][0-9]|100)%)$")
TAG_KEY = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")
SUMMARY = re.compile(r"trueup (?:run|noop|plan): (\d+) (?:changed|would change), (\d+) failed"
                     r".*? in ([0-9.]+)s")
RUN_TYPES = ["Custom:trueup", "Custom:trueup-verify"]


def run_main(args: argparse.Namespace, cfg: Config) -> int:
    from agent.aws import fleet

    targets = _targets(args)
    document = args.document or DEFAULT_DOCUMENT.format(env=args.env)
    for flag, value, pattern, example in (
            ("--max-concurrency", args.max_concurrency, CONCURRENCY, "10 or 25%"),
            ("--max-errors", args.max_errors, ERRORS, "0, 1 or 10%")):
        if not pattern.match(value):
            raise TrueupError(f"{flag} must be a count or a percentage such as {example}, "
                              f"not {value!r}")
    params = {"Source": [args.source or ""], "RunList": [args.runlist or ""],
              "Event": [args.event or ""], "Noop": ["true" if args.noop else "false"],
              "Verify": ["true" if args.verify else "false"],
              "ReportTo": [args.report_to or ""]}
    comment = f"trueup fleet run --env {args.env}" + (f" --event {args.event}"
                                                      if args.event else "")
    cmd = fleet.send_command(document, targets, params, args.max_concurrency,
                             args.max_errors, comment, args.timeout)
    command_id = cmd["CommandId"]
    what = ", ".join(f"{t['Key']}={','.join(t['Values'])}" for t in targets)
    print(f"trueup fleet: command {command_id} sent to {what} "
          f"(document {document}, max concurrency {args.max_concurrency}, "
          f"max errors {args.max_errors})", flush=True)
    if not args.wait:
        return 0
    return _follow(command_id, args.interval, args.wait_timeout)


def _targets(args: argparse.Namespace) -> list[dict[str, Any]]:
    if not args.env or not TAG_KEY.match(args.env):
        raise TrueupError(f"--env must be an environment name such as prod, not {args.env!r}")
    if args.role and args.target:
        raise TrueupError("give --role or --target, not both")
    targets = [{"Key": "tag:trueup:env", "Values": [args.env]}]
    if args.role:
        targets.append({"Key": "tag:trueup:role", "Values": [args.role]})
    for pair in args.target:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value or not TAG_KEY.match(key):
            raise TrueupError(f"--target must be TAG=VALUE, such as --target Team=web, "
                              f"not {pair!r}")
        targets.append({"Key": f"tag:{key}", "Values": value.split(",")})
    if len(targets) > 5:
        raise TrueupError("SSM takes at most 5 targets: --env and at most 4 --target")
    return targets


def _follow(command_id: str, interval: float, limit: float) -> int:
    """Print each instance's row once it finishes, then the summary; 1 if any failed."""
    from agent.aws import fleet

    shown: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + limit
    print(_row("INSTANCE", "STATUS", "CHANGED", "FAILED", "DURATION"), flush=True)
    while True:
        status = fleet.command(command_id).get("Status", "")
        for inv in fleet.invocations(command_id):
            iid = inv.get("InstanceId", "")
            if iid in shown or inv.get("Status") not in fleet.TERMINAL:
                continue
            row = invocation_row(inv)
            shown[iid] = row
            print(_row(iid, row["status"], _n(row["changed"]), _n(row["failed"]),
                       f"{row['duration_s']:.1f}s" if row["duration_s"] is not None else "-"),
                  flush=True)
        if status in fleet.TERMINAL:
            break
        if time.monotonic() > deadline:
            print(f"trueup fleet: still {status or 'pending'} after {limit:g}s; follow it with "
                  f"aws ssm list-command-invocations --command-id {command_id}",
                  file=sys.stderr)
            return 1
        time.sleep(interval)
    failed = [i for i, r in shown.items() if r["status"] != "Success" or (r["failed"] or 0)]
    ok = len(shown) - len(failed)
    changed = sum(r["changed"] or 0 for r in shown.values())
    print(f"trueup fleet: {len(shown)} instances, {ok} succeeded, {len(failed)} failed, "
          f"{changed} resources changed; command {status}")
    return 1 if failed or status != "Success" else 0


def invocation_row(inv: dict[str, Any]) -> dict[str, Any]:
    """Status, changed, failed and duration of one invocation, from trueup's summary line
    in the plugin output (counts are None when the output has none)."""
    plugins = inv.get("CommandPlugins") or []
    output = "\n".join(str(p.get("Output") or "") for p in plugins)
    found = SUMMARY.findall(output)
    changed = failed = None
    duration = None
    if found:
        changed, failed, duration = int(found[-1][0]), int(found[-1][1]), float(found[-1][2])
    elif plugins and plugins[0].get("ResponseStartDateTime") and \
            plugins[0].get("ResponseFinishDateTime"):
        duration = (plugins[0]["ResponseFinishDateTime"]
                    - plugins[0]["ResponseStartDateTime"]).total_seconds()
    return {"status": inv.get("Status", ""), "changed": changed, "failed": failed,
            "duration_s": duration}


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _row(*cells: str) -> str:
    widths = (20, 12, 8, 7, 9)
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def status_main(args: argparse.Namespace, cfg: Config) -> int:
    from agent.aws import fleet

    tags = {"trueup:env": args.env}
    if args.role:
        tags["trueup:role"] = args.role
    hosts = fleet.instances(tags)
    summaries: dict[tuple[str, str], dict[str, Any]] = {}
    for item in fleet.compliance_summaries(RUN_TYPES):
        summaries[(item.get("ResourceId", ""), item.get("ComplianceType", ""))] = item
    rows = []
    for host in hosts:
        run = summaries.get((host["instance_id"], RUN_TYPES[0]))
        verify = summaries.get((host["instance_id"], RUN_TYPES[1]))
        rows.append({**host, **_compliance(run), "verify": (verify or {}).get("Status")})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    head = ("INSTANCE", "NAME", "STATE", "COMPLIANCE", "NON-COMPLIANT", "LAST RUN", "VERIFY")
    widths = (20, 16, 8, 14, 13, 25, 14)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    print(line(head))
    for r in rows:
        print(line((r["instance_id"], r["name"][:16], r["state"], r["status"] or "no report",
                    _n(r["non_compliant"]), r["last_run"] or "-", r["verify"] or "-")))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"] or "no report"] = counts.get(r["status"] or "no report", 0) + 1
    print(f"trueup fleet: {len(rows)} instances in {args.env}: "
          + (", ".join(f"{n} {s.lower().replace('_', '-')}" for s, n in sorted(counts.items()))
             or "none"))
    return 0


def _compliance(item: dict[str, Any] | None) -> dict[str, Any]:
    if not item:
        return {"status": None, "non_compliant": None, "last_run": None, "run_id": None}
    summary = item.get("ExecutionSummary") or {}
    when = summary.get("ExecutionTime")
    return {"status": item.get("Status"),
            "non_compliant": (item.get("NonCompliantSummary") or {}).get("NonCompliantCount"),
            "last_run": when.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(when, "strftime")
            else when, "run_id": summary.get("ExecutionId")}


def main(args: argparse.Namespace, cfg: Config) -> int:
    return run_main(args, cfg) if args.fleet_command == "run" else status_main(args, cfg)
