"""Reports that leave the instance: CloudWatch Logs, SSM Compliance, CloudWatch metrics.

Turned on with ``report_to`` in the configuration or ``--report-to`` on the command line::

    # /etc/trueup/config.toml
    report_to = "cloudwatch,ssm,metrics"
    log_group = "/trueup/prod"      # default /trueup/<env>, or /trueup/local without one

- ``cloudwatch``: one stream per instance (its instance id; the hostname off EC2) in the
  log group; one event per changed, failed or skipped resource, then one summary
  event, all in one ``PutLogEvents`` where they fit (1 MiB, 10,000 events).
- ``ssm``: ``PutComplianceItems`` of type ``Custom:trueup`` (``Custom:trueup-verify``
  for ``trueup verify``): one item per resource, plus ``run`` for the run itself.
  Compliant: converged (unchanged, or changed by this run). Non-compliant: failed
  (HIGH), skipped because of a failure (MEDIUM), drifting under ``--noop`` (MEDIUM), a
  run that could not start (HIGH). Needs an instance id (EC2 or an SSM managed node).
- ``metrics``: ``PutMetricData`` in namespace ``trueup``: ``Changed``, ``Failed``
  (counts) and ``Duration`` (seconds), with the dimension ``Environment``.

Everything sent is built from the stored report and scrubbed by the redactor, like
every other output: a secret never leaves the instance. Shipping never changes a
run's exit code and never fails it: what cannot be sent is kept under
``<state_dir>/spool/`` and sent first by the next run that reports (log events and
metrics are kept up to 13 days, the newest compliance upload per type).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.engine import report as reports
from agent.errors import TrueupError, Unreachable
from agent.host.system import write_file_atomic
from agent.model import CHANGED, FAILED, SKIPPED
from agent.redact import REDACTOR

SINKS = ("cloudwatch", "ssm", "metrics")
RUN_COMPLIANCE = "Custom:trueup"
VERIFY_COMPLIANCE = "Custom:trueup-verify"
MAX_BATCH_BYTES = 1_048_576  # PutLogEvents: message bytes + 26 per event
MAX_BATCH_EVENTS = 10_000
MAX_EVENT_BYTES = 200_000  # under the 256 KiB event limit
MAX_AGE_MS = 13 * 24 * 3600 * 1000  # CloudWatch refuses events older than 14 days
MAX_ITEMS = 10_000
MAX_SPOOLED_EVENTS = 20_000


def parse_sinks(text: str, origin: str = "--report-to") -> list[str]:
    """``"cloudwatch,ssm"`` → ["cloudwatch", "ssm"]; a TrueupError naming an unknown one."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in SINKS]
    if unknown:
        raise TrueupError(f"unknown report destination {', '.join(map(repr, unknown))}; "
                          f"use any of {', '.join(SINKS)} (comma separated)", origin)
    return list(dict.fromkeys(names))


@dataclass
class Target:
    """Where one instance's reports go."""

    sinks: list[str]
    state_dir: str
    env: str = ""
    log_group: str = ""
    instance_id: str | None = None
    host: str = field(default_factory=socket.gethostname)

    @property
    def group(self) -> str:
        return self.log_group or f"/trueup/{self.env or 'local'}"

    @property
    def stream(self) -> str:
        return self.instance_id or self.host


def env_of(source: str, configured: str = "") -> str:
    """The environment of a run: ``ssm:/trueup/<env>`` in the source, else the configured."""
    if source.startswith("ssm:/trueup/"):
        return source.removeprefix("ssm:/trueup/").strip("/").split("/")[0]
    return configured


# ------------------------------------------------------------------ what is sent


def log_events(report: dict[str, Any], kind: str = "run") -> list[dict[str, Any]]:
    """The CloudWatch events of one report: changed, failed and skipped resources, then
    the summary; redacted; in time order."""
    stamp = _ms(report.get("finished") or report.get("started"))
    run_id = report.get("run_id", "")
    events = []
    for res in report.get("resources", []):
        if res.get("status") not in (CHANGED, FAILED, SKIPPED):
            continue
        entry = {"run_id": run_id, "kind": kind, "resource": res.get("resource"),
                 "status": res.get("status"), "mode": report.get("mode")}
        changes = [{k: c.get(k) for k in ("field", "before", "after")}
                   for c in res.get("changes", [])]
        if changes:
            entry["changes"] = changes
        if res.get("error"):
            entry["error"] = res["error"]
        events.append({"timestamp": stamp, "message": _message(entry)})
    for check in report.get("checks", []):  # trueup verify
        if check.get("outcome") != "passed":
            events.append({"timestamp": stamp, "message": _message(
                {"run_id": run_id, "kind": kind, "check": check.get("name"),
                 "outcome": check.get("outcome"), "message": check.get("message")})})
    summary = {k: report.get(k) for k in ("run_id", "mode", "source", "event", "runlist",
                                          "exit_code", "totals", "duration_s", "error",
                                          "offline", "origin", "interrupted") if k in report}
    summary["kind"] = f"{kind}-summary"
    events.append({"timestamp": stamp, "message": _message(summary)})
    return events


def _message(entry: dict[str, Any]) -> str:
    text = reports.dumps(entry, indent=None)
    if len(text.encode()) > MAX_EVENT_BYTES:
        text = text.encode()[:MAX_EVENT_BYTES].decode("utf-8", "ignore") + " …(cut)"
    return text


def compliance_items(report: dict[str, Any]) -> list[dict[str, Any]]:
    """SSM compliance items of a run report (see the module docstring for the rules)."""
    noop = report.get("mode") == "noop"
    items = []
    for res in report.get("resources", [])[:MAX_ITEMS - 1]:
        status = res.get("status")
        details = {"status": str(status)}
        if status == FAILED:
            state, severity = "NON_COMPLIANT", "HIGH"
            details["error"] = str(res.get("error") or "")
        elif status == SKIPPED:
            state, severity = "NON_COMPLIANT", "MEDIUM"
            details["error"] = str(res.get("error") or "")
        elif status == CHANGED and noop:
            state, severity = "NON_COMPLIANT", "MEDIUM"
            details["status"] = "drifting"
        else:
            state, severity = "COMPLIANT", "INFORMATIONAL"
        if res.get("changes"):
            details["changes"] = ", ".join(str(c.get("field")) for c in res["changes"])
        items.append(_item(str(res.get("resource")), state, severity, details))
    failed = report.get("error") or report.get("interrupted") \
        or report.get("totals", {}).get(FAILED, 0) > 0
    run = {"exit_code": str(report.get("exit_code")), "mode": str(report.get("mode")),
           "run_id": str(report.get("run_id"))}
    if report.get("error"):
        run["error"] = str(report["error"])
    items.append(_item("run", "NON_COMPLIANT" if failed else "COMPLIANT",
                       "HIGH" if failed else "INFORMATIONAL", run, title="trueup run"))
    return items


def verify_items(results: dict[str, Any]) -> list[dict[str, Any]]:
    """SSM compliance items of a ``trueup verify`` result: one per check."""
    items = []
    for check in results.get("checks", [])[:MAX_ITEMS]:
        ok = check.get("outcome") == "passed"
        details = {"outcome": str(check.get("outcome"))}
        if check.get("message"):
            details["message"] = str(check["message"])
        items.append(_item(str(check.get("name")), "COMPLIANT" if ok else "NON_COMPLIANT",
                           "INFORMATIONAL" if ok else "HIGH", details))
    return items


def _item(ident: str, status: str, severity: str, details: dict[str, str],
          title: str | None = None) -> dict[str, Any]:
    scrub = REDACTOR.scrub if REDACTOR else (lambda s: s)
    item_id = ident if len(ident) <= 100 else \
        ident[:83] + "~" + hashlib.sha256(ident.encode()).hexdigest()[:16]
    return {"Id": scrub(item_id), "Title": scrub((title or ident)[:500]), "Severity": severity,
            "Status": status, "Details": {k[:64]: scrub(v)[:4096] for k, v in details.items()}}


def content_hash(items: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


def metric_data(report: dict[str, Any], env: str) -> list[dict[str, Any]]:
    """Changed, Failed and Duration of one run, dimension Environment."""
    when = dt.datetime.fromtimestamp(_ms(report.get("finished")) / 1000, dt.UTC)
    dims = [{"Name": "Environment", "Value": env or "local"}]
    totals = report.get("totals", {})
    return [
        {"MetricName": "Changed", "Dimensions": dims, "Timestamp": when,
         "Value": float(totals.get(CHANGED, 0)), "Unit": "Count"},
        {"MetricName": "Failed", "Dimensions": dims, "Timestamp": when,
         "Value": float(totals.get(FAILED, 0) + (1 if report.get("error") else 0)),
         "Unit": "Count"},
        {"MetricName": "Duration", "Dimensions": dims, "Timestamp": when,
         "Value": float(report.get("duration_s") or 0), "Unit": "Seconds"},
    ]


def _ms(iso: Any) -> int:
    """Milliseconds since the epoch of a report time ("2026-12-01T10:00:00.123Z")."""
    try:
        stamp = dt.datetime.strptime(str(iso), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        return int(stamp.timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


# ------------------------------------------------------------------ sending, with a spool


def ship(report: dict[str, Any], target: Target, kind: str = "run",
         warn: Callable[[str], None] | None = None) -> dict[str, str]:
    """Send ``report`` to each sink of ``target``; what fails is spooled and sent next time.

    ``kind`` is "run" or "verify" (``report`` is then a verify result). Returns
    {sink: "sent" | "spooled: reason" | "skipped: reason"}; a warning per failure goes to
    ``warn``. Never raises for AWS or disk errors.
    """
    from agent.aws import reports as aws

    outcome: dict[str, str] = {}
    for sink in target.sinks:
        try:
            if sink == "cloudwatch":
                events = log_events(report, kind)
                outcome[sink] = _send_logs(target, events, aws.put_log_events)
            elif sink == "ssm":
                outcome[sink] = _send_compliance(report, target, kind, aws.put_compliance_items)
                if outcome[sink].startswith("skipped") and warn:
                    warn(f"no report to ssm: {outcome[sink].removeprefix('skipped: ')}")
            elif sink == "metrics" and kind == "run":
                _send_spooled(target, "metrics", metric_data(report, target.env),
                              aws.put_metrics)
                outcome[sink] = "sent"
        except (Unreachable, TrueupError, OSError) as exc:
            outcome[sink] = f"spooled: {exc}"
            if warn:
                warn(f"could not send the report to {sink} ({_one_line(exc)}); "
                     "kept, it goes with the next run")
    return outcome


def _send_logs(target: Target, events: list[dict[str, Any]], put: Callable[..., Any]) -> str:
    """Spooled events of this group and stream first, then ``events``: one PutLogEvents
    per batch that fits. On failure everything unsent is spooled (raises on)."""
    spool = _Spool(target.state_dir, "cloudwatch")
    pending: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []  # spooled for another group or stream: kept as is
    for entry in spool.load():
        mine = entry.get("group") == target.group and entry.get("stream") == target.stream
        (pending if mine else others).append(entry)
    oldest = int(time.time() * 1000) - MAX_AGE_MS
    queue = sorted([{"timestamp": e["timestamp"], "message": e["message"]} for e in pending
                    if e.get("timestamp", 0) >= oldest] + events, key=lambda e: e["timestamp"])
    sent = 0
    try:
        for batch in _batches(queue):
            put(target.group, target.stream, batch)
            sent += len(batch)
    except BaseException:
        rest = [{**e, "group": target.group, "stream": target.stream} for e in queue[sent:]]
        spool.save((others + rest)[-MAX_SPOOLED_EVENTS:])
        raise
    spool.save(others)
    return "sent"


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[]]
    size = 0
    for event in events:
        cost = len(event["message"].encode()) + 26
        if out[-1] and (size + cost > MAX_BATCH_BYTES or len(out[-1]) >= MAX_BATCH_EVENTS):
            out.append([])
            size = 0
        out[-1].append(event)
        size += cost
    return [b for b in out if b]


def _send_compliance(report: dict[str, Any], target: Target, kind: str,
                     put: Callable[..., Any]) -> str:
    if not target.instance_id:
        return "skipped: no instance id (SSM compliance is per managed instance)"
    ctype = VERIFY_COMPLIANCE if kind == "verify" else RUN_COMPLIANCE
    items = verify_items(report) if kind == "verify" else compliance_items(report)
    upload = {"instance_id": target.instance_id, "compliance_type": ctype,
              "execution_id": str(report.get("run_id", ""))[:100],
              "execution_time": _ms(report.get("finished")), "items": items,
              "content_hash": content_hash(items)}
    spool = _Spool(target.state_dir, "ssm")
    waiting = [u for u in spool.load() if u.get("compliance_type") != ctype]
    try:
        for one in waiting:  # older uploads of the other type, then this one
            _put_compliance(put, one)
        _put_compliance(put, upload)
    except BaseException:
        spool.save([*waiting, upload])
        raise
    spool.save([])
    return "sent"


def _put_compliance(put: Callable[..., Any], upload: dict[str, Any]) -> None:
    when = dt.datetime.fromtimestamp(upload["execution_time"] / 1000, dt.UTC)
    put(upload["instance_id"], upload["compliance_type"], upload["execution_id"], when,
        upload["items"], upload["content_hash"])


def _send_spooled(target: Target, name: str, data: list[dict[str, Any]],
                  put: Callable[..., Any]) -> None:
    spool = _Spool(target.state_dir, name)
    oldest = time.time() - MAX_AGE_MS / 1000
    kept = [dict(m, Timestamp=dt.datetime.fromtimestamp(m["Timestamp"], dt.UTC))
            for m in spool.load() if m.get("Timestamp", 0) >= oldest]
    queue = kept + data
    try:
        for start in range(0, len(queue), 1000):
            put(queue[start:start + 1000])
    except BaseException:
        spool.save([dict(m, Timestamp=m["Timestamp"].timestamp()) for m in queue][-3000:])
        raise
    spool.save([])


class _Spool:
    """``<state_dir>/spool/<name>.json``: a list of what is still to be sent."""

    def __init__(self, state_dir: str, name: str) -> None:
        self.path = os.path.join(state_dir, "spool", f"{name}.json")
        self._cache: list[dict[str, Any]] | None = None

    def load(self) -> list[dict[str, Any]]:
        if self._cache is None:
            try:
                with open(self.path, "rb") as fh:
                    data = json.loads(fh.read())
            except (OSError, ValueError):
                data = []
            self._cache = [d for d in data if isinstance(d, dict)] \
                if isinstance(data, list) else []
        return self._cache

    def save(self, entries: list[dict[str, Any]]) -> None:
        self._cache = list(entries)
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        write_file_atomic(self.path, json.dumps(entries, default=str).encode())


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
