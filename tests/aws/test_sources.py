"""ssm:, s3: and local sources: run lists, attributes, recipes in Parameter Store, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.aws.conftest import ENV, SOURCE, last_report, ssm_put
from tests.helpers import REPO, write_bundle

pytestmark = pytest.mark.aws


def _recipe(tmp_path, name: str) -> str:
    return f"resources:\n  - file: {tmp_path}/out/{name}\n    content: \"{name}\"\n"


@pytest.fixture
def four(tmp_path, trueup, bucket):
    """A published bundle of four recipes a, b, c, d; runlist file says a."""
    (tmp_path / "out").mkdir()
    bundle = write_bundle(tmp_path / "b", {n: _recipe(tmp_path, n) for n in "abcd"},
                          runlist="a")
    (bundle / "runlist.deploy").write_text("d\n")
    out = trueup("publish", str(bundle), "--bucket", bucket, "--env", ENV)
    assert out.returncode == 0, out.stderr
    return tmp_path / "out"


@pytest.mark.parametrize("params, argv, expected", [
    ({}, [], ["a"]),                                                     # bundle runlist file
    ({"runlist": "b"}, [], ["b"]),                                       # env
    ({"runlist": "b", "roles/web/runlist": "c"}, [], ["c"]),             # role beats env
    ({"runlist": "b", "roles/db/runlist": "c"}, [], ["b"]),              # another role's
    ({"runlist": "b"}, ["--event", "deploy"], ["d"]),                    # bundle event file
    ({"runlist.deploy": "b,c"}, ["--event", "deploy"], ["b", "c"]),      # env event
    ({"runlist.deploy": "b", "roles/web/runlist.deploy": "a,c"}, ["--event", "deploy"],
     ["a", "c"]),                                                        # role event
    ({"roles/web/runlist": "c"}, ["--runlist", "b"], ["b"]),             # flag beats all
])
def test_run_list_precedence(trueup, env, aws, four, params, argv, expected):
    for name, value in params.items():
        ssm_put(aws, f"/trueup/{ENV}/{name}", value)
    out = trueup("run", SOURCE, *argv, env={"TRUEUP_ROLE": "web"})
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in four.iterdir()) == expected
    assert last_report(env)["runlist"] == expected


def test_attribute_tree_types_and_precedence(tmp_path, trueup, env, aws, bucket):
    bundle = write_bundle(tmp_path / "b", {"x": f"""\
        attributes: {{app: {{port: 1, name: default, debug: true}}}}
        resources:
          - file: {tmp_path}/out
            content: "{{{{ attributes.app.port + 1 }}}} {{{{ attributes.app.name }}}} \\
        {{{{ attributes.app.debug }}}} {{{{ attributes.app.hosts | join('+') }}}} \\
        {{{{ attributes.app.db.user }}}}"
        """}, runlist="x", attributes="app: {name: from-bundle-file}\n")
    ssm_put(aws, f"/trueup/{ENV}/attributes/app/port", "8080")
    ssm_put(aws, f"/trueup/{ENV}/attributes/app/debug", "false")
    ssm_put(aws, f"/trueup/{ENV}/attributes/app/hosts", "h1,h2", "StringList")
    ssm_put(aws, f"/trueup/{ENV}/attributes/app/db/user", "svc")
    assert trueup("publish", str(bundle), "--bucket", bucket, "--env", ENV).returncode == 0
    out = trueup("run", SOURCE)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out").read_text() == "8081 from-bundle-file False h1+h2 svc"
    out = trueup("run", SOURCE, "-a", "app.name=flag")
    assert (tmp_path / "out").read_text() == "8081 flag False h1+h2 svc"


def test_recipes_kept_in_parameter_store_without_a_bundle(tmp_path, trueup, env, aws):
    ssm_put(aws, f"/trueup/{ENV}/recipes/motd", f"""\
resources:
  - file: {tmp_path}/motd
    content: "{{{{ attributes.motd }}}}\\n"
""")
    ssm_put(aws, f"/trueup/{ENV}/attributes/motd", "hello from SSM")
    ssm_put(aws, f"/trueup/{ENV}/runlist", "motd")
    out = trueup("run", SOURCE)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "motd").read_text() == "hello from SSM\n"
    assert last_report(env)["aws"]["calls"] == {"ssm:GetParametersByPath": 1}
    ssm_put(aws, f"/trueup/{ENV}/recipes/motd", "resources:\n  - fiel: /x\n")
    bad = trueup("run", SOURCE)
    assert bad.returncode == 1
    assert bad.stderr.startswith("trueup: error: /trueup/test/recipes/motd:2: unknown resource")


@pytest.mark.parametrize("params, message", [
    ({}, "no parameters under /trueup/test in Parameter Store"),
    ({"bundle": "not json"}, "/trueup/test/bundle: not a release pointer"),
    ({"bundle": json.dumps({"uri": "http://x/y", "sha256": "0" * 64})},
     "uri must be s3://bucket/key.tar.gz"),
    ({"bundle": json.dumps({"uri": "s3://b/k.tar.gz", "sha256": "abc"})},
     "sha256 must be 64 hex digits"),
    ({"bundle": json.dumps({"uri": "s3://trueup-bundles/none.tar.gz", "sha256": "0" * 64})},
     "s3 GetObject s3://trueup-bundles/none.tar.gz: NoSuchKey"),
    ({"attributes/a": "1", "attributes/a/b": "2"}, "attribute a is both a value and a tree"),
    ({"recipes/r": "resources: []"}, "no run list"),
])
def test_bad_parameter_store_content(tmp_path, trueup, env, aws, bucket, params, message):
    for name, value in params.items():
        ssm_put(aws, f"/trueup/{ENV}/{name}", value)
    out = trueup("run", SOURCE)
    assert out.returncode == 1, out.stdout
    assert message in out.stderr
    assert out.stderr.count("\n") == 1
    assert "offline" not in out.stderr  # a wrong answer is not an unreachable AWS


def test_recipe_in_both_bundle_and_parameter_store_is_an_error(tmp_path, trueup, aws, four):
    ssm_put(aws, f"/trueup/{ENV}/recipes/a", "resources: []\n")
    out = trueup("run", SOURCE)
    assert out.returncode == 1
    assert "recipe 'a' is both in the bundle and in Parameter Store" in out.stderr


@pytest.mark.parametrize("src, message", [
    ("ssm:trueup", "not a Parameter Store source"),
    ("s3://bucket-only", "not an S3 bundle"),
    ("ftp://host/x", "unknown source scheme 'ftp'"),
])
def test_bad_source_urls(trueup, aws, src, message):
    out = trueup("run", src)
    assert out.returncode == 1 and message in out.stderr
    assert aws.count() == 0


def test_local_tarball_source(tmp_path, trueup, env):
    from agent.sources.archive import pack

    sha = pack(REPO / "recipes", tmp_path / "b.tar.gz")
    out = trueup("run", str(tmp_path / "b.tar.gz"), "-a", f"hello.dir={tmp_path}/h")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "h/motd").exists()
    assert (tmp_path / "state/bundles" / sha).is_dir()


def test_folder_run_never_imports_boto3(tmp_path, env):
    bundle = write_bundle(tmp_path / "b", {"x": f"resources:\n  - file: {tmp_path}/x\n"},
                          runlist="x")
    code = ("import sys; from agent.cli import main; rc = main(['run', sys.argv[1]]); "
            "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'imported'; "
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(bundle)], capture_output=True,
                          text=True, cwd=REPO, env={**env, "PATH": "/usr/bin:/bin",
                                                    "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "x").exists()


def test_splay_sleeps_and_is_reported(tmp_path, trueup, env):
    bundle = write_bundle(tmp_path / "b", {"x": f"resources:\n  - file: {tmp_path}/x\n"},
                          runlist="x")
    out = trueup("run", str(bundle), "--splay", "0.3")
    assert out.returncode == 0, out.stderr
    assert 0 <= last_report(env).get("splay_s", 0) <= 0.3
    bad = trueup("run", str(bundle), "--splay", "-1")
    assert bad.returncode == 1 and "--splay must be 0 or more seconds" in bad.stderr


def test_env_and_role_from_instance_tags(tmp_path, trueup, env, aws, imds):
    imds.tags = {"trueup:env": "staging", "trueup:role": "db"}
    ssm_put(aws, "/trueup/staging/recipes/r", f"resources:\n  - file: {tmp_path}/r\n")
    ssm_put(aws, "/trueup/staging/recipes/s", f"resources:\n  - file: {tmp_path}/s\n")
    ssm_put(aws, "/trueup/staging/runlist", "r")
    ssm_put(aws, "/trueup/staging/roles/db/runlist", "s")
    out = trueup("run")  # no source: ssm:/trueup/<trueup:env tag>
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s").exists() and not (tmp_path / "r").exists()
    assert last_report(env)["origin"]["source"] == "ssm:/trueup/staging"
    assert imds.token_puts == 1


def test_aws_region_alone_names_the_region(tmp_path, trueup, aws, monkeypatch):
    """botocore reads AWS_DEFAULT_REGION only; the advice trueup gives (AWS_REGION) works."""
    ssm_put(aws, "/trueup/regional/recipes/r", f"resources:\n  - file: {tmp_path}/r\n")
    ssm_put(aws, "/trueup/regional/runlist", "r")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    out = trueup("run", "ssm:/trueup/regional", env={"AWS_REGION": aws.region})
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r").exists()
    none = trueup("run", "ssm:/trueup/regional")
    assert none.returncode == 1
    assert "no AWS region: set AWS_REGION" in none.stderr, none.stderr
