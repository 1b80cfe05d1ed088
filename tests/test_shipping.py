"""The report shipping's own logic: batches, the spool, what is sent (the AWS side is
tested on moto in tests/aws/test_reporting.py)."""

from __future__ import annotations

import json
import time

import pytest

from agent.engine import shipping
from agent.errors import Unreachable


def _event(ts: int, size: int = 10) -> dict:
    return {"timestamp": ts, "message": "x" * size}


def test_batches_respect_the_event_count_and_the_byte_limit():
    many = [_event(i, 1) for i in range(10_001)]
    assert [len(b) for b in shipping._batches(many)] == [10_000, 1]
    big = [_event(i, 300_000) for i in range(4)]  # 3 fit in 1 MiB, the 4th does not
    assert [len(b) for b in shipping._batches(big)] == [3, 1]


def test_the_spool_keeps_what_failed_and_drops_what_cloudwatch_would_refuse(tmp_path):
    target = shipping.Target(["cloudwatch"], str(tmp_path), env="prod", instance_id="i-1")
    now = int(time.time() * 1000)

    def down(group, stream, batch):
        raise Unreachable("no route")

    with pytest.raises(Unreachable):
        shipping._send_logs(target, [_event(now - 5)], down)
    spooled = json.loads((tmp_path / "spool" / "cloudwatch.json").read_text())
    assert [(e["group"], e["stream"]) for e in spooled] == [("/trueup/prod", "i-1")]

    # an event of another stream stays; one older than 13 days is dropped
    spooled += [{**_event(now), "group": "/trueup/prod", "stream": "i-2"},
                {**_event(now - 14 * 86400 * 1000), "group": "/trueup/prod", "stream": "i-1"}]
    (tmp_path / "spool" / "cloudwatch.json").write_text(json.dumps(spooled))
    sent: list = []
    assert shipping._send_logs(target, [_event(now)],
                               lambda g, s, b: sent.append((g, s, b))) == "sent"
    ((group, stream, batch),) = sent
    assert [e["timestamp"] for e in batch] == [now - 5, now]
    left = json.loads((tmp_path / "spool" / "cloudwatch.json").read_text())
    assert [e["stream"] for e in left] == ["i-2"]


def test_events_name_changed_failed_and_skipped_resources_only():
    report = {"run_id": "r1", "mode": "run", "finished": "2026-12-01T10:00:00.250Z",
              "totals": {"changed": 1}, "resources": [
                  {"resource": "file:/a", "status": "changed",
                   "changes": [{"field": "content", "before": "x", "after": "y",
                                "diff": "--- big"}]},
                  {"resource": "file:/b", "status": "unchanged"},
                  {"resource": "service:x", "status": "skipped", "error": "needs file:/c"}]}
    events = shipping.log_events(report)
    assert [json.loads(e["message"]).get("resource") for e in events] == [
        "file:/a", "service:x", None]
    assert all(e["timestamp"] == 1796119200250 for e in events)
    assert "diff" not in events[0]["message"]


def test_env_of_a_source():
    assert shipping.env_of("ssm:/trueup/prod") == "prod"
    assert shipping.env_of("ssm:/trueup/prod/", "x") == "prod"
    assert shipping.env_of("/srv/recipes", "stage") == "stage"
    assert shipping.Target(["cloudwatch"], "/s").group == "/trueup/local"


def test_an_unknown_destination_in_the_configuration_is_exit_1(tmp_path, trueup, env):
    from pathlib import Path

    from tests.helpers import write_bundle

    Path(env["TRUEUP_CONFIG"]).write_text('report_to = "cloudwatch,pager"\n')
    bundle = write_bundle(tmp_path / "bundle", {"app": "resources: []\n"}, runlist="app")
    run = trueup("run", str(bundle))
    assert run.returncode == 1
    assert "report_to: unknown report destination 'pager'" in run.stderr, run.stderr
    assert not (Path(env["TRUEUP_STATE_DIR"]) / "reports").exists()
