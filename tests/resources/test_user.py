"""user: planned useradd/usermod/userdel for pre-filled users, and ~/.ssh through the seam.

The user's uid and gid are the test process's own, so the chown of ~/.ssh works without
root in the scratch root.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pyinfra.facts.files import Directory
from pyinfra.facts.server import Groups, Os, Users, Which

from agent.model import Change
from agent.resources import SpecError
from tests.resources.fakehost import FakeHost, shell

UID, GID = os.getuid(), os.getgid()
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample deploy@laptop"
KEY2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther deploy@desk"
ROOT_USER = "root:x:0:0:root:/root:/bin/bash|root|root||*"
GROUPS = "root:x:0:\nsudo:x:27:\ndeploy:x:2001:\n"
HOME = "/home/deploy"


def users(host: FakeHost, *lines: str) -> None:
    """The Users fact: passwd entry|primary group|all groups|lastlog|password, per user."""
    host.fact(Users, "\n".join([ROOT_USER, *lines]) + "\n")


def deploy(uid: int = UID, gid: int = GID, shell_: str = "/bin/sh",
           groups: str = "deploy") -> str:
    return f"deploy:x:{uid}:{gid}::{HOME}:{shell_}|deploy|{groups}||!"


def home_dir(host: FakeHost, exists: bool = True) -> None:
    """The Directory fact of the home folder (pyinfra's files.directory reads it)."""
    out = f"user=deploy group=deploy mode=drwxr-xr-x atime=0 mtime=0 ctime=0 size=4096 " \
          f"'{HOME}'\n" if exists else ""
    host.fact(Directory, out, path=HOME)
    if exists:
        Path(host.system.path(HOME)).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    host.fact(Os, "Linux\n")
    host.fact(Groups, GROUPS)
    host.fact(Which, "/usr/sbin/useradd\n", command="useradd")
    host.fact(Which, "/usr/sbin/usermod\n", command="usermod")
    host.fact(Which, "/usr/sbin/userdel\n", command="userdel")
    users(host)
    home_dir(host, exists=False)
    return host


def keys_on_disk(host: FakeHost, *keys: str, folder_mode: int = 0o700,
                 file_mode: int = 0o600) -> None:
    folder = Path(host.system.path(f"{HOME}/.ssh"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(folder_mode)
    (folder / "authorized_keys").write_text("".join(k + "\n" for k in keys))
    (folder / "authorized_keys").chmod(file_mode)


def test_a_new_user_is_added_and_its_keys_written(host: FakeHost) -> None:
    res = host.resource({"user": "deploy", "shell": "/bin/sh", "uid": 2743, "ssh_keys": [KEY]})
    changes = res.check()
    # a group named like the user exists: useradd is told to use it
    useradd = "useradd -d /home/deploy -s /bin/sh -g deploy --uid 2743 -m deploy"
    assert changes == [
        Change("command", None, useradd),
        Change("command", None, "mkdir -p /home/deploy"),
        Change("command", None, "chown deploy:deploy /home/deploy"),
        Change("ssh_dir", None, "/home/deploy/.ssh 0700 deploy"),
        Change("ssh_keys", None, "1 keys"),
    ]

    def added() -> None:  # what useradd -m does to the host
        users(host, deploy())
        home_dir(host)

    host.on(useradd, then=added)
    ran, touched = host.apply(res, changes)
    assert ran == [shell(useradd), shell("mkdir -p /home/deploy"),
                   shell("chown deploy:deploy /home/deploy")]
    # the fake useradd made /home/deploy; apply itself wrote only ~/.ssh
    assert touched == {"/home", HOME, f"{HOME}/.ssh", f"{HOME}/.ssh/authorized_keys"}
    folder = host.system.lstat(f"{HOME}/.ssh")
    assert stat.S_IMODE(folder.st_mode) == 0o700 and (folder.st_uid, folder.st_gid) == (UID, GID)
    keys = host.system.lstat(f"{HOME}/.ssh/authorized_keys")
    assert stat.S_IMODE(keys.st_mode) == 0o600
    assert host.system.read(f"{HOME}/.ssh/authorized_keys") == (KEY + "\n").encode()
    assert res.check() == []


def test_check_reports_the_chmod_of_ssh_and_its_keys(host: FakeHost) -> None:
    users(host, deploy())
    home_dir(host)
    keys_on_disk(host, KEY, folder_mode=0o755, file_mode=0o644)
    res = host.resource({"user": "deploy", "ssh_keys": [KEY]})
    changes = res.check()
    assert changes == [Change("ssh_dir_mode", "0755", "0700"),
                       Change("ssh_keys_mode", "0644", "0600")]
    ran, touched = host.apply(res, changes)
    assert ran == []
    assert touched == {f"{HOME}/.ssh", f"{HOME}/.ssh/authorized_keys"}
    assert res.check() == []


def test_check_reports_the_chown_of_ssh_and_its_keys(host: FakeHost) -> None:
    users(host, deploy(uid=UID + 1))  # the folder and file are not the user's
    home_dir(host)
    keys_on_disk(host, KEY)
    res = host.resource({"user": "deploy", "ssh_keys": [KEY]})
    assert res.check() == [Change("ssh_dir_owner", f"{UID}:{GID}", f"{UID + 1}:{GID}"),
                           Change("ssh_keys_owner", f"{UID}:{GID}", f"{UID + 1}:{GID}")]


def test_other_keys_are_replaced_by_exactly_the_declared_ones(host: FakeHost) -> None:
    users(host, deploy())
    home_dir(host)
    keys_on_disk(host, KEY, "ssh-rsa AAAAB3Nza old@host")
    res = host.resource({"user": "deploy", "ssh_keys": [KEY, KEY2]})
    changes = res.check()
    assert changes == [Change("ssh_keys", "2 keys", "2 keys")]
    ran, touched = host.apply(res, changes)
    assert (ran, touched) == ([], {f"{HOME}/.ssh/authorized_keys"})
    assert host.system.read(f"{HOME}/.ssh/authorized_keys").decode() == f"{KEY}\n{KEY2}\n"
    assert res.check() == []


def test_a_converged_user_plans_nothing(host: FakeHost) -> None:
    users(host, deploy())
    home_dir(host)
    keys_on_disk(host, KEY)
    assert host.resource({"user": "deploy", "shell": "/bin/sh", "ssh_keys": [KEY]}).check() == []


def test_shell_and_groups_are_changed_with_usermod(host: FakeHost) -> None:
    users(host, deploy())
    home_dir(host)
    res = host.resource({"user": "deploy", "shell": "/bin/bash", "groups": ["sudo"]})
    changes = res.check()
    assert changes == [Change("command", None, "usermod -s /bin/bash -G sudo deploy")]
    host.on("usermod -s /bin/bash -G sudo deploy",
            then=lambda: users(host, deploy(shell_="/bin/bash", groups="deploy sudo")))
    host.apply(res, changes)
    assert res.check() == []


def test_absent_deletes_the_user(host: FakeHost) -> None:
    users(host, deploy())
    res = host.resource({"user": "deploy", "state": "absent"})
    changes = res.check()
    assert changes == [Change("command", None, "userdel deploy")]
    host.on("userdel deploy", then=lambda: users(host))
    host.apply(res, changes)
    assert res.check() == []


def test_ssh_keys_need_a_present_user(host: FakeHost) -> None:
    with pytest.raises(SpecError):
        host.resource({"user": "deploy", "state": "absent", "ssh_keys": [KEY]})


def test_a_symlinked_keys_file_is_refused(host: FakeHost) -> None:
    from agent.errors import ResourceError

    users(host, deploy())
    home_dir(host)
    keys_on_disk(host, KEY)
    real = Path(host.system.path(f"{HOME}/.ssh/authorized_keys"))
    real.unlink()
    real.symlink_to("/etc/shadow")
    with pytest.raises(ResourceError, match="not a regular file"):
        host.resource({"user": "deploy", "ssh_keys": [KEY]}).check()


# --- homes trueup must not create or own, groups with the primary group, append ------------

NODE = "node-exp"


def node_user(groups: str = NODE, home: str = "/") -> str:
    return f"{NODE}:x:998:998::{home}:/usr/sbin/nologin|{NODE}|{groups}||!"


def test_a_system_folder_home_is_never_created_or_chowned(host: FakeHost) -> None:
    res = host.resource({"user": NODE, "system": True, "home": "/",
                         "shell": "/usr/sbin/nologin", "manage_home": True})
    cmds = [c.after for c in res.check()]
    assert cmds == [f"useradd -d / -s /usr/sbin/nologin -r -M {NODE}"]
    users(host, node_user())
    host.facts.forget()
    assert res.check() == []  # no chown of / once the user exists either


@pytest.mark.parametrize("home", ["/usr", "/var/", "/etc", "/bin", "/sbin", "/nonexistent",
                                  "/var/lib", "/usr/local"])
def test_other_system_folders_are_left_alone_too(host: FakeHost, home: str) -> None:
    users(host, node_user(home=home.rstrip("/")))
    res = host.resource({"user": NODE, "home": home.rstrip("/")})
    assert res.check() == []


def test_manage_home_false_neither_creates_nor_owns_the_home(host: FakeHost) -> None:
    res = host.resource({"user": "deploy", "home": "/srv/deploy", "manage_home": False})
    assert [c.after for c in res.check()] == ["useradd -d /srv/deploy -g deploy -M deploy"]
    users(host, "deploy:x:2001:2001::/srv/deploy:/bin/sh|deploy|deploy||!")
    host.facts.forget()
    assert res.check() == []


def test_a_service_home_below_var_lib_is_still_created(host: FakeHost) -> None:
    res = host.resource({"user": "app", "system": True, "home": "/var/lib/app"})
    assert [c.after for c in res.check()][0] == "useradd -d /var/lib/app -r -m app"


def test_groups_may_list_the_primary_group(host: FakeHost) -> None:
    res = host.resource({"user": NODE, "system": True, "home": "/",
                         "groups": [NODE, "sudo"]})
    assert [c.after for c in res.check()] == [f"useradd -d / -G sudo -r -M {NODE}"]
    users(host, node_user(groups=f"{NODE} sudo"))
    host.facts.forget()
    assert res.check() == []


def test_groups_of_only_the_primary_group_remove_the_others(host: FakeHost) -> None:
    users(host, node_user(groups=f"{NODE} sudo"))
    res = host.resource({"user": NODE, "home": "/", "groups": [NODE]})
    changes = res.check()
    assert [c.after for c in changes] == [f"usermod -G '' {NODE}"]
    users(host, node_user())
    host.facts.forget()
    assert res.check() == []


def test_the_declared_primary_group_is_dropped_from_groups(host: FakeHost) -> None:
    users(host, deploy(groups="deploy sudo"))
    home_dir(host)
    res = host.resource({"user": "deploy", "group": "deploy", "groups": ["deploy", "sudo"]})
    assert res.check() == []


def test_append_adds_groups_and_keeps_the_others(host: FakeHost) -> None:
    users(host, deploy(groups="deploy adm"))
    home_dir(host)
    res = host.resource({"user": "deploy", "groups": ["sudo"], "append": True})
    changes = res.check()
    assert [c.after for c in changes] == ["usermod -a -G sudo deploy"]
    users(host, deploy(groups="deploy adm sudo"))
    host.facts.forget()
    assert res.check() == []
