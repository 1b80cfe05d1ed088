"""user: a local user, its groups and its authorized SSH keys."""

from __future__ import annotations

import os
import stat

from agent.errors import ResourceError
from agent.host.pyinfra_bridge import plan, run_commands
from agent.model import Change
from agent.resources import STRLIST, Resource, SpecError, f

# Folders a user's home may point at that are never created nor chowned (service accounts)
SYSTEM_HOMES = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt",
    "/nonexistent", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",
    "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/usr/share", "/var",
    "/var/backups", "/var/cache", "/var/lib", "/var/log", "/var/mail", "/var/run",
    "/var/spool", "/var/tmp", "/var/www",
})


class User(Resource, kind="user"):
    """A local user; pyinfra plans useradd/usermod/userdel.

    ``groups`` is the exact list of supplementary groups (``append: true``: these are
    added, others kept); the user's primary group may be among them. ``ssh_keys`` is the
    exact content of ``~/.ssh/authorized_keys`` (one key per item): keys not
    listed are removed. ``~/.ssh`` is kept 0700 and the keys file 0600, both owned
    by the user; check lists each folder creation, chmod and chown apply makes.

    The home folder is created and owned by the user unless ``manage_home: false``.
    A home that is a system folder (``/``, ``/usr``, ``/var``, ``/etc``, ``/bin``,
    ``/nonexistent`` ... see SYSTEM_HOMES) is never created nor chowned, whatever the
    flag: a service account with ``home: /`` does not come to own ``/``.

    Spec:
        user (str): the login name.
        uid (int): a fixed user id.
        group (str): primary group (must exist).
        groups (list): supplementary groups, exactly (the primary group may be listed).
        append (bool): add ``groups``, keep the user's other groups.
        home (str): home folder (default /home/<name>; created).
        manage_home (bool): create the home and make it the user's (default true).
        shell (str): login shell.
        system (bool): a system user (no home unless ``home`` is given).
        ssh_keys (list): authorized SSH public keys.
        state (str): present (default) or absent.

    Example:
        - user: deploy
          uid: 2001
          group: deploy
          groups: [sudo]
          shell: /bin/bash
          ssh_keys: ["ssh-ed25519 AAAAC3Nza... deploy@laptop"]
          requires: [group:deploy]
        - user: node-exp
          system: true
          home: /
          shell: /usr/sbin/nologin
          groups: [node-exp, adm]
    """

    FIELDS = {
        "uid": f(int, None, "user id"),
        "group": f(str, None, "primary group"),
        "groups": f(STRLIST, None, "supplementary groups, exactly (primary may be listed)"),
        "append": f(bool, False, "add groups, keep the user's other groups"),
        "home": f(str, None, "home folder"),
        "manage_home": f(bool, True, "create the home and make it the user's (never for "
                         "a system folder such as /)"),
        "shell": f(str, None, "login shell"),
        "system": f(bool, False, "a system user"),
        "ssh_keys": f(STRLIST, None, "authorized SSH public keys, exactly"),
    }
    SYSTEM = True
    EXAMPLES = [{"user": "trueup-example", "uid": 2743, "shell": "/bin/sh",
                 "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample example@test"]}]
    SENSITIVE_EXAMPLE = {"user": "trueup-example", "home": "/home/trueup-{canary}",
                         "sensitive": True}

    def validate(self) -> None:
        home = self.spec.get("home")
        if home is not None and not os.path.isabs(home):
            raise SpecError("home", f"home must be an absolute path, not {home!r}")
        keys = self.spec.get("ssh_keys")
        self.keys = None if keys is None else ([keys] if isinstance(keys, str) else list(keys))
        groups = self.spec.get("groups")
        self.groups = None if groups is None else (
            [groups] if isinstance(groups, str) else list(groups))
        if self.keys is not None and self.state == "absent":
            raise SpecError("ssh_keys", "ssh_keys make no sense for an absent user")

    def _plan(self) -> list[str]:
        from pyinfra.facts.server import Users
        from pyinfra.operations import server

        system = bool(self.spec.get("system"))
        home = self.spec.get("home")
        manage = (self.spec.get("manage_home") and (not system or home is not None)
                  and os.path.normpath(home or f"/home/{self.name}") not in SYSTEM_HOMES)
        existing = self.ctx.fact_host.get_fact(Users).get(self.name)
        groups, clear = self._supplementary(existing)
        commands = plan(server.user, self.ctx.fact_host, user=self.name,
                        present=self.state == "present", home=home,
                        shell=self.spec.get("shell"), group=self.spec.get("group"),
                        groups=groups, append=bool(self.spec.get("append")),
                        uid=self.spec.get("uid"), system=system, create_home=manage,
                        ensure_home=manage)
        if clear:
            commands.insert(0, f"usermod -G '' {self.name}")
        return commands

    def _supplementary(self, existing: dict | None) -> tuple[list[str] | None, bool]:
        """``groups`` without the primary group, and whether every other group must go
        (exact ``groups`` that list only the primary group, while the user has others)."""
        if self.groups is None or self.state == "absent":
            return self.groups, False
        primary = self.spec.get("group") or (existing["group"] if existing else self.name)
        groups = [g for g in self.groups if g != primary]
        clear = (not groups and not self.spec.get("append") and existing is not None
                 and bool(existing["groups"]))
        return groups, clear

    def _account(self) -> tuple[str, int, int] | None:
        """The user's home (the declared one first), uid and gid; None if there is no user."""
        from pyinfra.facts.server import Users

        entry = self.ctx.fact_host.get_fact(Users).get(self.name)
        if entry is None:
            return None
        return self._home(entry["home"]), entry["uid"], entry["gid"]

    def _home(self, current: str | None = None) -> str:
        return self.spec.get("home") or current or f"/home/{self.name}"

    def _keys_text(self) -> bytes:
        return "".join(k.strip() + "\n" for k in self.keys).encode()

    def _keys_changes(self) -> list[Change]:
        """What ~/.ssh and ~/.ssh/authorized_keys need: every change _write_keys makes."""
        if self.keys is None or self.state == "absent":
            return []
        account = self._account()
        if account is None:  # useradd in this apply makes it: its ids are not known yet
            home, owner = self._home(), self.name
        else:
            home, owner = account[0], f"{account[1]}:{account[2]}"
        folder, path = f"{home}/.ssh", f"{home}/.ssh/authorized_keys"
        folder_st, key_st = self._lstat(folder), self._lstat(path)
        want = f"{len(self.keys)} keys"
        changes = []
        if folder_st is None:
            changes.append(Change("ssh_dir", None, f"{folder} 0700 {owner}"))
        else:
            if not stat.S_ISDIR(folder_st.st_mode):
                raise ResourceError(f"{folder} is not a directory")
            changes += _mode_owner("ssh_dir", folder_st, 0o700, owner)
        if key_st is None:
            changes.append(Change("ssh_keys", None, want))
            return changes
        if not stat.S_ISREG(key_st.st_mode):
            raise ResourceError(f"{path} is not a regular file")
        current = self.ctx.system.read(path)
        if current != self._keys_text():
            changes.append(Change("ssh_keys", f"{len(current.splitlines())} keys", want))
        else:  # a rewrite fixes mode and owner too; otherwise each is fixed on its own
            changes += _mode_owner("ssh_keys", key_st, 0o600, owner)
        return changes

    def _lstat(self, path: str) -> os.stat_result | None:
        try:
            return self.ctx.system.lstat(path)
        except FileNotFoundError:
            return None

    def check(self) -> list[Change]:
        return [Change("command", None, cmd) for cmd in self._plan()] + self._keys_changes()

    def apply(self, changes: list[Change]) -> None:
        from pyinfra.facts.files import Directory
        from pyinfra.facts.server import Groups, Users

        host = self.ctx.fact_host
        try:
            run_commands(host, [c.after for c in changes if c.field == "command"])
        finally:
            host.forget(Users, Groups, Directory)  # what useradd/usermod/userdel change
        fields = {c.field for c in changes}
        if fields & {"ssh_dir", "ssh_dir_mode", "ssh_dir_owner", "ssh_keys", "ssh_keys_mode",
                     "ssh_keys_owner"}:
            self._write_keys(fields)

    def _write_keys(self, fields: set[str]) -> None:
        account = self._account()
        if account is None:
            raise ResourceError(f"user {self.name} does not exist, cannot write its SSH keys")
        home, uid, gid = account
        folder, path = f"{home}/.ssh", f"{home}/.ssh/authorized_keys"
        system = self.ctx.system
        if "ssh_dir" in fields:
            system.mkdir(folder, 0o700, uid, gid)
        if "ssh_dir_mode" in fields:
            system.chmod(folder, 0o700)
        if "ssh_dir_owner" in fields:
            system.chown(folder, uid, gid)
        if "ssh_keys" in fields:
            system.atomic_write(path, self._keys_text(), 0o600, uid, gid,
                                replacing=system.exists(path))
        if "ssh_keys_mode" in fields:
            system.chmod(path, 0o600)
        if "ssh_keys_owner" in fields:
            system.chown(path, uid, gid)


def _mode_owner(field: str, st: os.stat_result, mode: int, owner: str) -> list[Change]:
    """Changes of ``field``'s mode and owner ("uid:gid", or a user this apply creates)."""
    changes = []
    if stat.S_IMODE(st.st_mode) != mode:
        changes.append(Change(f"{field}_mode", f"{stat.S_IMODE(st.st_mode):04o}", f"{mode:04o}"))
    if f"{st.st_uid}:{st.st_gid}" != owner:
        changes.append(Change(f"{field}_owner", f"{st.st_uid}:{st.st_gid}", owner))
    return changes
