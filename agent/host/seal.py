"""What ``trueup seal`` removes from a machine before it is snapshotted into an image.

Every entry is one path and one action: ``remove`` (a file, or a folder with what is
in it), ``empty`` (truncate to 0 bytes: the file stays, as services expect it) or
``clear`` (remove what a folder holds, keep the folder). ``plan(root, state_dir)`` only
reads; ``apply(entries)`` performs them.

On the next boot of an instance from the image: systemd writes a new machine id (the
file is empty), SSH host keys are made anew (cloud-init, or the image's
trueup-hostkeys.service where cloud-init is absent), cloud-init sees a new instance.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
from dataclasses import dataclass

REMOVE, EMPTY, CLEAR = "remove", "empty", "clear"

HISTORIES = (".bash_history", ".python_history", ".lesshst", ".viminfo", ".sh_history",
             ".zsh_history", ".wget-hsts", ".mysql_history", ".psql_history",
             ".local/share/nano/search_history")
ROTATED = (".gz", ".xz", ".bz2", ".zst", ".old")


@dataclass(frozen=True)
class Entry:
    """One thing seal does: ``action`` on ``path``, and why (``what``)."""

    action: str
    path: str
    what: str

    def as_dict(self) -> dict[str, str]:
        return {"action": self.action, "path": self.path, "what": self.what}


def plan(root: str, state_dir: str, keep: tuple[str, ...] = ()) -> list[Entry]:
    """Everything seal would do on the machine mounted at ``root`` (``/`` normally).

    ``state_dir`` is trueup's state folder (not re-rooted); ``keep`` are paths in it that
    stay (the bake manifest's folder).
    """
    def at(path: str) -> str:
        return os.path.join(root, path.lstrip("/"))

    out: list[Entry] = []
    for path in sorted(glob.glob(at("/etc/ssh/ssh_host_*"))):
        out.append(Entry(REMOVE, path, "SSH host key"))
    machine_id = at("/etc/machine-id")
    if os.path.isfile(machine_id) and os.path.getsize(machine_id) > 0:
        out.append(Entry(EMPTY, machine_id, "machine id (systemd writes a new one at boot)"))
    dbus_id = at("/var/lib/dbus/machine-id")
    if os.path.lexists(dbus_id) and not os.path.islink(dbus_id):
        out.append(Entry(REMOVE, dbus_id, "D-Bus machine id"))
    cloud = at("/var/lib/cloud")
    for name in _names(cloud):
        if name != "seed":
            out.append(Entry(REMOVE, os.path.join(cloud, name), "cloud-init instance state"))
    out += _logs(at("/var/log"))
    for home in [at("/root"), *sorted(glob.glob(at("/home/*")))]:
        for name in HISTORIES:
            path = os.path.join(home, name)
            if os.path.lexists(path):
                out.append(Entry(REMOVE, path, "shell history"))
        pip_cache = os.path.join(home, ".cache", "pip")
        if os.path.isdir(pip_cache):
            out.append(Entry(REMOVE, pip_cache, "pip cache"))
    for tmp in (at("/tmp"), at("/var/tmp")):
        if _names(tmp):
            out.append(Entry(CLEAR, tmp, "temporary files"))
    kept = {os.path.normpath(os.path.join(state_dir, k)) for k in keep}
    for name in _names(state_dir):
        path = os.path.join(state_dir, name)
        if os.path.normpath(path) in kept or name == "run.lock":
            continue
        out.append(Entry(REMOVE, path, _trueup_what(name)))
    return out


def _trueup_what(name: str) -> str:
    return {"reports": "trueup reports and history", "cache": "trueup cache",
            "sources": "trueup verified bundles", "backup": "trueup backups (old file "
            "content, maybe secret)"}.get(name, "trueup state")


def _logs(logdir: str) -> list[Entry]:
    out: list[Entry] = []
    if not os.path.isdir(logdir):
        return out
    for folder, dirs, names in os.walk(logdir):
        dirs.sort()
        if os.path.basename(folder) == "journal" and folder != logdir:
            out += [Entry(REMOVE, os.path.join(folder, d), "journal") for d in dirs]
            out += [Entry(REMOVE, os.path.join(folder, n), "journal") for n in sorted(names)]
            dirs[:] = []
            continue
        for name in sorted(names):
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            if name.startswith("cloud-init") or name.endswith(ROTATED) \
                    or name.rpartition(".")[2].isdigit():
                out.append(Entry(REMOVE, path, "log"))
            elif os.path.getsize(path) > 0:
                out.append(Entry(EMPTY, path, "log"))
    return out


def _names(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []


def apply(entries: list[Entry]) -> None:
    """Do every entry; a path already gone is fine."""
    for entry in entries:
        path = entry.path
        if entry.action == EMPTY:
            with open(path, "r+b") as fh:
                fh.truncate(0)
                os.fsync(fh.fileno())
        elif entry.action == CLEAR:
            for name in _names(path):
                _remove(os.path.join(path, name))
        else:
            _remove(path)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=False)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
