"""cron: the job file in <root>/etc/cron.d, written through the rooted System."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.host.system import temp_name
from agent.model import Change
from agent.resources import SpecError
from tests.resources.fakehost import FakeHost

JOB = "/etc/cron.d/rotate"
SPEC = {"cron": "rotate", "schedule": "15  * * * *", "user": "deploy",
        "run": "/usr/local/bin/rotate --app web"}
TEXT = ("# rotate: managed by trueup, local edits are replaced\n"
        "15 * * * * deploy /usr/local/bin/rotate --app web\n")


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    Path(host.system.path("/etc/cron.d")).mkdir(parents=True)
    return host


def test_a_host_without_cron_d_gets_the_folder_and_the_job(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    res = host.resource(SPEC)
    changes = res.check()
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("folder", None, "/etc/cron.d"), ("state", "absent", "present")]
    assert "+15 * * * * deploy /usr/local/bin/rotate --app web" in changes[1].diff

    ran, touched = host.apply(res, changes)
    assert (ran, touched) == ([], {"/etc/cron.d", JOB})
    assert host.system.read(JOB).decode() == TEXT
    assert stat.S_IMODE(host.system.lstat(JOB).st_mode) == 0o644
    assert stat.S_IMODE(host.system.lstat("/etc/cron.d").st_mode) == 0o755
    assert res.check() == []
    assert host.runner.calls == []  # cron runs no command


def test_other_content_is_replaced_and_backed_up(host: FakeHost) -> None:
    host.write(JOB, "0 0 * * * root /bin/false\n")
    res = host.resource(SPEC)
    changes = res.check()
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("content", "26 bytes", f"{len(TEXT)} bytes")]
    assert "-0 0 * * * root /bin/false" in changes[0].diff
    ran, touched = host.apply(res, changes)
    assert touched == {JOB}
    assert host.system.read(JOB).decode() == TEXT
    (saved,) = (host.backups / "etc/cron.d/rotate").iterdir()
    assert saved.read_text() == "0 0 * * * root /bin/false\n"
    assert res.check() == []


def test_a_mode_drift_is_a_chmod_only(host: FakeHost) -> None:
    real = host.write(JOB, TEXT, mode=0o666)
    inode = real.stat().st_ino
    res = host.resource(SPEC)
    changes = res.check()
    assert changes == [Change("mode", "0666", "0644")]
    host.apply(res, changes)
    assert real.stat().st_ino == inode and stat.S_IMODE(real.stat().st_mode) == 0o644
    assert res.check() == []


def test_environment_lines_come_first(host: FakeHost) -> None:
    res = host.resource({**SPEC, "environment": {"MAILTO": "", "PATH": "/usr/bin:/bin"}})
    host.apply(res, res.check())
    assert host.system.read(JOB).decode().splitlines()[1:3] == ["MAILTO=", "PATH=/usr/bin:/bin"]


def test_absent_removes_the_job_and_keeps_a_backup(host: FakeHost) -> None:
    host.write(JOB, TEXT)
    res = host.resource({"cron": "rotate", "state": "absent"})
    changes = res.check()
    assert changes == [Change("state", "present", "absent")]
    ran, touched = host.apply(res, changes)
    assert touched == {JOB} and not host.system.exists(JOB)
    assert res.check() == []
    assert host.resource({"cron": "rotate", "state": "absent"}).check() == []


def test_a_leftover_of_a_killed_run_is_removed(host: FakeHost) -> None:
    host.write(JOB, TEXT)
    host.write(temp_name(JOB), "half")
    res = host.resource(SPEC)
    changes = res.check()
    assert changes == [Change("leftover", temp_name(JOB), None)]
    host.apply(res, changes)
    assert not os.path.lexists(host.system.path(temp_name(JOB)))
    assert res.check() == []


@pytest.mark.parametrize(("spec", "error"), [
    ({"cron": "my.job", "schedule": "@daily", "run": "/bin/true"}, ValueError),
    ({"cron": "job", "schedule": "* * *", "run": "/bin/true"}, SpecError),
    ({"cron": "job", "schedule": "@daily @hourly", "run": "/bin/true"}, SpecError),
    ({"cron": "job", "schedule": "@daily", "run": "a\nb"}, SpecError),
    ({"cron": "job", "schedule": "@daily", "run": "x", "user": "Root Me"}, SpecError),
    ({"cron": "job", "schedule": "@daily", "run": "x", "environment": {"A": "1\n* * * * *"}},
     SpecError),
])
def test_bad_jobs_are_refused(host: FakeHost, spec: dict, error: type) -> None:
    with pytest.raises(error):
        host.resource(spec)
