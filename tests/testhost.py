"""Throw-away Debian 12 test hosts for trueup's system tests.

Two kinds of host, both started from the image that ``.ci/testhosts-setup.sh`` builds:

``BootedHost``
    ``systemd-nspawn --volatile=overlay -b``: systemd is PID 1, services really start and
    stop, apt works over the machine's network (the host shares its network namespace
    unless told otherwise). Boots in well under a second; all writes go to a tmpfs overlay
    that vanishes with the host, so the image is never changed.

``ChrootHost``
    A chroot on a private overlay in its own mount and PID namespaces: no systemd running,
    so ``systemctl start`` is impossible, but files, packages and users can be tested in a
    few milliseconds.

Both offer ``run(argv)``, ``put(local, remote)``, ``write_file``, ``read_file``,
``install_wheel(wheel)`` and ``testinfra()``; both are context managers and ``stop()``
always cleans up (processes, cgroups, overlays). Commands are argv lists, entered with
``nsenter``; nothing is ever passed through a host-side shell.

Hosts are named ``trueup-th-<owner pid>-<random>``. State lives in /run/trueup-testhosts;
``cleanup_stale()`` removes hosts whose owning process is gone (a crashed test run).

The testinfra backend ``nsenter`` is registered on import (when testinfra is installed):
``testinfra.get_host("nsenter://<host name or leader pid>")``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import email.parser
import errno
import fcntl
import hashlib
import json
import os
import platform
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SETUP_SCRIPT = REPO_ROOT / ".ci" / "testhosts-setup.sh"
CACHE_DIR = Path(os.environ.get("TRUEUP_TESTHOST_CACHE", "/var/cache/trueup-testhosts"))
STATE_DIR = Path(os.environ.get("TRUEUP_TESTHOST_STATE", "/run/trueup-testhosts"))
NAME_PREFIX = "trueup-th-"
CGROUP_BASE = "trueup-testhosts"
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
WHEELHOUSE_DIR = CACHE_DIR / "wheelhouse"
INNER_WHEELHOUSE = "/var/cache/trueup-wheelhouse"
DEFAULT_VENV = "/opt/trueup/venv"
INNER_REPO = "/srv/repo"
REQUIRED_TOOLS = ("systemd-nspawn", "nsenter", "unshare", "tar", "zstd")

INNER_ENV: dict[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "DEBIAN_FRONTEND": "noninteractive",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "PIP_ROOT_USER_ACTION": "ignore",
}

_PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _LIBC = None


# --------------------------------------------------------------------------- errors


class TestHostError(RuntimeError):
    """Something about a test host failed (boot, stop, copy...)."""

    __test__ = False  # not a pytest test class


class ImageMissing(TestHostError):
    """The image for the current recipe has not been built."""


class HostBootError(TestHostError):
    """The host did not boot; the message holds the console and journal tails."""


class HostCommandError(subprocess.CalledProcessError):
    """A command inside a host failed; str() shows the command's output."""

    def __init__(self, host: str, returncode: int, cmd: Sequence[str], output: Any, stderr: Any):
        super().__init__(returncode, list(cmd), output, stderr)
        self.host = host

    def __str__(self) -> str:
        def tail(data: Any) -> str:
            if data is None:
                return ""
            if isinstance(data, bytes):
                data = data.decode("utf-8", "replace")
            return data[-3000:]

        return (
            f"command {self.cmd!r} on {self.host} exited {self.returncode}\n"
            f"--- stdout ---\n{tail(self.stdout)}\n--- stderr ---\n{tail(self.stderr)}"
        )


class HostCommandTimeout(TestHostError):
    """A command inside a host ran past its timeout (it was killed)."""


# --------------------------------------------------------------------------- environment


def missing_prerequisites() -> list[str]:
    """What keeps test hosts from working here (empty list: nothing)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("test hosts need root")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        problems.append("missing tools: " + ", ".join(missing))
    if not Path("/proc/self/ns/pid").exists():
        problems.append("no /proc/self/ns (namespaces unavailable)")
    return problems


def find_image() -> Path:
    """The image rootfs for the current recipe: $TRUEUP_TESTHOST_IMAGE or the setup script's."""
    return _built("TRUEUP_TESTHOST_IMAGE", "lib/systemd/systemd", "is not a Debian rootfs",
                  "--print-path", "test host image {} is not built (or too old)")


def find_repo() -> Path:
    """The local apt repository for the current image: $TRUEUP_TESTHOST_REPO or setup's.

    A folder of .debs with a ``Packages`` index, for hosts that cannot reach the mirror
    (``BootedHost(network="private", apt_repo=...)``).
    """
    return _built("TRUEUP_TESTHOST_REPO", "Packages", "has no Packages index", "--print-repo",
                  "local apt repository {} is not built (or older than the image)")


def _built(variable: str, marker: str, not_it: str, flag: str, missing: str) -> Path:
    """A folder the setup script builds: the override in ``variable``, or what ``flag`` prints."""
    override = os.environ.get(variable)
    if override:
        path = Path(override)
        if not (path / marker).exists():
            raise ImageMissing(f"{variable}={override} {not_it}")
        return path
    if not SETUP_SCRIPT.exists():
        raise ImageMissing(f"{SETUP_SCRIPT} not found")
    proc = subprocess.run(
        ["bash", str(SETUP_SCRIPT), flag],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = proc.stdout.strip()
    if proc.returncode != 0 or not found:
        raise ImageMissing(
            missing.format(found or "?")
            + f"; run as root: bash {SETUP_SCRIPT.relative_to(REPO_ROOT)}"
        )
    return Path(found)


def image_key(image: Path) -> str:
    """A short id of an image, for cache keys ('bookworm-<recipe hash>' for setup's images)."""
    image = Path(image)
    if image.name == "rootfs" and image.parent.name:
        return image.parent.name
    return hashlib.sha256(str(image.resolve()).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- /proc helpers


def _starttime(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The comm field may contain spaces and parentheses: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int | None, start: int | None = None) -> bool:
    if not pid:
        return False
    now = _starttime(pid)
    if now is None:
        return False
    if _proc_state(pid) == "Z":
        return False
    return start is None or now == start


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                kids += [int(x) for x in (task / "children").read_text().split()]
    return kids


def _ns_init_child(pid: int) -> int | None:
    """The child of ``pid`` that is PID 1 of a new PID namespace (a container's init)."""
    for kid in _children(pid):
        try:
            status = Path(f"/proc/{kid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^NSpid:\s+(.*)$", status, re.M)
        if match:
            ids = match.group(1).split()
            if len(ids) >= 2 and ids[-1] == "1":
                return kid
    return None


def _kill(pid: int | None, sig: int, start: int | None = None) -> None:
    if pid and _alive(pid, start):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pid: int | None, timeout: float, start: int | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _cgroup_roots() -> list[Path]:
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():  # pure cgroup v2
        return [base]
    return [p for p in (base / "systemd", base / "unified") if (p / "cgroup.procs").exists()]


def _cgroup_pids(path: Path) -> list[int]:
    pids: list[int] = []
    if not path.is_dir():
        return pids
    for dirpath, _dirs, files in os.walk(path):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError):
                pids += [int(x) for x in Path(dirpath, "cgroup.procs").read_text().split()]
    return pids


def _rmdir_tree(path: Path, timeout: float = 3.0) -> None:
    """rmdir a cgroup tree depth-first (cgroup dirs can't be rm -r'd)."""
    deadline = time.monotonic() + timeout
    while path.exists():
        busy = False
        for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                busy = True
        if busy:
            if time.monotonic() > deadline:
                raise TestHostError(f"cgroup {path} stays busy: {_cgroup_pids(path)}")
            for pid in _cgroup_pids(path):
                _kill(pid, signal.SIGKILL)
            time.sleep(0.02)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mnt = line.split()[4].replace("\\040", " ")
            if mnt == str(path) or mnt.startswith(prefix):
                found.append(mnt)
    return found


def _preexec(cgroups: Sequence[Path], pdeathsig: int | None):
    """Runs in the forked child before exec: join our cgroups, die with the parent."""

    def setup() -> None:
        for cg in cgroups:
            with open(cg / "cgroup.procs", "w") as fh:
                fh.write("0\n")
        if pdeathsig and _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0)

    return setup


def _descendants(pid: int) -> list[int]:
    found, todo = [], _children(pid)
    while todo:
        kid = todo.pop()
        found.append(kid)
        todo += _children(kid)
    return found


def _communicate(
    proc: subprocess.Popen[bytes], input: bytes | None, timeout: float
) -> tuple[bytes, bytes]:
    """``proc.communicate`` for an nsenter process; on timeout kill what runs inside.

    The command is nsenter's child, inside the host's PID namespace. It is killed first so
    that nsenter reaps it and exits on its own (an orphaned zombie would be reaped only by
    the machine's init, and would hold the host's PID namespace open until then); then the
    whole process group. Raises ``TimeoutExpired`` with the output gathered so far.
    """
    try:
        return proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in reversed(_descendants(proc.pid)):
            _kill(pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None


def _check_argv(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, (str, bytes)) or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a list of str (no shell strings)")
    if not argv:
        raise ValueError("empty argv")
    return list(argv)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return "(no log)"
    text = data[-limit:].decode("utf-8", "replace")
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# --------------------------------------------------------------------------- state & cleanup

_LIVE: dict[str, _Host] = {}  # started and not yet stopped, by name
_STALE_CHECKED = False
_LOCK = threading.Lock()


def _state_path(name: str) -> Path:
    return STATE_DIR / name / "state.json"


def _read_state(name: str) -> dict[str, Any] | None:
    try:
        return json.loads(_state_path(name).read_text())
    except (OSError, ValueError):
        return None


def _owner_alive(name: str, state: dict[str, Any] | None) -> bool:
    if state and state.get("owner_pid"):
        return _alive(state["owner_pid"], state.get("owner_start"))
    match = re.match(re.escape(NAME_PREFIX) + r"(\d+)-", name)
    return bool(match) and _alive(int(match.group(1)))


def _teardown(name: str, state: dict[str, Any] | None) -> None:
    """Kill every process of host ``name`` and remove its cgroups, state and leftovers."""
    state = state or {}
    for key in ("leader", "pid"):
        _kill(state.get(key), signal.SIGKILL, state.get(key + "_start"))
    cgroups = [root / CGROUP_BASE / name for root in _cgroup_roots()]
    for cg in cgroups:
        for pid in _cgroup_pids(cg):
            _kill(pid, signal.SIGKILL)
    for key in ("leader", "pid"):
        _wait_gone(state.get(key), 10, state.get(key + "_start"))
    for cg in cgroups:
        _rmdir_tree(cg)
        with contextlib.suppress(OSError):  # the shared parent, once no host uses it
            cg.parent.rmdir()
    shutil.rmtree(NSPAWN_PROPAGATE / name, ignore_errors=True)
    state_dir = STATE_DIR / name
    for mnt in sorted(_mounts_under(state_dir), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], check=False, capture_output=True)
    shutil.rmtree(state_dir, ignore_errors=True)


def cleanup_stale() -> list[str]:
    """Remove hosts left by dead processes (crashed runs). Returns the names removed.

    A host belongs to the process that started it; hosts of live processes (another test
    run going on at the same time) are left alone.
    """
    names: set[str] = set()
    if STATE_DIR.is_dir():
        names |= {p.name for p in STATE_DIR.iterdir() if p.name.startswith(NAME_PREFIX)}
    for root in _cgroup_roots():
        base = root / CGROUP_BASE
        if base.is_dir():
            names |= {p.name for p in base.iterdir() if p.name.startswith(NAME_PREFIX)}
    if NSPAWN_PROPAGATE.is_dir():
        names |= {p.name for p in NSPAWN_PROPAGATE.iterdir() if p.name.startswith(NAME_PREFIX)}
    removed = []
    for name in sorted(names):
        if name in _LIVE:
            continue
        state = _read_state(name)
        if _owner_alive(name, state):
            continue
        _teardown(name, state)
        removed.append(name)
    return removed


def _cleanup_stale_once() -> None:
    global _STALE_CHECKED
    with _LOCK:
        if not _STALE_CHECKED:
            _STALE_CHECKED = True
            cleanup_stale()


@atexit.register
def _stop_all() -> None:
    for host in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            host.stop()


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- wheels


def wheel_requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist entries, without those only needed by extras."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
    reqs = meta.get_all("Requires-Dist") or []
    return [r.strip() for r in reqs if not re.search(r"\bextra\s*==", r)]


def ensure_wheelhouse(requirements: Sequence[str], *, python: str = sys.executable) -> Path:
    """Build (once, cached) a wheelhouse with ``requirements`` and their dependencies.

    Built on the outer machine with ``pip wheel`` (which uses this machine's pip config and
    CA bundle); keyed by the requirements and the outer Python version.
    """
    pyver = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    material = "\n".join([pyver, platform.machine(), *sorted(requirements)])
    key = hashlib.sha256(material.encode()).hexdigest()[:16]
    target = WHEELHOUSE_DIR / f"py{pyver}-{key}"
    if (target / ".ready").exists():
        return target
    with _flock(WHEELHOUSE_DIR / ".lock"):
        if (target / ".ready").exists():
            return target
        tmp = WHEELHOUSE_DIR / f".tmp-{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        reqfile = tmp / "requirements.txt"
        reqfile.write_text("\n".join(requirements) + "\n")
        proc = subprocess.run(
            [
                python,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--disable-pip-version-check",
                "-w",
                str(tmp),
                "-r",
                str(reqfile),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise TestHostError(f"pip wheel failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        (tmp / ".ready").write_text(material + "\n")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


# --------------------------------------------------------------------------- hosts


class _Host:
    """Common part of both host kinds: commands through nsenter into the host's init."""

    kind = "?"

    def __init__(self, image: Path | str | None = None, *, name: str | None = None):
        self.image = Path(image) if image is not None else find_image()
        if not (self.image / "usr/bin").is_dir():
            raise ImageMissing(f"{self.image} is not a rootfs")
        self.name = name or f"{NAME_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", self.name):
            raise ValueError(f"bad host name {self.name!r}")
        self.state_dir = STATE_DIR / self.name
        self.log_path = self.state_dir / "console.log"
        self.leader: int | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._state: dict[str, Any] = {}
        self._stopped = False
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None

    # -- lifecycle helpers -------------------------------------------------------------

    def __enter__(self) -> _Host:
        if self.leader is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} leader={self.leader}>"

    def start(self) -> _Host:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.leader is not None and _alive(self.leader, self._state.get("leader_start"))

    def _prepare_state(self, **extra: Any) -> None:
        _cleanup_stale_once()
        if self.state_dir.exists():
            raise TestHostError(f"host {self.name} already exists")
        self.state_dir.mkdir(parents=True)
        self._state = {
            "name": self.name,
            "kind": self.kind,
            "image": str(self.image),
            "owner_pid": os.getpid(),
            "owner_start": _starttime(os.getpid()),
            **extra,
        }
        self._save_state()
        _LIVE[self.name] = self

    def _save_state(self) -> None:
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(self._state))
        tmp.rename(self.state_dir / "state.json")

    def _started(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self.pid = proc.pid
        self._state.update(pid=proc.pid, pid_start=_starttime(proc.pid))
        self._save_state()

    def _find_leader(self, timeout: float = 15.0) -> int:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            leader = _ns_init_child(self._proc.pid)
            if leader:
                self.leader = leader
                self._state.update(leader=leader, leader_start=_starttime(leader))
                self._save_state()
                return leader
            if self._proc.poll() is not None:
                raise HostBootError(
                    f"{self.name}: {self._proc.args[0]} exited {self._proc.returncode}"
                    f" before starting the host\n{_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise HostBootError(f"{self.name}: no container init after {timeout} s")
            time.sleep(0.005)

    # -- commands ----------------------------------------------------------------------

    def _nsenter(self, argv: Sequence[str]) -> list[str]:
        if not self.running:
            raise TestHostError(f"host {self.name} is not running")
        return ["nsenter", "-t", str(self.leader), "-a", "-r", "-w", "--", *argv]

    def _popen(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self._nsenter(argv),
            env={**INNER_ENV, **(env or {})},
            start_new_session=True,
            **kwargs,
        )

    def _exec(
        self,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        stdin: Any = None,
        timeout: float = 120,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        argv = _check_argv(argv)
        proc = self._popen(
            argv,
            env,
            stdin=subprocess.PIPE if input is not None else (stdin or subprocess.DEVNULL),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = _communicate(proc, input, timeout)
        except subprocess.TimeoutExpired as exc:
            out, err = exc.output or b"", exc.stderr or b""
            raise HostCommandTimeout(
                f"{argv!r} on {self.name} timed out after {timeout} s\n"
                f"--- stdout ---\n{out.decode('utf-8', 'replace')[-2000:]}\n"
                f"--- stderr ---\n{err.decode('utf-8', 'replace')[-2000:]}"
            ) from None
        result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        if check and proc.returncode != 0:
            raise HostCommandError(self.name, proc.returncode, argv, out, err)
        return result

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 120,
        *,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the host as root; stdout/stderr come back as text.

        The environment is a clean one (``INNER_ENV`` plus ``env``). Raises
        ``HostCommandError`` (a ``CalledProcessError``) when ``check`` and the exit code is
        not 0, ``HostCommandTimeout`` after ``timeout`` seconds (the command is killed).
        """
        argv = _check_argv(argv)
        if cwd is not None:
            argv = ["env", f"--chdir={cwd}", "--", *argv]
        data = input.encode() if isinstance(input, str) else input
        res = self._exec(argv, input=data, timeout=timeout, env=env, check=False)
        result = subprocess.CompletedProcess(
            argv,
            res.returncode,
            res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"),
        )
        if check and res.returncode != 0:
            raise HostCommandError(self.name, res.returncode, argv, result.stdout, result.stderr)
        return result

    def write_file(self, remote_path: str, content: str | bytes, mode: int = 0o644) -> None:
        """Create or replace ``remote_path`` (parents created) with ``content``."""
        data = content.encode() if isinstance(content, str) else content
        self._exec(
            [
                "/bin/sh",
                "-c",
                'mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && chmod "$2" -- "$1"',
                "sh",
                remote_path,
                format(mode, "o"),
            ],
            input=data,
        )

    def read_file(self, remote_path: str) -> bytes:
        return self._exec(["cat", "--", remote_path]).stdout

    def put(
        self, local_path: str | os.PathLike[str], remote_path: str, mode: int | None = None
    ) -> None:
        """Copy a local file (or a directory's contents) to ``remote_path`` in the host.

        A file keeps its permission bits unless ``mode`` is given; a ``remote_path`` ending
        in '/' is a directory to put the file into.
        """
        local = Path(local_path)
        if local.is_dir():
            self._put_tree(local, remote_path)
            return
        if remote_path.endswith("/"):
            remote_path += local.name
        perm = mode if mode is not None else local.stat().st_mode & 0o7777
        with open(local, "rb") as fh:
            self._exec(
                [
                    "/bin/sh",
                    "-c",
                    'mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && chmod "$2" -- "$1"',
                    "sh",
                    remote_path,
                    format(perm, "o"),
                ],
                stdin=fh,
                timeout=600,
            )

    def _put_tree(self, local: Path, remote_dir: str) -> None:
        sender = subprocess.Popen(
            ["tar", "-C", str(local), "--numeric-owner", "-cf", "-", "."],
            stdout=subprocess.PIPE,
        )
        try:
            self._exec(
                ["/bin/sh", "-c", 'mkdir -p -- "$1" && tar -C "$1" -xpf -', "sh", remote_dir],
                stdin=sender.stdout,
                timeout=600,
            )
        finally:
            assert sender.stdout is not None
            sender.stdout.close()
            if sender.wait() != 0:
                raise TestHostError(f"tar of {local} failed")

    def _save_tree(self, remote_dir: str, archive: Path) -> None:
        """Archive ``remote_dir`` of the host into a local tar.zst (atomically)."""
        rel = remote_dir.strip("/")
        tmp = archive.with_name(archive.name + f".tmp{os.getpid()}")
        archive.parent.mkdir(parents=True, exist_ok=True)
        reader = self._popen(
            ["tar", "-C", "/", "-cf", "-", rel], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert reader.stdout is not None
        try:
            subprocess.run(
                ["zstd", "-q", "-T0", "-3", "-f", "-o", str(tmp)],
                stdin=reader.stdout,
                check=True,
                timeout=600,
            )
        finally:
            reader.stdout.close()
            rc = reader.wait()
        if rc != 0:
            tmp.unlink(missing_ok=True)
            raise TestHostError(f"archiving {remote_dir} in {self.name} failed ({rc})")
        tmp.rename(archive)

    def _restore_tree(self, archive: Path) -> None:
        reader = subprocess.Popen(["zstd", "-q", "-dc", str(archive)], stdout=subprocess.PIPE)
        assert reader.stdout is not None
        try:
            self._exec(["tar", "-C", "/", "-xpf", "-"], stdin=reader.stdout, timeout=600)
        finally:
            reader.stdout.close()
            if reader.wait() != 0:
                raise TestHostError(f"reading {archive} failed")

    # -- trueup ------------------------------------------------------------------------

    def python_version(self) -> str:
        return self.run(
            ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        ).stdout.strip()

    def _wheelhouse_inside(self, wheelhouse: Path) -> str:
        try:
            rel = wheelhouse.resolve().relative_to(WHEELHOUSE_DIR.resolve())
        except ValueError:
            target = f"/tmp/wheelhouse-{wheelhouse.name}"
            self.put(wheelhouse, target)
            return target
        return f"{INNER_WHEELHOUSE}/{rel}"

    def install_wheel(
        self,
        wheel_path: str | os.PathLike[str],
        *,
        venv: str = DEFAULT_VENV,
        cache: bool = True,
        timeout: float = 900,
    ) -> str:
        """Create ``venv`` in the host and pip-install the wheel there; returns the venv path.

        Dependencies come from a wheelhouse built on the outer machine (cached under
        $TRUEUP_TESTHOST_CACHE/wheelhouse, bound read-only into the host), installed with
        ``--no-index``. The venv with only the dependencies is cached as a tar.zst (keyed by
        image, venv path and wheelhouse), so later hosts only unpack it and install the wheel
        itself. If the host's Python differs from the outer one, pip inside the host uses
        the index over the network instead.
        """
        wheel = Path(wheel_path).resolve()
        reqs = wheel_requirements(wheel)
        inner_py = self.python_version()
        outer_py = f"{sys.version_info[0]}.{sys.version_info[1]}"
        pip_source: list[str] = []
        source_key = "index:" + "\n".join(sorted(reqs))
        if reqs and inner_py == outer_py:
            wheelhouse = ensure_wheelhouse(reqs)
            pip_source = ["--no-index", "--find-links", self._wheelhouse_inside(wheelhouse)]
            source_key = wheelhouse.name
        pip = f"{venv}/bin/pip"
        key = hashlib.sha256(
            "\n".join([image_key(self.image), venv, inner_py, source_key]).encode()
        ).hexdigest()[:16]
        archive = CACHE_DIR / "venvs" / f"{image_key(self.image)}-{key}.tar.zst"
        if cache and archive.exists():
            self._restore_tree(archive)
        else:
            self.run(["python3", "-m", "venv", venv], timeout=timeout)
            if reqs:
                self.write_file("/tmp/trueup-requirements.txt", "\n".join(reqs) + "\n")
                self.run(
                    [pip, "install", "-q", *pip_source, "-r", "/tmp/trueup-requirements.txt"],
                    timeout=timeout,
                )
            if cache:
                with _flock(archive.with_suffix(".lock")):
                    if not archive.exists():
                        self._save_tree(venv, archive)
        remote_wheel = f"/tmp/{wheel.name}"
        self.put(wheel, remote_wheel)
        self.run([pip, "install", "-q", *pip_source, remote_wheel], timeout=timeout)
        return venv

    # -- testinfra ---------------------------------------------------------------------

    def testinfra(self) -> Any:
        """A testinfra ``Host`` for this host (backend ``nsenter``)."""
        import testinfra  # optional dependency, only needed here

        register_testinfra_backend()
        return testinfra.get_host(f"nsenter://{self.name}")


class BootedHost(_Host):
    """A Debian 12 host booted with systemd as PID 1 (systemd-nspawn, volatile overlay).

    ``network``: ``"host"`` (default: share the machine's network namespace; apt and pip
    reach their mirrors; ports are shared with the machine and other hosts), ``"private"``
    (loopback only) or the path of a network namespace (e.g. ``/run/netns/thA``).
    ``mask``: units masked at boot (ssh.service by default: it would clash on port 22).
    ``binds`` / ``binds_ro``: ``(host_path, container_path)`` pairs.
    ``apt_repo``: a local apt repository (``find_repo()``), bound read-only at
    ``/srv/repo`` and made the host's only apt source (``deb [trusted=yes] file:/srv/repo
    ./``); the image's apt lists are dropped, as on a freshly imaged instance, so the
    first install needs an ``apt-get update``. For hosts that cannot reach the mirror.
    ``volatile=False``: boot the image itself, writable (an image build: the image must be
    a throw-away copy, e.g. an overlay mount; ``stop(graceful=True)`` shuts it down cleanly).
    """

    kind = "booted"

    def __init__(
        self,
        image: Path | str | None = None,
        *,
        name: str | None = None,
        network: str = "host",
        mask: Sequence[str] = ("ssh.service",),
        binds: Sequence[tuple[str, str]] = (),
        binds_ro: Sequence[tuple[str, str]] = (),
        boot_timeout: float = 60.0,
        apt_repo: Path | str | None = None,
        volatile: bool = True,
    ):
        super().__init__(image, name=name)
        self.volatile = volatile
        self.apt_repo = Path(apt_repo) if apt_repo is not None else None
        if self.apt_repo is not None and not (self.apt_repo / "Packages").is_file():
            raise ImageMissing(f"{self.apt_repo} is not an apt repository (no Packages)")
        self.network = network
        self.mask = list(mask)
        self.binds = list(binds)
        self.binds_ro = list(binds_ro)
        self.boot_timeout = boot_timeout
        self.system_state: str | None = None
        self.boot_seconds: float | None = None
        self._cgroups: list[Path] = []

    def _nspawn_argv(self) -> list[str]:
        argv = [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            f"--machine={self.name}",
            "--directory",
            str(self.image),
            *(["--volatile=overlay"] if self.volatile else []),
            "--resolv-conf=copy-host",
            # /etc/localtime stays the image's: "auto" bind-mounts the machine's over it, and
            # a recipe that manages the time zone could then not replace it (EBUSY).
            "--timezone=off",
            "--link-journal=no",
            "--console=read-only",
        ]
        if self.network == "private":
            argv.append("--private-network")
        elif self.network != "host":
            argv.append(f"--network-namespace-path={self.network}")
        if CA_BUNDLE.exists():
            # pip inside must trust this machine's egress CA, which is only in its bundle.
            argv.append(f"--bind-ro={CA_BUNDLE}")
        argv.append(f"--bind-ro={WHEELHOUSE_DIR}:{INNER_WHEELHOUSE}")
        argv += [f"--bind={src}:{dst}" for src, dst in self.binds]
        argv += [f"--bind-ro={src}:{dst}" for src, dst in self.binds_ro]
        if self.apt_repo is not None:
            argv.append(f"--bind-ro={self.apt_repo}:{INNER_REPO}")
        argv.append("--boot")
        argv += [f"systemd.mask={unit}" for unit in self.mask]
        return argv

    def start(self) -> BootedHost:
        if self.leader is not None or self._stopped:
            raise TestHostError(f"{self.name} was already started")
        t0 = time.monotonic()
        self._prepare_state()
        try:
            WHEELHOUSE_DIR.mkdir(parents=True, exist_ok=True)
            # Own cgroups: without a host systemd, --keep-unit would put every container's
            # payload into the same (root) cgroup.
            self._cgroups = []
            for root in _cgroup_roots():
                cg = root / CGROUP_BASE / self.name
                cg.mkdir(parents=True, exist_ok=True)
                self._cgroups.append(cg)
            pdeathsig = (
                signal.SIGTERM if threading.current_thread() is threading.main_thread() else None
            )
            with open(self.log_path, "wb") as log:
                proc = subprocess.Popen(
                    self._nspawn_argv(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_preexec(self._cgroups, pdeathsig),
                )
            self._started(proc)
            self._find_leader()
            self._wait_booted(t0)
            self.boot_seconds = time.monotonic() - t0
            # Make the machine name resolvable inside (sudo, hostname -f ...).
            self._exec(
                ["/bin/sh", "-c", 'printf "127.0.1.1\\t%s\\n" "$1" >> /etc/hosts', "sh", self.name]
            )
            if self.apt_repo is not None:
                self._exec(["/bin/sh", "-c", _USE_LOCAL_REPO, "sh", INNER_REPO])
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _wait_booted(self, t0: float) -> None:
        deadline = t0 + self.boot_timeout
        bus = Path(f"/proc/{self.leader}/root/run/systemd/private")
        state = "?"
        while time.monotonic() < deadline:
            if not self.running:
                raise HostBootError(
                    f"{self.name}: init exited during boot\n--- console ---\n{_tail(self.log_path)}"
                )
            # `systemctl is-system-running` fails outright until the manager's socket exists.
            if bus.exists():
                res = self._exec(["systemctl", "is-system-running"], check=False, timeout=10)
                state = res.stdout.decode().strip()
                if state in ("running", "degraded"):
                    self.system_state = state
                    return
                if state in ("maintenance", "stopping", "offline"):
                    break
            time.sleep(0.02)
        raise HostBootError(
            f"{self.name}: system state {state!r} after {time.monotonic() - t0:.1f} s "
            f"(wanted running/degraded)\n{self.diagnostics()}"
        )

    def diagnostics(self, lines: int = 60) -> str:
        """Failed units, the journal tail and the console tail, for error messages."""
        parts = []
        if self.running:
            for argv in (
                ["systemctl", "--failed", "--no-pager", "--no-legend"],
                ["journalctl", "-b", "--no-pager", "-n", str(lines)],
            ):
                try:
                    res = self._exec(argv, check=False, timeout=15)
                    parts.append(
                        f"--- {' '.join(argv)} ---\n"
                        + res.stdout.decode("utf-8", "replace")
                        + res.stderr.decode("utf-8", "replace")
                    )
                except TestHostError as exc:
                    parts.append(f"--- {' '.join(argv)} failed: {exc}")
        parts.append(f"--- console ({self.log_path}) ---\n{_tail(self.log_path)}")
        return "\n".join(parts)

    def run_unit(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 600,
        *,
        env: Mapping[str, str] | None = None,
        properties: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as a transient systemd service (as the agent runs in production).

        Output is piped back and the exit code propagated (``systemd-run --wait --pipe``).
        """
        argv = _check_argv(argv)
        cmd = ["systemd-run", "--wait", "--pipe", "--quiet", "--collect", "--property=Type=exec"]
        cmd += [f"--property={p}" for p in properties]
        cmd += [f"--setenv={k}={v}" for k, v in (env or {}).items()]
        return self.run([*cmd, "--", *argv], check=check, timeout=timeout)

    def stop(self, graceful: bool = False, timeout: float = 15.0) -> None:
        """Stop the host and remove everything it left (idempotent, never raises on a
        host that is already gone).

        Default: SIGKILL the container's init (its whole PID namespace dies, the tmpfs
        overlay with it) - about 50 ms. ``graceful=True``: SIGTERM systemd-nspawn, which
        halts the container properly (1-2 s), then the same cleanup.
        """
        if self._stopped:
            return
        self._stopped = True
        t0 = time.monotonic()
        try:
            leader_start = self._state.get("leader_start")
            if graceful and self._proc is not None and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout)
            _kill(self.leader, signal.SIGKILL, leader_start)
            if self._proc is not None:
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
            _teardown(self.name, self._state)
        finally:
            _LIVE.pop(self.name, None)
            self.stop_seconds = time.monotonic() - t0


# The image's sources move aside; the local repository becomes the only one. The lists go
# too (an instance's image has none either): the first install runs `apt-get update`.
_USE_LOCAL_REPO = r"""
set -eu
mkdir -p /etc/apt/sources.disabled
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do
    if [ -e "$f" ]; then mv "$f" /etc/apt/sources.disabled/; fi
done
printf 'deb [trusted=yes] file:%s ./\n' "$1" > /etc/apt/sources.list.d/trueup-testrepo.list
find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock -delete
"""

_CHROOT_SCRIPT = r"""
set -eu
img=$1 w=$2 wheelhouse=$3
mount -t tmpfs -o mode=0755 trueup-chroot "$w"
mkdir "$w/upper" "$w/work" "$w/root"
mount -t overlay -o "lowerdir=$img,upperdir=$w/upper,workdir=$w/work" trueup-chroot "$w/root"
r=$w/root
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount -t tmpfs -o mode=0755,nosuid dev "$r/dev"
for n in null zero full random urandom tty; do
    touch "$r/dev/$n"
    mount --bind "/dev/$n" "$r/dev/$n"
done
mkdir "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
ln -s pts/ptmx "$r/dev/ptmx"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"
mount -t tmpfs -o mode=0755,nosuid,nodev run "$r/run"
mkdir -p "$r/run/lock"
rm -f "$r/etc/resolv.conf"
cp /etc/resolv.conf "$r/etc/resolv.conf"
if [ -r /etc/ssl/certs/ca-certificates.crt ] && [ -d "$r/etc/ssl/certs" ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
fi
mkdir -p "$r/var/cache/trueup-wheelhouse"
mount --bind -o ro "$wheelhouse" "$r/var/cache/trueup-wheelhouse"
# Packages must not try to start services: there is no init to talk to.
printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d"
chmod 0755 "$r/usr/sbin/policy-rc.d"
echo ready
exec chroot "$r" /bin/sleep infinity </dev/null >/dev/null 2>&1
"""


class ChrootHost(_Host):
    """A chroot on a private tmpfs overlay of the image, in its own mount+PID namespaces.

    No systemd runs (``systemctl start`` fails; ``enable``/``is-enabled`` work offline), a
    ``policy-rc.d`` keeps packages from starting services, and the network is the
    machine's. Starts in a few milliseconds; everything vanishes on ``stop()`` (or when the
    test process dies).
    """

    kind = "chroot"

    def start(self) -> ChrootHost:
        if self.leader is not None or self._stopped:
            raise TestHostError(f"{self.name} was already started")
        t0 = time.monotonic()
        self._prepare_state()
        try:
            work = self.state_dir / "fs"
            work.mkdir()
            WHEELHOUSE_DIR.mkdir(parents=True, exist_ok=True)
            pdeathsig = (
                signal.SIGKILL if threading.current_thread() is threading.main_thread() else None
            )
            with open(self.log_path, "wb") as log:
                proc = subprocess.Popen(
                    [
                        "unshare",
                        "--mount",
                        "--propagation",
                        "private",
                        "--pid",
                        "--fork",
                        "--kill-child",
                        "--",
                        "/bin/sh",
                        "-c",
                        _CHROOT_SCRIPT,
                        "sh",
                        str(self.image),
                        str(work),
                        str(WHEELHOUSE_DIR),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    start_new_session=True,
                    preexec_fn=_preexec((), pdeathsig),
                )
            self._started(proc)
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            line = proc.stdout.readline() if ready else b""
            proc.stdout.close()
            if line.strip() != b"ready":
                raise HostBootError(f"{self.name}: chroot setup failed\n{_tail(self.log_path)}")
            self._find_leader()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Kill the namespace's init (all processes, mounts and the overlay go with it)."""
        if self._stopped:
            return
        self._stopped = True
        t0 = time.monotonic()
        try:
            _kill(self.leader, signal.SIGKILL, self._state.get("leader_start"))
            if self._proc is not None:
                # unshare reaps its child (the namespace's init) and exits; the kernel lets
                # that happen only once every process of the PID namespace is gone.
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
            _teardown(self.name, self._state)
        finally:
            _LIVE.pop(self.name, None)
            self.stop_seconds = time.monotonic() - t0


# --------------------------------------------------------------------------- testinfra

try:
    from testinfra.backend import base as _ti_base
except ImportError:  # testinfra is optional for the harness itself
    _ti_base = None  # type: ignore[assignment]


def _resolve_leader(spec: str) -> int:
    if spec.isdigit():
        return int(spec)
    host = _LIVE.get(spec)
    if host is not None and host.leader:
        return host.leader
    state = _read_state(spec)
    if state and state.get("leader"):
        return int(state["leader"])
    raise TestHostError(f"no running test host named {spec!r}")


if _ti_base is not None:

    class NsenterBackend(_ti_base.BaseBackend):
        """testinfra backend: run commands in a booted or chroot test host via nsenter.

        ``testinfra.get_host("nsenter://<host name or init pid>")`` (or the ``host`` name /
        pid with ``connection="nsenter"``).
        """

        NAME = "nsenter"

        def __init__(self, hostname: str, *args: Any, timeout: float = 300, **kwargs: Any):
            super().__init__(str(hostname), *args, **kwargs)
            self.timeout = float(timeout)

        def run(self, command: str, *args: str, **kwargs: Any) -> Any:
            cmd = self.get_command(command, *args)
            leader = _resolve_leader(self.hostname)
            argv = ["nsenter", "-t", str(leader), "-a", "-r", "-w", "--", "/bin/sh", "-c", cmd]
            proc = subprocess.Popen(
                argv,
                env=INNER_ENV,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            out, err = _communicate(proc, None, self.timeout)
            return self.result(proc.returncode, self.encode(cmd), out, err)


def register_testinfra_backend() -> None:
    """Make ``connection="nsenter"`` known to testinfra (done on import already)."""
    import testinfra.backend

    testinfra.backend.BACKENDS["nsenter"] = f"{__name__}.NsenterBackend"


if _ti_base is not None:
    register_testinfra_backend()
