"""Ordering, notifications, guards, retries and failure isolation, through the real CLI."""

from __future__ import annotations

import grp
import json
import os
import pwd
from pathlib import Path

import pytest

from agent.engine.lock import RunLock
from tests.helpers import write_bundle


def log_cmd(log: Path, word: str) -> str:
    """A command (YAML flow list) that appends ``word`` to ``log``."""
    return f'[/bin/sh, -c, \'echo {word} >> "$0"\', "{log}"]'


def make(tmp_path: Path, resources: str, **kw) -> Path:
    return write_bundle(tmp_path / "bundle", {"app": "resources:\n" + resources},
                        runlist="app", **kw)


def report_of(trueup) -> dict:
    return json.loads(trueup("report", "--json").stdout)


def statuses(trueup) -> dict[str, str]:
    return {r["resource"]: r["status"] for r in report_of(trueup)["resources"]}


def test_requires_reorders_and_declaration_order_otherwise(tmp_path, trueup):
    log = tmp_path / "log"
    bundle = make(tmp_path, f"""
  - command: second
    run: {log_cmd(log, "second")}
    requires: [command:first]
  - command: first
    run: {log_cmd(log, "first")}
  - command: third
    run: {log_cmd(log, "third")}
""")
    assert trueup("run", str(bundle)).returncode == 0
    assert log.read_text().split() == ["first", "second", "third"]


def test_delayed_notifications_run_once_at_the_end(tmp_path, trueup):
    log = tmp_path / "log"
    files = "".join(f"""
  - file: {tmp_path}/f{i}
    content: "{i}\\n"
    notify: command:restart run
""" for i in range(3))
    bundle = make(tmp_path, files + f"""
  - command: restart
    run: {log_cmd(log, "restart")}
    refresh_only: true
  - command: last
    run: {log_cmd(log, "last")}
""")
    out = trueup("run", str(bundle))
    assert out.returncode == 0, out.stderr
    assert log.read_text().split() == ["last", "restart"]
    rep = {r["resource"]: r for r in report_of(trueup)["resources"]}
    assert rep["command:restart"]["notified"] == [f"file:{tmp_path}/f{i}" for i in range(3)]
    # nothing changed on the second run, so no restart
    trueup("run", str(bundle))
    assert log.read_text().split() == ["last", "restart", "last"]


def test_immediate_notification_runs_before_the_next_resource(tmp_path, trueup):
    log = tmp_path / "log"
    bundle = make(tmp_path, f"""
  - command: restart
    run: {log_cmd(log, "restart")}
    refresh_only: true
  - file: {tmp_path}/conf
    content: "x\\n"
    notify: command:restart
    immediately: true
  - command: next
    run: {log_cmd(log, "next")}
""")
    assert trueup("run", str(bundle)).returncode == 0
    assert log.read_text().split() == ["restart", "next"]


def test_subscribe_runs_only_when_the_source_changes(tmp_path, trueup):
    log = tmp_path / "log"
    conf = tmp_path / "conf"
    bundle = make(tmp_path, f"""
  - command: reload
    run: {log_cmd(log, "reload")}
    refresh_only: true
    subscribe: file:{conf}
  - file: {conf}
    content: "{{{{ attributes.v }}}}\\n"
""", attributes="v: 1\n")
    trueup("run", str(bundle))
    trueup("run", str(bundle))
    assert log.read_text().split() == ["reload"]
    trueup("run", str(bundle), "-a", "v=2")
    assert log.read_text().split() == ["reload", "reload"]


def test_guards(tmp_path, trueup):
    bundle = make(tmp_path, f"""
  - file: {tmp_path}/only-if-false
    only_if: [/bin/false]
  - file: {tmp_path}/only-if-true
    only_if: [/bin/true]
  - file: {tmp_path}/not-if-true
    not_if: [test, -d, /]
""")
    assert trueup("run", str(bundle)).returncode == 0
    assert sorted(p.name for p in tmp_path.glob("*-*-*")) == ["only-if-true"]
    st = statuses(trueup)
    assert st[f"file:{tmp_path}/only-if-false"] == "guarded"
    assert st[f"file:{tmp_path}/not-if-true"] == "guarded"


def test_retries_until_success(tmp_path, trueup):
    count = tmp_path / "count"
    bundle = make(tmp_path, f"""
  - command: flaky
    run: [/bin/sh, -c, 'echo x >> "$0"; test $(wc -l < "$0") -ge 3', "{count}"]
    retries: 3
    retry_delay: 0
""")
    assert trueup("run", str(bundle)).returncode == 0
    rep = report_of(trueup)["resources"][0]
    assert rep["status"] == "changed" and rep["attempts"] == 3


def test_a_retry_replans_and_reports_what_it_applied(tmp_path, trueup):
    conf = tmp_path / "app.conf"
    conf.write_text("old\n")
    conf.chmod(0o644)
    once = tmp_path / "verified-once"
    # the first verify refuses the content and, meanwhile, something else fixes the mode
    bundle = make(tmp_path, f"""
  - file: {conf}
    content: "new\\n"
    mode: "0600"
    verify: [/bin/sh, -c, 'test -e "$1" && exit 0; touch "$1"; chmod 600 "$2"; exit 1',
             verify, "{once}", "{conf}"]
    retries: 2
    retry_delay: 0
""")
    plan = trueup("plan", str(bundle))
    assert "content, mode 0644 -> 0600" in plan.stdout  # the first plan: two changes
    out = trueup("run", str(bundle), "--detailed-exitcodes")
    assert out.returncode == 2, out.stdout + out.stderr
    assert conf.read_text() == "new\n" and conf.stat().st_mode & 0o777 == 0o600
    line = next(x for x in out.stdout.splitlines() if str(conf) in x)
    assert line.endswith(f"{conf}  content")  # the re-planned change, not the first plan
    (rep,) = report_of(trueup)["resources"]
    assert rep["attempts"] == 2
    assert [c["field"] for c in rep["changes"]] == ["content"]


def test_failure_skips_dependents_and_the_rest_converges(tmp_path, trueup):
    bundle = make(tmp_path, f"""
  - command: broken
    run: [/bin/sh, -c, 'echo boom >&2; exit 3']
  - file: {tmp_path}/needs-broken
    requires: [command:broken]
  - file: {tmp_path}/needs-needs-broken
    requires: [file:{tmp_path}/needs-broken]
  - file: {tmp_path}/independent
  - command: tolerated
    run: [/bin/false]
    ignore_failure: true
  - file: {tmp_path}/needs-tolerated
    requires: [command:tolerated]
""")
    out = trueup("run", str(bundle), "--detailed-exitcodes")
    assert out.returncode == 6, out.stdout + out.stderr
    failed_line = next(line for line in out.stdout.splitlines() if "command:broken" in line)
    assert failed_line.startswith("failed") and "exited with status 3: boom" in failed_line
    st = statuses(trueup)
    assert st == {
        "command:broken": "failed",
        f"file:{tmp_path}/needs-broken": "skipped",
        f"file:{tmp_path}/needs-needs-broken": "skipped",
        f"file:{tmp_path}/independent": "changed",
        "command:tolerated": "failed-ignored",
        f"file:{tmp_path}/needs-tolerated": "changed",
    }
    assert not (tmp_path / "needs-broken").exists()
    assert (tmp_path / "independent").exists()
    assert report_of(trueup)["exit_code"] == 6
    assert trueup("run", str(bundle)).returncode == 4  # failures without detailed codes


def test_not_converged_after_apply_is_a_failure(tmp_path, trueup):
    bundle = make(tmp_path, f"""
  - command: liar
    run: [/bin/true]
    creates: {tmp_path}/never
""")
    out = trueup("run", str(bundle), "--detailed-exitcodes")
    assert out.returncode == 4
    assert "not converged after apply" in out.stdout


def test_noop_runs_nothing_but_reports_notifications(tmp_path, trueup):
    log = tmp_path / "log"
    bundle = make(tmp_path, f"""
  - file: {tmp_path}/conf
    notify: command:restart
  - command: restart
    run: {log_cmd(log, "restart")}
    refresh_only: true
""")
    out = trueup("plan", str(bundle))
    assert out.returncode == 0
    assert "would change command:restart  run triggered by file:" in out.stdout
    assert not log.exists() and not (tmp_path / "conf").exists()


def test_lock_held_means_exit_75(tmp_path, trueup, env):
    bundle = make(tmp_path, f"  - file: {tmp_path}/x\n")
    state = Path(env["TRUEUP_STATE_DIR"])
    state.mkdir()
    with RunLock(str(state / "run.lock")):
        out = trueup("run", str(bundle), "--lock-timeout", "0.3")
        assert out.returncode == 75
        assert f"another trueup run holds {state}/run.lock (pid {os.getpid()})" in out.stderr
        assert not (tmp_path / "x").exists()
    assert trueup("run", str(bundle)).returncode == 0
    assert (tmp_path / "x").exists()


def test_attribute_precedence(tmp_path, trueup):
    out_file = tmp_path / "out"
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        attributes:
          a: {{recipe: r, bundle: r, node: r, flag: r}}
        resources:
          - file: {out_file}
            content: "{{{{ attributes.a.recipe }}}} {{{{ attributes.a.bundle }}}} \\
              {{{{ attributes.a.node }}}} {{{{ attributes.a.flag }}}}"
        """}, attributes="a: {bundle: b, node: b, flag: b}\n")
    node = tmp_path / "node.json"
    node.write_text(json.dumps({"a": {"node": "n", "flag": "n"}, "run_list": ["recipe[app]"]}))
    out = trueup("run", str(bundle), "--attributes", str(node), "-a", "a.flag=f")
    assert out.returncode == 0, out.stderr
    assert out_file.read_text() == "r b n f"


def test_event_runlist_and_phase(tmp_path, trueup):
    bundle = write_bundle(tmp_path / "bundle", {
        "app": f"""
            resources:
              - file: {tmp_path}/baked
                phase: bake
              - file: {tmp_path}/booted
                phase: boot
              - file: {tmp_path}/always
        """,
        "deploy": f"resources:\n  - file: {tmp_path}/deployed\n"}, runlist="app")
    (bundle / "runlist.deploy").write_text("deploy\n")
    assert trueup("run", str(bundle), "--phase", "bake").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["always", "baked"]
    assert trueup("run", str(bundle), "--event", "deploy").returncode == 0
    assert (tmp_path / "deployed").exists() and not (tmp_path / "booted").exists()
    missing = trueup("run", str(bundle), "--event", "shutdown")
    assert missing.returncode == 1 and "no run list for event 'shutdown'" in missing.stderr


def test_sensitive_content_never_shown(tmp_path, trueup, env):
    canary = "canary-5f1e2d-not-for-eyes"
    target = tmp_path / "secret.conf"
    bundle = make(tmp_path, f"""
  - file: {target}
    content: "password={{{{ attributes.pw }}}}\\n"
    sensitive: true
""", attributes=f"pw: {canary}\n")
    target.write_text("password=old-value\n")
    outputs = [trueup("plan", str(bundle)), trueup("run", str(bundle), "--diff"),
               trueup("run", str(bundle), "--json"), trueup("report"),
               trueup("report", "--json")]
    assert target.read_text() == f"password={canary}\n"
    assert target.stat().st_mode & 0o777 == 0o644  # kept the existing file's mode
    for out in outputs:
        assert canary not in out.stdout + out.stderr
        assert "old-value" not in out.stdout + out.stderr
    for path in (Path(env["TRUEUP_STATE_DIR"]) / "reports").rglob("*.json"):
        assert canary not in path.read_text()
    assert "content (sensitive, diff hidden)" in outputs[0].stdout


def test_new_sensitive_file_is_private_by_default(tmp_path, trueup):
    target = tmp_path / "key"
    bundle = make(tmp_path, f"  - file: {target}\n    content: k\n    sensitive: true\n")
    trueup("run", str(bundle))
    assert target.stat().st_mode & 0o777 == 0o600


def test_facts_are_gathered_only_when_used(tmp_path):
    from agent.aws.secrets import SecretStore
    from agent.compile.loader import Bundle
    from agent.compile.prepare import Options, prepare
    from agent.config import Config
    from agent.engine.backups import Backups
    from agent.host.facts import Facts
    from agent.host.system import System

    bundle = make(tmp_path, f"  - file: {tmp_path}/h\n    content: '{{{{ facts.hostname }}}}'\n")
    facts = Facts()
    prepare(Options(source=str(bundle)), Config(state_dir=str(tmp_path)), Bundle(str(bundle)),
            System(), Backups(str(tmp_path / "b")), facts, SecretStore())
    assert facts.used == {"hostname"}
    assert set(facts._values) == {"hostname"}


def test_verify_refuses_bad_content_and_skips_the_notified_service(tmp_path, trueup):
    log = tmp_path / "log"
    conf = tmp_path / "app.conf"
    conf.write_text("good = 1\n")
    bundle = make(tmp_path, f"""
  - file: {conf}
    content: "{{{{ attributes.body }}}}\\n"
    verify: [grep, -q, "^good", "%{{path}}"]
    notify: command:restart
  - command: restart
    run: {log_cmd(log, "restart")}
    refresh_only: true
""")
    out = trueup("run", str(bundle), "-a", "body=bad = 2", "--detailed-exitcodes")
    assert out.returncode == 4, out.stdout + out.stderr
    assert "refused the new content" in out.stdout
    assert conf.read_text() == "good = 1\n"
    assert not log.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert trueup("run", str(bundle), "-a", "body=good = 2").returncode == 0
    assert conf.read_text() == "good = 2\n" and log.read_text() == "restart\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_owner_and_group_drift_is_reported_and_repaired(tmp_path, trueup):
    target = tmp_path / "owned"
    bundle = make(tmp_path, f"""
  - file: {target}
    content: "x\\n"
    owner: nobody
    group: nogroup
    mode: "0640"
""")
    assert trueup("run", str(bundle)).returncode == 0
    st = target.stat()
    assert (st.st_uid, st.st_gid) == (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
    os.chown(target, 0, 0)
    target.chmod(0o644)
    plan = trueup("plan", str(bundle))
    assert "mode 0644 -> 0640" in plan.stdout and "owner 0 -> nobody" in plan.stdout
    assert "group 0 -> nogroup" in plan.stdout and "content" not in plan.stdout
    inode = target.stat().st_ino
    assert trueup("run", str(bundle), "--detailed-exitcodes").returncode == 2
    st = target.stat()
    assert st.st_uid == pwd.getpwnam("nobody").pw_uid and st.st_mode & 0o777 == 0o640
    assert st.st_ino == inode  # fixed in place, not rewritten


def test_bad_config_file_is_refused(tmp_path, trueup, env):
    Path(env["TRUEUP_CONFIG"]).write_text("lock_timeout = [\n")
    out = trueup("run", str(tmp_path))
    assert out.returncode == 1 and "invalid TOML" in out.stderr
    Path(env["TRUEUP_CONFIG"]).write_text("sauce = 'x'\n")
    out = trueup("run", str(tmp_path))
    assert out.returncode == 1 and "unknown setting 'sauce'" in out.stderr
