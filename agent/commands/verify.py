"""trueup verify: run the recipes' own testinfra checks against this host.

Examples::

    trueup verify /srv/recipes --runlist base,web
    trueup verify ssm:/trueup/prod --report-to ssm      # from SSM: the document's Verify=true

Each recipe of the run list (with its ``depends``) may ship checks in its ``tests/``
folder (``test_*.py``, pytest + testinfra). They run here with testinfra's local
backend, in the bundle's folder (so a ``conftest.py`` at the bundle's top is used; the
run's merged attributes are in ``TRUEUP_TEST_ATTRIBUTES`` as JSON). Exit 0 when every
check passed, 1 otherwise, naming each failed check. The result is kept in
``<state_dir>/reports/last_verify.json`` and, with ``--report-to``, goes to CloudWatch
Logs and to SSM Compliance as ``Custom:trueup-verify``.

testinfra is an optional extra: ``pip install 'trueup[verify]'``.

This module is also the small pytest plugin (``-p agent.commands.verify``) that writes
each check's outcome to the file named by ``TRUEUP_VERIFY_RESULTS``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

from agent.config import Config
from agent.errors import TrueupError

RESULTS_ENV = "TRUEUP_VERIFY_RESULTS"
TIMEOUT = 1800  # seconds for all checks


def main(args: argparse.Namespace, cfg: Config) -> int:
    from agent.aws.ec2 import InstanceFacts
    from agent.commands.run import apply_report_to, resolve_source, ship_report
    from agent.compile.prepare import Options, runlist_recipes
    from agent.engine import report as reports
    from agent.host.system import System

    apply_report_to(args, cfg)
    if args.src and args.source and args.src != args.source:
        raise TrueupError("give the source once: as SRC or as --source")
    import importlib.util

    if importlib.util.find_spec("testinfra") is None:
        raise TrueupError("trueup verify needs testinfra: pip install 'trueup[verify]' "
                          "(or pytest-testinfra)")
    started = time.time()
    opts = Options(source=args.src or args.source or "", runlist=args.runlist,
                   event=args.event or "", assignments=args.assignments,
                   attributes_file=args.attributes_file)
    bundle = resolve_source(opts, cfg, InstanceFacts())
    _, recipes, merged = runlist_recipes(opts, cfg, bundle, strict=False)

    folders = [os.path.join(r.dir, "tests") for r in recipes
               if os.path.isdir(os.path.join(r.dir, "tests"))]
    checks = _run_checks(System(), bundle.root, folders, merged) if folders else []
    failed = [c for c in checks if c["outcome"] != "passed"]
    result = {"run_id": time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + "-"
              + os.urandom(4).hex(), "kind": "verify", "source": opts.source or cfg.source,
              "runlist": [r.name for r in recipes], "checks": checks,
              "totals": {"passed": len(checks) - len(failed), "failed": len(failed),
                         "total": len(checks)},
              "exit_code": 1 if failed else 0}
    result.update(started=reports._iso(started), finished=reports._iso(time.time()),
                  duration_s=round(time.time() - started, 3))
    _keep(cfg, result)
    if cfg.report_to:
        ship_report(cfg, result, "verify")
    _tell(result, args.json, [r.name for r in recipes], folders)
    return result["exit_code"]


def _run_checks(system: Any, root: str, folders: list[str],
                attributes: dict[str, Any]) -> list[dict[str, Any]]:
    """pytest on ``folders`` in ``root`` with testinfra's local backend; each check's
    outcome from this module's plugin."""
    fd, out = tempfile.mkstemp(prefix="trueup-verify-", suffix=".json")
    os.close(fd)
    try:
        argv = [sys.executable, "-m", "pytest", *folders, "--hosts=local://",
                "-p", "agent.commands.verify", "-p", "no:cacheprovider", "-q", "--no-header",
                "--rootdir", root, "-o", "python_files=test_*.py"]
        env = {RESULTS_ENV: out, "TRUEUP_TEST_ATTRIBUTES": json.dumps(attributes, default=str),
               "PYTHONDONTWRITEBYTECODE": "1"}
        done = system.run(argv, cwd=root, env=env, timeout=TIMEOUT)
        try:
            with open(out, encoding="utf-8") as fh:
                checks = json.load(fh)
        except (OSError, ValueError):
            checks = []
        if not checks and done.returncode not in (0, 5):  # 5: nothing collected
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise TrueupError(f"the checks could not run (pytest exit {done.returncode}): "
                              f"{tail}")
        return checks
    finally:
        os.unlink(out)


def _keep(cfg: Config, result: dict[str, Any]) -> None:
    from agent.commands.run import warn
    from agent.engine import report as reports
    from agent.host.system import write_file_atomic

    folder = os.path.join(cfg.state_dir, "reports")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        write_file_atomic(os.path.join(folder, "last_verify.json"),
                          reports.dumps(result, indent=None).encode() + b"\n", durable=False)
    except OSError as exc:
        warn(f"could not store the verify result: {exc.strerror or exc}")


def _tell(result: dict[str, Any], as_json: bool, recipes: list[str], folders: list[str]) -> None:
    from agent.engine import report as reports

    if as_json:
        print(reports.dumps(result))
        return
    lines = []
    for check in result["checks"]:
        if check["outcome"] != "passed":
            detail = f"  {check['message']}" if check.get("message") else ""
            lines.append(f"{check['outcome']:<8} {check['name']}{detail}")
    t = result["totals"]
    if not folders:
        lines.append(f"trueup verify: no checks in {', '.join(recipes)} (no tests/ folder)")
    else:
        lines.append(f"trueup verify: {t['passed']} passed, {t['failed']} failed "
                     f"({', '.join(recipes)}) in {result['duration_s']:.2f}s")
    text = "\n".join(lines) + "\n"
    from agent.redact import REDACTOR

    sys.stdout.write(REDACTOR.scrub(text) if REDACTOR else text)


# ------------------------------------------------------------------ the pytest plugin

_outcomes: list[dict[str, Any]] = []


def pytest_runtest_logreport(report: Any) -> None:
    """Keep the outcome of each check: its call, or a failed setup or teardown."""
    if report.when == "call" or (report.when != "call" and report.outcome != "passed"):
        if report.when != "call" and any(o["name"] == report.nodeid for o in _outcomes):
            return
        message = ""
        if report.outcome == "failed":
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            message = (message.strip().splitlines() or [""])[0][:300]
        _outcomes.append({"name": report.nodeid, "outcome": report.outcome,
                          "message": message})


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(_outcomes, fh)
