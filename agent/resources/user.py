"""user: a local user, its groups and its authorized SSH keys."""

from __future__ import annotations

import os
import stat

from agent.errors import ResourceError
from agent.host.pyinfra_bridge import plan, run_commands
from agent.model import Change
from agent.resources import STRLIST, Resource, SpecError, f


class User(Resource, kind="user"):
    """A local user; pyinfra plans useradd/usermod/userdel.

    ``groups`` is the exact list of supplementary groups. ``ssh_keys`` is the
    exact content of ``~/.ssh/authorized_keys`` (one key per item): keys not
    listed are removed.

    Spec:
        user (str): the login name.
        uid (int): a fixed user id.
        group (str): primary group (must exist).
        groups (list): supplementary groups, exactly.
        home (str): home folder (default /home/<name>; created).
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
    """

    FIELDS = {
        "uid": f(int, None, "user id"),
        "group": f(str, None, "primary group"),
        "groups": f(STRLIST, None, "supplementary groups, exactly"),
        "home": f(str, None, "home folder"),
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
        from pyinfra.operations import server

        system = bool(self.spec.get("system"))
        home = self.spec.get("home")
        return plan(server.user, self.ctx.fact_host, user=self.name,
                    present=self.state == "present", home=home, shell=self.spec.get("shell"),
                    group=self.spec.get("group"), groups=self.groups, uid=self.spec.get("uid"),
                    system=system, create_home=not system or home is not None,
                    ensure_home=not system or home is not None)

    def _keys_file(self) -> tuple[str, int, int] | None:
        import pwd

        try:
            entry = pwd.getpwnam(self.name)
        except KeyError:
            return None
        return os.path.join(entry.pw_dir, ".ssh", "authorized_keys"), entry.pw_uid, entry.pw_gid

    def _keys_text(self) -> bytes:
        return "".join(k.strip() + "\n" for k in self.keys).encode()

    def _keys_changes(self) -> list[Change]:
        if self.keys is None or self.state == "absent":
            return []
        where = self._keys_file()
        if where is None:
            return [Change("ssh_keys", None, f"{len(self.keys)} keys")]
        path, uid, gid = where
        try:
            st = os.lstat(path)
            with open(path, "rb") as fh:
                current = fh.read()
        except FileNotFoundError:
            return [Change("ssh_keys", None, f"{len(self.keys)} keys")]
        if (current != self._keys_text() or stat.S_IMODE(st.st_mode) != 0o600
                or (st.st_uid, st.st_gid) != (uid, gid)):
            return [Change("ssh_keys", f"{len(current.splitlines())} keys",
                           f"{len(self.keys)} keys")]
        return []

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
        if any(c.field == "ssh_keys" for c in changes):
            self._write_keys()

    def _write_keys(self) -> None:
        where = self._keys_file()
        if where is None:
            raise ResourceError(f"user {self.name} does not exist, cannot write its SSH keys")
        path, uid, gid = where
        folder = os.path.dirname(path)
        system = self.ctx.system
        if not os.path.isdir(folder):
            system.mkdir(folder, 0o700, uid, gid)
        elif os.stat(folder).st_uid != uid or stat.S_IMODE(os.stat(folder).st_mode) != 0o700:
            system.chmod(folder, 0o700)
            system.chown(folder, uid, gid)
        system.atomic_write(path, self._keys_text(), 0o600, uid, gid)
