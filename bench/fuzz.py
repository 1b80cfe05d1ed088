"""Long-mode fuzzing: thousands of hostile bundles through trueup validate, plan and run.

    python bench/fuzz.py --cases 10000 --seed 7 --jobs 2
    python bench/fuzz.py --cases 200 --seed 7 --only template --mode exec

Cases come from ``tests/fuzz/generate.py`` and run under ``tests/fuzz/runner.py`` (a time
and a memory limit per command; see there for the invariants). The default ``fork`` mode
forks each command from a warm interpreter, which is about four times faster; each case
that breaks an invariant there is run again with a new ``python -m agent`` per command
(``exec`` mode) and the summary says whether that confirms it.

Prints the counts (cases, categories, exit codes, tracebacks, hangs, max RSS, exit-1 runs
that changed something, multi-line errors …) and writes them as JSON to
``bench/results/fuzz-<UTC stamp>.json``, with every violation's seed, case and detail.
A broken case's folder is kept (``--keep``) under the work folder it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fuzz.generate import CATEGORIES, generate  # noqa: E402
from tests.fuzz.runner import (  # noqa: E402
    CaseResult,
    Limits,
    close_zygotes,
    ensure_pycache,
    run_case,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", type=int, default=0, help="first case index")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per command")
    p.add_argument("--memory-mib", type=int, default=1024, help="address space per command")
    p.add_argument("--mode", choices=("fork", "exec"), default="fork")
    p.add_argument("--only", choices=sorted(CATEGORIES), help="one category")
    p.add_argument("--time-limit", type=float, default=0,
                   help="minutes; start no new case after that (0: no limit)")
    p.add_argument("--keep", type=int, default=30, help="broken case folders kept")
    p.add_argument("--no-confirm", action="store_true",
                   help="in fork mode, do not re-run broken cases in exec mode")
    p.add_argument("--out", default="", help="JSON summary (default bench/results/...)")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="trueup-fuzz-"))
    limits = Limits(timeout=args.timeout, memory=args.memory_mib * 1024 * 1024,
                    pycache=str(work / "pycache"), mode=args.mode)
    ensure_pycache(limits)
    print(f"fuzz: seed {args.seed}, cases {args.start}..{args.start + args.cases - 1}, "
          f"{args.jobs} jobs, {args.mode} mode, work folder {work}", file=sys.stderr)
    out = Path(args.out) if args.out else (
        REPO / "bench" / "results" / f"fuzz-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = Stats(args, limits, out)
    started = time.monotonic()
    stats.started = started
    deadline = started + args.time_limit * 60 if args.time_limit else None
    try:
        _run_all(args, limits, work, stats, deadline)
    except KeyboardInterrupt:
        print("fuzz: interrupted; summarizing what ran", file=sys.stderr)
        stats.interrupted = True
    finally:
        close_zygotes()
    stats.seconds = time.monotonic() - started
    if args.mode == "fork" and not args.no_confirm:
        stats.confirm(work)
    summary = stats.summary()
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(render(summary))
    print(f"\nJSON: {out}")
    kept = [b["root"] for b in summary["broken"] if b.get("kept")]
    if not kept:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if summary["violations"]["cases"] else 0


def _run_all(args: argparse.Namespace, limits: Limits, work: Path, stats: Stats,
             deadline: float | None) -> None:
    indexes = iter(range(args.start, args.start + args.cases))
    pending: set[Future[CaseResult]] = set()

    def one(index: int) -> CaseResult:
        case = generate(args.seed, index, work / f"case-{index:06d}", only=args.only)
        return run_case(case, limits)

    with ThreadPoolExecutor(args.jobs) as pool:
        def refill() -> None:
            while len(pending) < args.jobs * 2:
                if deadline is not None and time.monotonic() > deadline:
                    stats.stopped_early = True
                    return
                index = next(indexes, None)
                if index is None:
                    return
                pending.add(pool.submit(one, index))

        refill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                pending.discard(future)
                stats.add(future.result(), work)
            refill()


class Stats:
    """Counts over every case, and the broken ones in detail."""

    def __init__(self, args: argparse.Namespace, limits: Limits, out: Path) -> None:
        self.args = args
        self.limits = limits
        self.out = out  # rewritten every 500 cases with "partial": true
        self.started = time.monotonic()
        self.load_start = os.getloadavg()
        self.cases = 0
        self.categories: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.codes: dict[str, Counter[str]] = {}
        self.kinds: Counter[str] = Counter()       # violation kinds (per case)
        self.classes: Counter[str] = Counter()     # cases with a violation of each class
        self.notes: Counter[str] = Counter()
        self.note_classes: Counter[str] = Counter()
        self.note_examples: dict[str, list[dict[str, Any]]] = {}
        self.commands = 0
        self.max_rss_kb = 0
        self.max_rss_case = ""
        self.slowest = (0.0, "")
        self.broken: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.interrupted = False
        self.stopped_early = False

    def add(self, result: CaseResult, work: Path) -> None:
        case = result.case
        self.cases += 1
        self.categories[case.category] += 1
        self.labels[case.label] += 1
        for o in result.outcomes:
            self.commands += 1
            self.codes.setdefault(o.command, Counter())["hang" if o.hang else str(o.code)] += 1
            if o.max_rss_kb > self.max_rss_kb:
                self.max_rss_kb, self.max_rss_case = o.max_rss_kb, f"{case.name} {o.command}"
            if o.seconds > self.slowest[0] and not o.hang:
                self.slowest = (o.seconds, f"{case.name} {o.command}")
        for kind in sorted(set(result.kinds)):
            self.kinds[kind] += 1
        for name, words in CLASSES.items():
            if any(w in kind for kind in result.kinds for w in words):
                self.classes[name] += 1
        for note in sorted(set(result.notes)):
            self.notes[note] += 1
        for name, words in NOTES.items():
            if any(w in note for note in result.notes for w in words):
                self.note_classes[name] += 1
                examples = self.note_examples.setdefault(name, [])
                if len(examples) < 5:
                    examples.append({"seed": case.seed, "index": case.index,
                                     "label": case.label, "detail": case.detail,
                                     "stderr": {o.command: o.stderr[:600]
                                                for o in result.outcomes if o.stderr}})
        if result.violations:
            keep = sum(1 for b in self.broken if b["kept"]) < self.args.keep
            self.broken.append({
                "seed": case.seed, "index": case.index, "label": case.label,
                "detail": case.detail, "violations": result.violations,
                "root": str(case.root), "kept": keep,
                "stderr": {o.command: o.stderr[-1500:] for o in result.outcomes},
                "codes": {o.command: o.code for o in result.outcomes},
            })
            if not keep:
                shutil.rmtree(case.root, ignore_errors=True)
        else:
            shutil.rmtree(case.root, ignore_errors=True)
        if self.cases % 250 == 0:
            print(f"fuzz: {self.cases} cases, {len(self.broken)} broken, "
                  f"load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
        if self.cases % 500 == 0:  # a run that dies still leaves its figures so far
            self.seconds = time.monotonic() - self.started
            self.out.write_text(json.dumps({"partial": True, **self.summary()}, indent=2))

    def confirm(self, work: Path) -> None:
        """Run each broken case again in exec mode (a new interpreter per command)."""
        if not self.broken:
            return
        limits = Limits(timeout=self.limits.timeout, memory=self.limits.memory,
                        pycache=self.limits.pycache, mode="exec")
        print(f"fuzz: confirming {len(self.broken)} broken cases in exec mode",
              file=sys.stderr, flush=True)
        for entry in self.broken:
            root = work / f"confirm-{entry['index']:06d}"
            case = generate(entry["seed"], entry["index"], root, only=self.args.only)
            again = run_case(case, limits)
            entry["exec_violations"] = again.violations
            entry["confirmed"] = sorted(set(again.kinds)) == sorted(
                set(v.split(" (")[0] for v in entry["violations"]))
            shutil.rmtree(root, ignore_errors=True)

    def summary(self) -> dict[str, Any]:
        groups: dict[str, dict[str, Any]] = {}
        for entry in self.broken:
            for kind in sorted({v.split(" (")[0] for v in entry["violations"]}):
                key = f"{entry['label']} | {kind}"
                group = groups.setdefault(key, {"cases": 0, "example": entry["index"],
                                                "detail": entry["detail"],
                                                "violation": next(
                                                    v for v in entry["violations"]
                                                    if v.startswith(kind))})
                group["cases"] += 1
        return {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seed": self.args.seed, "start": self.args.start, "cases": self.cases,
            "requested": self.args.cases, "jobs": self.args.jobs, "mode": self.args.mode,
            "timeout_s": self.limits.timeout, "memory_mib": self.limits.memory // (1024 * 1024),
            "only": self.args.only, "interrupted": self.interrupted,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 1), "commands": self.commands,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_start": [round(x, 2) for x in self.load_start],
                        "load_end": [round(x, 2) for x in os.getloadavg()],
                        "commit": _git("rev-parse", "--short", "HEAD"),
                        "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
                        "dirty": bool(_git("status", "--porcelain", "--", "agent"))},
            "categories": dict(self.categories.most_common()),
            "labels": dict(sorted(self.labels.items())),
            "exit_codes": {cmd: dict(sorted(c.items())) for cmd, c in sorted(self.codes.items())},
            "max_rss_mib": round(self.max_rss_kb / 1024, 1), "max_rss_where": self.max_rss_case,
            "slowest_s": round(self.slowest[0], 2), "slowest_where": self.slowest[1],
            "violations": {  # cases; by_kind counts each command's violation
                "cases": len(self.broken),
                **{name: self.classes[name] for name in CLASSES},
                "by_kind": dict(self.kinds.most_common()),
            },
            "notes": {  # cases; by_kind counts each command's note
                **{name: self.note_classes[name] for name in NOTES},
                "by_kind": dict(self.notes.most_common()),
                "examples": self.note_examples,
            },
            "groups": dict(sorted(groups.items(), key=lambda kv: -kv[1]["cases"])),
            "broken": self.broken,
        }


#: Violation classes counted per case, and the words of the violation kinds in each.
CLASSES: dict[str, tuple[str, ...]] = {
    "tracebacks": (": traceback",),
    "hangs": (": hang",),
    "memory": ("memory over the limit", "killed by a signal"),
    "exit1_changed": ("exit 1 but the target changed",),
    "bad_exit_codes": ("exit code outside",),
    "validate_or_plan_changed": ("validate: changed the target", "plan: changed the target"),
    "bundle_changed": ("changed the bundle",),
    "valid_not_converged": ("valid case not converged",),
    "over_limit_not_refused": ("over-limit case not refused",),
    "not_idempotent": ("second run",),
}

#: Notes (figures, not failures) counted per case.
NOTES: dict[str, tuple[str, ...]] = {
    "multi_line_errors": ("is not one 'trueup: error:' line",),
    "internal_errors": ("internal error",),
    "memory_errors_reported": ("MemoryError reported",),
    "validate_passed_run_refused": ("validate passed, run refused",),
    "huge_stderr": ("stderr of more than",),
}


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO,
                              check=False).stdout.strip()
    except OSError:
        return ""


def render(s: dict[str, Any]) -> str:
    """The summary as text."""
    v, n = s["violations"], s["notes"]
    lines = [
        f"fuzz {s['date']}: seed {s['seed']}, {s['cases']} cases ({s['commands']} commands) "
        f"in {s['seconds'] / 60:.1f} min, {s['jobs']} jobs, {s['mode']} mode, "
        f"limits {s['timeout_s']:g} s / {s['memory_mib']} MiB",
        f"machine: {s['machine']['cpus']} CPUs, load {s['machine']['load_start']} -> "
        f"{s['machine']['load_end']}, commit {s['machine']['commit']} "
        f"({s['machine']['branch']}{', agent/ modified' if s['machine']['dirty'] else ''})",
        "categories: " + ", ".join(f"{k} {c}" for k, c in s["categories"].items()),
    ]
    for cmd, codes in s["exit_codes"].items():
        lines.append(f"exit codes {cmd}: " + ", ".join(f"{k}: {c}" for k, c in codes.items()))
    lines += [
        f"max RSS: {s['max_rss_mib']} MiB ({s['max_rss_where']}); slowest command "
        f"{s['slowest_s']} s ({s['slowest_where']})",
        f"cases breaking an invariant: {v['cases']}; cases with",
        f"  tracebacks {v['tracebacks']}, hangs {v['hangs']}, memory {v['memory']}, "
        f"exit-1 with a change {v['exit1_changed']}, exit codes outside the set "
        f"{v['bad_exit_codes']}, validate/plan changed the target "
        f"{v['validate_or_plan_changed']}, bundle changed {v['bundle_changed']}, "
        f"valid not converged {v['valid_not_converged']}, over-limit not refused "
        f"{v['over_limit_not_refused']}, second run not clean {v['not_idempotent']}",
        f"notes (cases): multi-line exit-1 errors {n['multi_line_errors']}, internal errors "
        f"{n['internal_errors']}, MemoryError reported cleanly {n['memory_errors_reported']}, "
        f"validate passed but run refused {n['validate_passed_run_refused']}, stderr over "
        f"10,000 characters {n['huge_stderr']}",
    ]
    if s["groups"]:
        lines.append("broken, by label and kind (cases, example):")
        for key, g in s["groups"].items():
            lines.append(f"  {g['cases']:5d}  {key}  (case {g['example']}: {g['detail'][:90]})")
    confirmed = [b for b in s["broken"] if "confirmed" in b]
    if confirmed:
        same = sum(1 for b in confirmed if b["confirmed"])
        lines.append(f"confirmed in exec mode: {same} of {len(confirmed)}")
    if s["stopped_early"] or s["interrupted"]:
        lines.append(f"stopped before the end: {s['cases']} of {s['requested']} cases ran")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
