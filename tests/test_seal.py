"""trueup seal on a machine tree (--root): what it removes, what it keeps, and its refusal
while a file rendered from a secret remains. The booted-image end is in
tests/system/test_bake_image.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import snapshot, write_bundle


def _state(state: Path) -> dict:
    return {k: v for k, v in snapshot(state).items() if k != "run.lock"}


def _machine(root: Path, state: Path) -> None:
    files = {
        "etc/ssh/ssh_host_ed25519_key": "PRIVATE", "etc/ssh/ssh_host_ed25519_key.pub": "pub",
        "etc/ssh/sshd_config": "Port 22\n",
        "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
        "var/lib/dbus/machine-id": "0123456789abcdef0123456789abcdef\n",
        "var/lib/cloud/instances/i-1/boot-finished": "x", "var/lib/cloud/data/result.json": "{}",
        "var/lib/cloud/seed/nocloud/user-data": "#cloud-config\n",
        "var/log/syslog": "boot log\n", "var/log/syslog.1": "old\n",
        "var/log/apt/history.log.2.gz": "gz", "var/log/cloud-init.log": "ci\n",
        "var/log/journal/abc/system.journal": "j", "var/log/empty.log": "",
        "root/.bash_history": "aws configure\n", "home/admin/.python_history": "x\n",
        "root/.cache/pip/http/x": "cache", "tmp/build.tar": "x", "var/tmp/t/x": "x",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "var/lib/dbus").mkdir(parents=True, exist_ok=True)
    for rel in ("reports/history/r1.json", "cache/parsed/x", "backup/etc/x", "bake/manifest.json"):
        (state / rel).parent.mkdir(parents=True, exist_ok=True)
        (state / rel).write_text('{"resources": []}')


def test_seal_noop_lists_and_seal_removes_and_keeps_the_manifest(tmp_path, trueup, env):
    root = tmp_path / "m"
    state = Path(env["TRUEUP_STATE_DIR"])
    _machine(root, state)
    before = snapshot(root), _state(state)
    noop = trueup("seal", "--root", str(root), "--noop", "--json")
    assert noop.returncode == 0, noop.stderr
    listed = {(e["action"], Path(e["path"]).relative_to(root) if str(e["path"]).startswith(
        str(root)) else Path(e["path"]).relative_to(state).as_posix())
        for e in json.loads(noop.stdout)["entries"]}
    assert (snapshot(root), _state(state)) == before  # --noop changed nothing
    want = {("remove", Path("etc/ssh/ssh_host_ed25519_key")),
            ("remove", Path("etc/ssh/ssh_host_ed25519_key.pub")),
            ("empty", Path("etc/machine-id")), ("remove", Path("var/lib/dbus/machine-id")),
            ("remove", Path("var/lib/cloud/instances")), ("remove", Path("var/lib/cloud/data")),
            ("empty", Path("var/log/syslog")), ("remove", Path("var/log/syslog.1")),
            ("remove", Path("var/log/apt/history.log.2.gz")),
            ("remove", Path("var/log/cloud-init.log")), ("remove", Path("var/log/journal/abc")),
            ("remove", Path("root/.bash_history")), ("remove", Path("home/admin/.python_history")),
            ("remove", Path("root/.cache/pip")), ("clear", Path("tmp")), ("clear", Path("var/tmp")),
            ("remove", "reports"), ("remove", "cache"), ("remove", "backup")}
    assert listed == want
    text = trueup("seal", "--root", str(root), "--noop")
    assert "would remove etc" not in text.stdout and f"would remove {root}/etc/ssh/" in text.stdout

    done = trueup("seal", "--root", str(root))
    assert done.returncode == 0, done.stderr
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    assert (root / "etc/ssh/sshd_config").exists()
    assert (root / "etc/machine-id").read_text() == ""
    assert not (root / "var/lib/dbus/machine-id").exists()
    assert sorted(p.name for p in (root / "var/lib/cloud").iterdir()) == ["seed"]
    assert (root / "var/log/syslog").read_text() == ""
    assert sorted(str(p.relative_to(root)) for p in (root / "var/log").rglob("*")
                  if p.is_file()) == ["var/log/empty.log", "var/log/syslog"]
    assert not (root / "root/.bash_history").exists()
    assert list((root / "tmp").iterdir()) == [] and list((root / "var/tmp").iterdir()) == []
    assert sorted(p.name for p in state.iterdir() if p.name != "run.lock") == ["bake"]
    assert (state / "bake/manifest.json").exists()
    again = trueup("seal", "--root", str(root), "--json")
    assert json.loads(again.stdout)["entries"] == []  # sealed twice: nothing left to do


def test_seal_refuses_while_a_file_rendered_from_a_secret_remains(tmp_path, trueup, env):
    root = tmp_path / "m"
    state = Path(env["TRUEUP_STATE_DIR"])
    _machine(root, state)
    token = root / "etc/app-token"
    bundle = write_bundle(tmp_path / "b", {"app": f"""\
        resources:
          - file: {token}
            content: "s3cr3t"
            sensitive: true
          - file: {root}/etc/plain
            content: "plain"
        """}, runlist="app")
    assert trueup("run", str(bundle)).returncode == 0
    before = snapshot(root), _state(state)
    res = trueup("seal", "--root", str(root))
    assert res.returncode == 1
    assert f"refusing to seal: {token} was rendered from a secret" in res.stderr
    assert "reports/last_run.json" in res.stderr
    assert "s3cr3t" not in res.stderr + res.stdout
    assert (snapshot(root), _state(state)) == before  # nothing removed
    noop = trueup("seal", "--root", str(root), "--noop")
    assert noop.returncode == 1
    token.unlink()
    assert trueup("seal", "--root", str(root)).returncode == 0
    assert not (state / "reports").exists()
