"""Secrets: a SecureString value reaches the rendered file and nowhere else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.aws.conftest import ENV, SOURCE, ssm_put
from tests.helpers import write_bundle

pytestmark = pytest.mark.aws

CANARY_ATTR = "canary-attr-7f3a9c1e"      # a SecureString in the attribute tree
CANARY_FN = "canary-fn-2b8d4e6f"          # read with secret() from outside the tree
ROTATED = "canary-rotated-5c1d0a9b"


def _app(target: Path) -> str:
    return f"""\
        resources:
          - directory: {target}
          - template: {target}/db.conf
            source: db.conf.j2
          - file: {target}/token
            content: "{{{{ secret('/app/token') }}}}"
            mode: "0640"
          - file: {target}/plain
            content: "not secret\\n"
          - command: leaky
            run: [/bin/sh, -c, 'echo "leaked $0" >&2; exit 3', "{{{{ secret('/app/token') }}}}"]
            creates: {target}/never
            ignore_failure: true
        """


BROKEN = """\
    attributes:
      lookup: {known: 1}
    resources:
      - file: /tmp/trueup-never-written
        content: "{{ attributes.lookup[secret('/app/token')] }}"
    """


@pytest.mark.slow
def test_secret_canary_reaches_only_the_rendered_file(tmp_path, trueup, env, aws, bucket):
    target = tmp_path / "app"
    log = tmp_path / "trueup.log"
    bundle = write_bundle(
        tmp_path / "bundle", {"app": _app(target)},
        templates={"app/db.conf.j2": "password={{ attributes.db.password }}\n"
                   "token={{ secret('/app/token') }}\n"}, runlist="app")
    ssm_put(aws, f"/trueup/{ENV}/attributes/db/password", CANARY_ATTR, "SecureString")
    ssm_put(aws, "/app/token", CANARY_FN, "SecureString")
    pub = trueup("publish", str(bundle), "--bucket", bucket, "--env", ENV)
    assert pub.returncode == 0, pub.stderr
    target.mkdir()
    (target / "db.conf").write_text("password=old-value\n")
    (target / "db.conf").chmod(0o644)

    debug = {"TRUEUP_LOG_LEVEL": "DEBUG", "TRUEUP_LOG_FILE": str(log)}
    outputs = [
        trueup("plan", SOURCE, env=debug),
        trueup("run", SOURCE, "--diff", env=debug),
        trueup("run", SOURCE, "--json", env=debug),
        trueup("report", env=debug),
        trueup("report", "--json", env=debug),
    ]
    ssm_put(aws, "/app/token", ROTATED, "SecureString")  # rotate: the files change again
    outputs.append(trueup("run", SOURCE, "--diff", env=debug))
    # an error message that would quote the secret (validate refuses it, so run it locally)
    broken_bundle = write_bundle(tmp_path / "broken", {"broken": BROKEN})
    broken = trueup("run", str(broken_bundle), "--runlist", "broken", env=debug)
    outputs.append(broken)

    # the values are where they belong
    assert (target / "db.conf").read_text() == f"password={CANARY_ATTR}\ntoken={ROTATED}\n"
    assert (target / "token").read_text() == ROTATED
    assert (target / "db.conf").stat().st_mode & 0o777 == 0o600  # recipe set no mode
    assert (target / "token").stat().st_mode & 0o777 == 0o640    # recipe set one
    assert "content (sensitive, diff hidden)" in outputs[0].stdout
    assert "+not secret" in outputs[0].stdout  # other resources still show their diff
    assert "failed-ignored command:leaky" in outputs[1].stdout
    assert broken.returncode == 1 and "has no attribute '********'" in broken.stderr

    # and nowhere else
    texts = {f"output {i}": o.stdout + o.stderr for i, o in enumerate(outputs)}
    texts["log file"] = log.read_text()
    assert "GetParametersByPath" in texts["log file"]  # botocore debug traces were logged
    for path in Path(env["TRUEUP_STATE_DIR"]).rglob("*"):  # reports, history, caches, backups
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for where, text in texts.items():
        for canary in (CANARY_ATTR, CANARY_FN, ROTATED):
            assert canary not in text, f"{canary} leaked into {where}"
    assert any("history" in k for k in texts) and any("last_run.json" in k for k in texts)
    assert not Path("/tmp/trueup-never-written").exists()


def test_bake_refuses_resources_that_read_secrets_or_instance_facts(tmp_path, trueup, aws, imds):
    ssm_put(aws, "/app/token", CANARY_FN, "SecureString")
    aws.clear_requests()
    for content, what in (("{{ secret('/app/token') }}", "secret('/app/token')"),
                          ("{{ facts.ec2.instance_id }}", "facts.ec2.instance_id")):
        bundle = write_bundle(tmp_path / what.replace("/", "_"), {"img": f"""\
            resources:
              - file: {tmp_path}/baked
                content: "{content}"
            """}, runlist="img")
        out = trueup("run", str(bundle), "--phase", "bake")
        assert out.returncode == 1, out.stdout
        assert f"{what} is only known at boot" in out.stderr
        assert "give the resource (or its recipe) phase: boot" in out.stderr
        assert "recipe.yml:3" in out.stderr
        assert not (tmp_path / "baked").exists()
    assert imds.token_puts == 0  # refused before IMDS was asked
    assert aws.count(service="ssm") == 0  # and before Parameter Store was


def test_boot_phase_resource_with_a_secret_is_skipped_by_bake(tmp_path, trueup, aws):
    bundle = write_bundle(tmp_path / "b", {"img": f"""\
        resources:
          - file: {tmp_path}/baked
            content: "static"
          - file: {tmp_path}/secret
            content: "{{{{ secret('/app/token') }}}}"
            phase: boot
        """}, runlist="img")
    out = trueup("run", str(bundle), "--phase", "bake")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "baked").exists() and not (tmp_path / "secret").exists()
    assert aws.count(service="ssm") == 0


@pytest.mark.parametrize("name, message", [
    ("/no/such", "secret '/no/such': no such parameter in Parameter Store"),
    ("relative", "secret() takes an absolute Parameter Store name"),
])
def test_bad_secret_names(tmp_path, trueup, aws, name, message):
    bundle = write_bundle(tmp_path / "b", {"x": f"""\
        resources:
          - file: {tmp_path}/x
            content: "{{{{ secret('{name}') }}}}"
        """}, runlist="x")
    out = trueup("run", str(bundle))
    assert out.returncode == 1
    assert message in out.stderr and "recipe.yml:3" in out.stderr
    assert not (tmp_path / "x").exists()


def test_validate_and_publish_need_no_secret(tmp_path, trueup, aws):
    bundle = write_bundle(tmp_path / "b", {"x": f"""\
        resources:
          - file: {tmp_path}/x
            content: "{{{{ secret('/app/token') }}}} {{{{ facts.ec2.tags['trueup:role'] }}}}"
        """}, runlist="x")
    out = trueup("validate", str(bundle))
    assert out.returncode == 0, out.stderr
    assert aws.count() == 0
