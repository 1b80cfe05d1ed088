"""trueup seal refuses while a file rendered from a real secret (a SecureString read by
secret() from the moto server) is on disk, and never prints the secret."""

from __future__ import annotations

from tests.aws.conftest import ssm_put
from tests.helpers import snapshot, write_bundle

CANARY = "seal-canary-4b1d"


def test_seal_refuses_while_a_secret_rendered_file_remains(tmp_path, trueup, env, aws):
    ssm_put(aws, "/app/token", CANARY, "SecureString")
    target = tmp_path / "etc-app.conf"
    bundle = write_bundle(tmp_path / "b", {"app": f"""\
        resources:
          - template: {target}
            source: app.conf.j2
            phase: boot
        """}, templates={"app/app.conf.j2": "token={{ secret('/app/token') }}\n"},
        runlist="app")
    run = trueup("run", str(bundle))
    assert run.returncode == 0, run.stderr
    assert CANARY in target.read_text()
    root = tmp_path / "machine"
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/ssh/ssh_host_rsa_key").write_text("KEY")
    before = snapshot(tmp_path)
    res = trueup("seal", "--root", str(root))
    assert res.returncode == 1
    assert f"refusing to seal: {target} was rendered from a secret" in res.stderr
    assert CANARY not in res.stdout + res.stderr
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.endswith("run.lock")}
    assert after == {k: v for k, v in before.items() if not k.endswith("run.lock")}
    target.unlink()
    assert trueup("seal", "--root", str(root)).returncode == 0
    assert not (root / "etc/ssh/ssh_host_rsa_key").exists()
