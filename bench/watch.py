"""trueup watch: drift-repair latency, idle CPU and RSS, and the cost of the pointer poll.

    .venv/bin/python bench/watch.py [--edits 100] [--idle 60] [--poll-seconds 30]

1. Drift repair: a bundle of 25 managed files; ``trueup watch`` (default debounce) is
   started on it; then ``--edits`` foreign writes, round robin over the files (4 a file,
   under the fight limit), each timed from the write until the file holds trueup's content
   again (read back every 0.5 ms). p50, p95 and max.
2. Idle: the daemon's RSS (VmRSS, VmHWM) and CPU (utime + stime) over ``--idle`` seconds
   with nothing to do.
3. Pointer poll: a moto server with a published pointer; the daemon on ``ssm:/trueup/bench``
   with ``--poll 1`` for ``--poll-seconds``; its CPU per poll and the requests it made.

Prints one JSON document (and the load average before and after). Needs no root; the
state dir and bundle are in a scratch folder.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _env(state: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRUEUP_STATE_DIR": str(state),
           "TRUEUP_CONFIG": str(state / "none.toml")}
    env.update(extra or {})
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "agent", "watch", *args, "--splay", "0"],
                            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))


def _wait_report(state: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (state / "reports" / "last_run.json").exists():
        if time.monotonic() > deadline:
            raise SystemExit("the daemon made no first run")
        time.sleep(0.05)


def _cpu_rss(pid: int) -> tuple[float, int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    kib = lambda key: int(status[key].split()[0])  # noqa: E731
    return cpu, kib("VmRSS"), kib("VmHWM")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def drift_and_idle(work: Path, edits: int, idle: float) -> dict:
    out = work / "files"
    out.mkdir()
    files = [out / f"f{i:02d}.conf" for i in range(25)]
    lines = ["resources:"] + [f"  - file: {f}\n    content: \"managed {f.name}\\n\""
                              for f in files]
    (work / "bundle" / "app").mkdir(parents=True)
    (work / "bundle" / "app" / "recipe.yml").write_text("\n".join(lines) + "\n")
    (work / "bundle" / "runlist").write_text("app\n")
    state = work / "state"
    proc = _start([str(work / "bundle")], _env(state), work / "watch.log")
    try:
        _wait_report(state)
        time.sleep(1)
        latencies = []
        for n in range(edits):
            path = files[n % len(files)]
            want = f"managed {path.name}\n".encode()
            t0 = time.perf_counter()
            path.write_bytes(b"foreign edit\n")
            while True:
                try:
                    if path.read_bytes() == want:
                        break
                except OSError:
                    pass
                if time.perf_counter() - t0 > 30:
                    raise SystemExit(f"{path} not restored in 30 s")
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.25)
        time.sleep(2)
        cpu0, rss0, _ = _cpu_rss(proc.pid)
        time.sleep(idle)
        cpu1, rss1, hwm = _cpu_rss(proc.pid)
    finally:
        _stop(proc)
    ms = sorted(x * 1000 for x in latencies)
    return {
        "edits": edits,
        "repair_ms": {"p50": round(statistics.median(ms), 1),
                      "p95": round(ms[int(0.95 * (len(ms) - 1))], 1),
                      "max": round(ms[-1], 1), "min": round(ms[0], 1)},
        "idle": {"seconds": idle, "cpu_s": round(cpu1 - cpu0, 3),
                 "cpu_percent": round(100 * (cpu1 - cpu0) / idle, 3),
                 "rss_kib_start": rss0, "rss_kib_end": rss1, "rss_hwm_kib": hwm},
    }


def pointer_poll(work: Path, seconds: float) -> dict:
    from tests.servers.moto_server import MotoServer

    server = MotoServer(work / "moto.log")
    server.start()
    try:
        server.warm_up()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(server.env())
        import boto3

        pointer = json.dumps({"uri": "s3://b/k.tar.gz", "sha256": "0" * 64, "version": "1"})
        session = boto3.session.Session(region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"))
        ssm = session.client("ssm", endpoint_url=env["AWS_ENDPOINT_URL"],
                             aws_access_key_id="x", aws_secret_access_key="x")
        ssm.put_parameter(Name="/trueup/bench/bundle", Value=pointer, Type="String")
        state = work / "poll-state"
        # an interval longer than the measurement: after the start run, only polls happen
        proc = _start(["ssm:/trueup/bench", "--poll", "1", "--interval", "86400"],
                      _env(state, {**env, "TRUEUP_SPLAY": "0"}), work / "poll.log")
        try:
            _wait_report(state)  # the start run (it fails: the pointer names no object)
            time.sleep(2)  # the first polls after it are made
            server.clear_requests()
            cpu0, _, _ = _cpu_rss(proc.pid)
            time.sleep(seconds)
            cpu1, rss, _ = _cpu_rss(proc.pid)
            requests = server.requests()
        finally:
            _stop(proc)
    finally:
        server.stop()
    ops: dict[str, int] = {}
    for r in requests:
        ops[r.operation or "?"] = ops.get(r.operation or "?", 0) + 1
    polls = max(1, ops.get("GetParameter", 0))
    return {"seconds": seconds, "requests": ops,
            "cpu_ms_per_poll": round(1000 * (cpu1 - cpu0) / polls, 2),
            "cpu_percent_at_1s_poll": round(100 * (cpu1 - cpu0) / seconds, 2),
            "rss_kib": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=100)
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--poll-seconds", type=float, default=30.0)
    ns = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="trueup-watch-bench-") as tmp:
        work = Path(tmp)
        result = {"load_before": [round(x, 2) for x in load_before]}
        result["drift"] = drift_and_idle(work, ns.edits, ns.idle)
        result["pointer_poll"] = pointer_poll(work, ns.poll_seconds)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
