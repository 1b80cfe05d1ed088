"""The kinds real roles need, proven on one booted Debian 12 host (issue 12's "Done when").

One host (private network, local apt repository, trueup from the wheel) serves every test
here; each test converges its own recipe, so none depends on another having run:

* user: a system account with ``home: /`` and its own primary group among ``groups``
  converges once, then 0 changes; ``/`` stays root:root 0755;
* apt_repository: a local *signed* flat repository (a throw-away gpg key, InRelease signed
  by it) is added with its key, the package index is refreshed once, its package installs;
* download and archive from an HTTP server started inside the host: the right sha256
  converges, a wrong one fails the resource and writes nothing;
* pip: a virtualenv created and a wheel installed offline from a local folder;
* systemd_unit: two new units and a changed drop-in cost one daemon-reload, and the drop-in's
  running service is restarted exactly once (journal-counted);
* block: every byte outside the managed block is kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from agenthost import (
    BUNDLE,
    diagnosed_agent_host,
    journal_cursor,
    trueup,
    unit_events,
    write_recipe,
)
from testhost import BootedHost
from wheels import make_wheel

pytestmark = pytest.mark.host

SITE_PORT = 8765


@pytest.fixture(scope="module")
def host(testhost_image: Path, local_repo: Path, trueup_wheel: Path,
         request: pytest.FixtureRequest) -> Iterator[BootedHost]:
    """The module's host (this name shadows testinfra's ``host`` fixture here)."""
    yield from diagnosed_agent_host(testhost_image, local_repo, trueup_wheel, request,
                                    recipes=False)


def converge(host: BootedHost, name: str, recipe: dict, files: dict[str, bytes] | None = None,
             *, first: int = 2) -> dict:
    """Write recipe ``name``, run it twice: the first run exits ``first``, the second 0."""
    write_recipe(host, name, recipe)
    for rel, data in (files or {}).items():
        host.write_file(f"{BUNDLE}/{name}/files/{rel}", data)
    args = (BUNDLE, "--runlist", name, "--detailed-exitcodes")
    done = trueup(host, "run", *args)
    errors = [(r["resource"], r.get("error")) for r in (done.report or {}).get("resources", [])
              if r.get("error")]
    assert done.returncode == first, (errors, str(done)[-3000:])
    if first in (0, 2):
        again = trueup(host, "run", *args)
        assert again.returncode == 0, again
        assert not again.changed(), again.changed()
    return done.report


def root_stat(host: BootedHost) -> str:
    return host.run(["stat", "-c", "%U:%G %a", "/"]).stdout.strip()


# --- user -------------------------------------------------------------------------------------

def test_a_system_user_with_home_root_never_owns_root(host: BootedHost) -> None:
    recipe = {"resources": [{"user": "node-exp", "system": True, "home": "/",
                             "shell": "/usr/sbin/nologin", "groups": ["node-exp", "adm"]}]}
    converge(host, "svcuser", recipe)
    assert root_stat(host) == "root:root 755"
    entry = host.run(["getent", "passwd", "node-exp"]).stdout.strip().split(":")
    assert entry[5:] == ["/", "/usr/sbin/nologin"]
    groups = host.run(["id", "-Gn", "node-exp"]).stdout.split()
    assert sorted(groups) == ["adm", "node-exp"]


# --- apt_repository -----------------------------------------------------------------------------

def _signed_repo(work: Path) -> tuple[Path, bytes]:
    """A flat repository with one package, InRelease signed by a fresh key; and that key."""
    gnupg = work / "gnupg"
    gnupg.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(gnupg)}

    def gpg(*args: str) -> bytes:
        return subprocess.run(["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback",
                               "--passphrase", "", *args], env=env, check=True,
                              capture_output=True, timeout=120).stdout

    gpg("--quick-gen-key", "trueup test repo <repo@trueup.invalid>", "ed25519", "sign", "never")
    key = gpg("--export")
    pkg = work / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: trueup-signed-demo\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: trueup tests <t@trueup.invalid>\nDescription: signed repository demo\n")
    (pkg / "usr/share/trueup-signed-demo").mkdir(parents=True)
    (pkg / "usr/share/trueup-signed-demo/hello").write_text("signed\n")
    repo = work / "repo"
    repo.mkdir()
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(pkg),
                    str(repo / "trueup-signed-demo_1.0_all.deb")], check=True,
                   capture_output=True, timeout=120)
    packages = subprocess.run(["dpkg-scanpackages", "-m", "."], cwd=repo, check=True,
                              capture_output=True, timeout=120).stdout
    (repo / "Packages").write_bytes(packages)
    release = ("Origin: trueup-test\nLabel: trueup-test\nSuite: stable\nCodename: stable\n"
               "Date: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n"
               f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n")
    (repo / "Release").write_text(release)
    gpg("--clearsign", "--output", str(repo / "InRelease"), str(repo / "Release"))
    return repo, key


def test_a_signed_repository_and_its_package(host: BootedHost, tmp_path: Path) -> None:
    repo, key = _signed_repo(tmp_path)
    host.put(repo, "/srv/signed")
    recipe = {"resources": [
        {"apt_repository": "signed-demo", "uri": "file:/srv/signed", "suites": ["./"],
         "key": "signed-demo.gpg"},
        {"package": "trueup-signed-demo"},
    ]}
    report = converge(host, "signedrepo", recipe, {"signed-demo.gpg": key})
    sources = host.read_file("/etc/apt/sources.list.d/signed-demo.sources").decode()
    assert "Signed-By: /etc/apt/keyrings/signed-demo.gpg\n" in sources
    assert "Trusted" not in sources
    pkg = next(r for r in report["resources"] if r["resource"] == "package:trueup-signed-demo")
    updates = [c for c in pkg["changes"] if c["field"] == "update"]
    assert len(updates) == 1 and updates[0]["before"] == "a repository changed", pkg
    assert host.read_file("/usr/share/trueup-signed-demo/hello") == b"signed\n"
    repo_res = next(r for r in report["resources"]
                    if r["resource"] == "apt_repository:signed-demo")
    assert all(c["field"] != "update" for c in repo_res["changes"])  # refreshed once, by apt


def test_a_repository_with_the_wrong_key_fails(host: BootedHost, tmp_path: Path) -> None:
    repo, _key = _signed_repo(tmp_path / "a")
    _other, wrong = _signed_repo(tmp_path / "b")
    host.put(repo, "/srv/wrongkey")
    recipe = {"resources": [{"apt_repository": "wrong-key", "uri": "file:/srv/wrongkey",
                             "suites": ["./"], "key": "wrong.gpg"}]}
    try:
        report = converge(host, "wrongkey", recipe, {"wrong.gpg": wrong}, first=4)
    finally:  # the other tests need a working apt-get update
        host.run(["rm", "-f", "/etc/apt/sources.list.d/wrong-key.sources"])
    (res,) = report["resources"]
    assert res["status"] == "failed" and "apt-get update" in res["error"], res


# --- download and archive -----------------------------------------------------------------------

TOOL = b"#!/bin/sh\necho tool\n" * 50


def _tarball() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data, mode in (("exporter-1.0/exporter", TOOL, 0o755),
                                 ("exporter-1.0/LICENSE", b"license\n", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


TARBALL = _tarball()  # once: gzip stamps the time, so each call differs


@pytest.fixture(scope="module")
def site(host: BootedHost) -> str:
    """An HTTP server inside the host serving /srv/site; its base URL."""
    host.write_file("/srv/site/tool", TOOL)
    host.write_file("/srv/site/exporter.tar.gz", TARBALL)
    host.run(["systemd-run", "--unit=trueup-site", "--property=Type=exec", "python3", "-m",
              "http.server", str(SITE_PORT), "--bind", "127.0.0.1", "--directory", "/srv/site"])
    host.run(["python3", "-c", "import socket, time\nfor _ in range(100):\n    try:\n"
              f"        socket.create_connection(('127.0.0.1', {SITE_PORT})); break\n"
              "    except OSError: time.sleep(0.1)\n"])
    return f"http://127.0.0.1:{SITE_PORT}"


def test_download_and_archive_with_the_right_sha256(host: BootedHost, site: str) -> None:
    tar_sha = hashlib.sha256(TARBALL).hexdigest()
    recipe = {"resources": [
        {"download": "/usr/local/bin/tool", "url": f"{site}/tool",
         "sha256": hashlib.sha256(TOOL).hexdigest(), "mode": "0755"},
        {"archive": "/opt/exporter", "source": f"{site}/exporter.tar.gz", "sha256": tar_sha,
         "strip_components": 1, "creates": "/opt/exporter/exporter", "owner": "nobody"},
    ]}
    converge(host, "fetched", recipe)
    assert host.run(["/usr/local/bin/tool"]).stdout.startswith("tool\n")
    assert host.run(["stat", "-c", "%U %a", "/opt/exporter/exporter"]).stdout.split() == [
        "nobody", "755"]
    assert host.read_file("/opt/exporter/LICENSE") == b"license\n"


def test_download_and_archive_with_a_wrong_sha256_write_nothing(host: BootedHost,
                                                                site: str) -> None:
    recipe = {"resources": [
        {"download": "/usr/local/bin/badtool", "url": f"{site}/tool", "sha256": "0" * 64},
        {"archive": "/opt/badexporter", "source": f"{site}/exporter.tar.gz",
         "sha256": "1" * 64, "creates": "/opt/badexporter/exporter"},
    ]}
    report = converge(host, "badsha", recipe, first=4)
    for res in report["resources"]:
        assert res["status"] == "failed" and "sha256 is" in res["error"], res
    left = host.run(["sh", "-c", "ls -a /usr/local/bin /opt; ls /tmp"]).stdout
    assert "badtool" not in left and "badexporter" not in left, left
    assert "trueup-archive" not in left, left


# --- pip ----------------------------------------------------------------------------------------

def test_pip_into_a_new_virtualenv_offline(host: BootedHost, tmp_path: Path) -> None:
    make_wheel(tmp_path / "wheels", "trueup-demo", "1.0")
    make_wheel(tmp_path / "wheels", "trueup-demo-dep", "0.1")
    host.put(tmp_path / "wheels", "/srv/wheels")
    recipe = {"resources": [{"pip": "demo", "names": ["trueup-demo==1.0", "trueup-demo-dep"],
                             "virtualenv": "/opt/demo/venv", "find_links": "/srv/wheels",
                             "no_index": True}]}
    converge(host, "pipdemo", recipe)
    out = host.run(["/opt/demo/venv/bin/python", "-c",
                    "import trueup_demo, trueup_demo_dep; print(trueup_demo.VERSION)"]).stdout
    assert out.strip() == "1.0"


# --- systemd_unit -------------------------------------------------------------------------------

def _reloads(host: BootedHost, after: str) -> int:
    host.run(["journalctl", "--sync"])
    out = host.run(["journalctl", f"--after-cursor={after}", "-o", "json", "--no-pager"],
                   timeout=60).stdout
    return sum(1 for line in out.splitlines()
               if json.loads(line).get("_PID") == "1"
               and json.loads(line).get("MESSAGE") == "Reloading.")


def test_units_and_a_drop_in_one_reload_one_restart(host: BootedHost) -> None:
    sleeper = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"
    converge(host, "demounit", {"resources": [
        {"systemd_unit": "trueup-demo.service", "content": sleeper, "enabled": True,
         "state": "running"}]})
    assert host.run(["systemctl", "is-active", "trueup-demo"]).stdout.strip() == "active"

    cursor = journal_cursor(host)
    converge(host, "dropin", {"resources": [
        {"systemd_unit": "trueup-a.service", "content": sleeper},
        {"systemd_unit": "trueup-b.service", "content": sleeper},
        {"systemd_unit": "trueup-demo.service.d/env.conf",
         "content": "[Service]\nEnvironment=GREETING=hello\n"},
    ]})
    events = unit_events(host, "trueup-demo.service", cursor)
    assert events.count("started") == 1 and events.count("stopped") == 1, events
    assert _reloads(host, cursor) == 1
    env = host.run(["systemctl", "show", "-p", "Environment", "--value", "trueup-demo"]).stdout
    assert "GREETING=hello" in env
    assert host.run(["systemctl", "show", "-p", "NeedDaemonReload", "--value",
                     "trueup-a.service"]).stdout.strip() == "no"


# --- block --------------------------------------------------------------------------------------

def test_block_keeps_every_other_byte(host: BootedHost) -> None:
    before = b"# hosts\r\n127.0.0.1 localhost\r\n\xff\x00binary\x0c\nlast line, no newline"
    host.write_file("/etc/trueup-block.conf", before)
    converge(host, "blockdemo", {"resources": [
        {"block": "cluster", "path": "/etc/trueup-block.conf",
         "content": "10.0.0.1 db1\n10.0.0.2 db2\n", "insert_after": "^127\\."}]})
    after = host.read_file("/etc/trueup-block.conf")
    assert after == (b"# hosts\r\n127.0.0.1 localhost\r\n# BEGIN TRUEUP MANAGED BLOCK cluster\r\n"
                     b"10.0.0.1 db1\r\n10.0.0.2 db2\r\n# END TRUEUP MANAGED BLOCK cluster\r\n"
                     b"\xff\x00binary\x0c\nlast line, no newline")
