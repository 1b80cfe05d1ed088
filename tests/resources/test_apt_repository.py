"""apt_repository: the .sources file and keyring through the rooted seam; one index refresh."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import SpecError
from tests.resources.fakehost import FakeHost

KEY = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZexample\n-----END PGP PUBLIC KEY BLOCK-----\n"
SOURCES = "/etc/apt/sources.list.d/vendor.sources"


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    (host.root / "etc" / "apt").mkdir()
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "vendor.asc").write_bytes(KEY)
    return host


def spec(**extra: object) -> dict:
    return {"apt_repository": "vendor", "uri": "https://repo.example/debian",
            "suites": ["bookworm"], "components": ["main", "extra"], **extra}


def test_sources_and_key_from_files_then_one_update(host: FakeHost) -> None:
    res = host.resource(spec(key="vendor.asc", architectures="amd64"))
    changes = res.check()
    assert [c.field for c in changes] == ["key", "sources"]
    ran, touched = host.apply(res, changes)
    assert ran == []  # the refresh waits for a package, or the end of the run
    assert touched == {"/etc/apt/keyrings", "/etc/apt/keyrings/vendor.asc",
                       "/etc/apt/sources.list.d", SOURCES}
    assert host.system.read(SOURCES).decode() == (
        "# managed by trueup\nTypes: deb\nURIs: https://repo.example/debian\n"
        "Suites: bookworm\nComponents: main extra\nArchitectures: amd64\n"
        "Signed-By: /etc/apt/keyrings/vendor.asc\n")
    assert host.system.read("/etc/apt/keyrings/vendor.asc") == KEY
    assert res.check() == []
    assert res.settle() == [Change("update", None, "apt-get update (once this run)")]
    assert res.settle() == []
    assert host.runner.calls[-1] == ["apt-get", "-q", "update"]


def test_a_key_from_a_url_is_fetched_only_when_it_differs(host: FakeHost,
                                                         tmp_path: Path) -> None:
    served = tmp_path / "served.gpg"
    served.write_bytes(b"\x99binary key")
    sha = hashlib.sha256(b"\x99binary key").hexdigest()
    res = host.resource(spec(key=f"file://{served}", key_sha256=sha))
    res.apply(res.check())
    assert host.system.read("/etc/apt/keyrings/vendor.gpg") == b"\x99binary key"
    served.write_bytes(b"changed upstream")  # not fetched again: the keyring is that key
    assert res.check() == []


def test_a_wrong_key_sha256_writes_nothing(host: FakeHost, tmp_path: Path) -> None:
    served = tmp_path / "k.gpg"
    served.write_bytes(b"key")
    res = host.resource(spec(key=f"file://{served}", key_sha256="0" * 64))
    with pytest.raises(ResourceError, match="sha256"):
        res.apply(res.check())
    assert not host.system.exists("/etc/apt/keyrings/vendor.gpg")
    assert not host.system.exists(SOURCES)


def test_a_package_after_a_changed_repository_refreshes(host: FakeHost) -> None:
    res = host.resource(spec(trusted=True))
    res.apply(res.check())
    assert "apt-update" in host.facts.pending


def test_absent_removes_sources_and_keyring(host: FakeHost) -> None:
    present = host.resource(spec(key="vendor.asc"))
    present.apply(present.check())
    host.facts.pending.clear()
    gone = host.resource({"apt_repository": "vendor", "state": "absent"})
    changes = gone.check()
    assert [c.field for c in changes] == ["state"]
    _, touched = host.apply(gone, changes)
    assert touched == {SOURCES, "/etc/apt/keyrings/vendor.asc"}
    assert gone.check() == []


@pytest.mark.parametrize(("extra", "field"), [
    ({"uri": "https://x y"}, "uri"),
    ({"key": "https://x/k.asc"}, "key_sha256"),
    ({"key": "vendor.asc", "trusted": True}, "trusted"),
    ({"types": ["rpm"]}, "types"),
    ({"key": "../../etc/shadow"}, "key"),
    ({"key": "vendor.asc", "key_sha256": "1" * 64}, "key_sha256"),
])
def test_bad_specs(host: FakeHost, extra: dict, field: str) -> None:
    with pytest.raises(SpecError) as err:
        host.resource(spec(**extra))
    assert err.value.field == field
