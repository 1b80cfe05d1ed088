"""trueup watch: the daemon that keeps this machine converged between deliberate runs.

It converges:

- at start (after a random 0..``--splay`` s), then every ``--interval`` (+ splay);
- when the release pointer moves (``ssm:`` sources: one GetParameter per ``--poll``);
- on SIGHUP, at once;
- when a file a resource manages is changed by someone else: after ``--debounce`` s of
  quiet, only the resources owning the changed paths converge, plus what they notify.
  A change that leaves the resource converged (trueup's own writes, an edit undone) runs
  nothing. A resource repaired more than ``--fight-limit`` times in a minute is being
  fought over by another writer: it is left alone for a while (1 minute, doubling up to
  an hour) and reported in ``watch.json`` in the state dir and on stderr.

Every converge takes the run lock, like any other run, and waits for it: a trigger is
never lost, and triggers that arrive during a run make exactly one more run. SIGTERM
lets the resource being converged finish, keeps the report and exits 0.

watchdog is imported here only, when the daemon starts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from agent.config import Config
from agent.errors import Interrupted, LockBusy, TrueupError
from agent.model import Result

FILE_KINDS = ("file", "template", "line", "link", "directory", "cron")
MAX_WAIT = 2.0        # a path changing without pause is repaired after this many seconds
FIGHT_WINDOW = 60.0   # repairs counted over this many seconds
BACKOFF_MAX = 3600.0
IGNORED_EVENTS = ("opened", "closed_no_write")


def main(ns: argparse.Namespace, cfg: Config) -> int:
    from agent.compile.prepare import Options

    if ns.src and ns.source and ns.src != ns.source:
        raise TrueupError("give the source once: as SRC or as --source")
    splay = ns.splay if ns.splay is not None else (cfg.splay or 300.0)
    for flag, value in (("--interval", ns.interval), ("--splay", splay), ("--poll", ns.poll),
                        ("--debounce", ns.debounce)):
        if not (value >= 0 and value < float("inf")):
            raise TrueupError(f"{flag} must be a finite number of seconds, 0 or more, "
                              f"not {value}")
    if ns.interval <= 0 or ns.poll <= 0 or ns.fight_limit < 1:
        raise TrueupError("--interval and --poll must be more than 0 s, --fight-limit 1 or more")
    opts = Options(source=ns.src or ns.source or "", runlist=ns.runlist, lock_timeout=1.0)
    daemon = Daemon(opts, cfg, interval=ns.interval, splay=splay, poll=ns.poll,
                    debounce=ns.debounce, fight_limit=ns.fight_limit)
    daemon.reboot = ns.reboot
    return daemon.serve()


class Watching:
    """What one converge started by the daemon needs from it (see commands.run.converge)."""

    def __init__(self, daemon: Daemon, only: set[str] | None, trigger: str) -> None:
        self.daemon = daemon
        self.only = only
        self.fields: dict[str, Any] = {"trigger": trigger}

    @contextlib.contextmanager
    def signals(self) -> Iterator[Any]:
        """The daemon's own handlers stay: a stop request is seen between resources."""
        yield _NoDisarm()

    def compiled(self, catalog: Any) -> None:
        self.daemon.learn(catalog)

    def on_result(self, inner: Callable[[Result], None] | None) -> Callable[[Result], None]:
        stop = self.daemon.stop

        def seen(result: Result) -> None:
            if inner is not None:
                inner(result)
            if stop.is_set():
                raise Interrupted(signal.SIGTERM)  # after this resource: keep the report
        return seen


class _NoDisarm:
    def disarm(self) -> None:
        pass


class Daemon:
    """The watch loop: triggers in, one converge at a time out."""

    def __init__(self, opts: Any, cfg: Config, *, interval: float, splay: float, poll: float,
                 debounce: float, fight_limit: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.opts, self.cfg = opts, cfg
        self.interval, self.splay, self.poll = interval, splay, poll
        self.debounce, self.fight_limit = debounce, fight_limit
        self.clock = clock
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.full_wanted = ""            # why a full run is wanted ("" for none)
        self.drift: dict[str, list[float]] = {}   # ident → [first, last] event time
        self.paths: dict[str, str] = {}           # managed path → ident
        self.catalog: Any = None
        self.repairs: dict[str, deque[float]] = {}
        self.fighting: dict[str, dict[str, float]] = {}  # ident → {"until", "backoff", "n"}
        self.pointer_name = _pointer_name(opts.source or cfg.source, cfg)
        self.pointer_seen: str | None = None
        self.observer: Any = None
        self.handler = _Handler(self.file_event)
        self.watches: dict[str, Any] = {}  # folder → watchdog's watch
        self.runs = 0
        self.reboot = "defer"  # or "allow": a reboot a recipe asks for happens after the run

    # --- triggers ----------------------------------------------------------------------

    def want_full(self, why: str) -> None:
        with self.cond:
            self.full_wanted = self.full_wanted or why
            self.cond.notify()

    def file_event(self, event: Any) -> None:
        """watchdog's callback (its thread): a managed path changed."""
        if event.event_type in IGNORED_EVENTS:
            return
        now = self.clock()
        with self.cond:
            for path in (event.src_path, getattr(event, "dest_path", "")):
                ident = self.paths.get(os.fsdecode(path)) if path else None
                if ident is not None:
                    seen = self.drift.setdefault(ident, [now, now])
                    seen[1] = now
                    self.cond.notify()

    def learn(self, catalog: Any) -> None:
        """The catalog of a run: which paths to watch, and whose they are."""
        paths = {}
        for node in catalog.nodes:
            res = node.res
            if res.kind in FILE_KINDS:
                path = getattr(res, "path", None) or res.name
                if isinstance(path, str) and os.path.isabs(path):
                    paths[os.path.normpath(path)] = node.ident
        with self.cond:
            self.catalog = catalog
            self.paths = paths
        self._schedule()

    def _schedule(self) -> None:
        """Watch the folders of the managed paths that exist (a run may have made more)."""
        if self.observer is None:
            return
        wanted = {os.path.dirname(p) for p in self.paths}
        for folder in set(self.watches) - wanted:
            with contextlib.suppress(KeyError, OSError):
                self.observer.unschedule(self.watches.pop(folder))
        for folder in sorted(wanted - set(self.watches)):
            if os.path.isdir(folder):
                try:
                    self.watches[folder] = self.observer.schedule(self.handler, folder,
                                                                  recursive=False)
                except OSError as exc:
                    say(f"trueup watch: warning: cannot watch {folder}: {exc}")

    # --- the loop ----------------------------------------------------------------------

    def serve(self) -> int:
        from watchdog.observers import Observer

        self.observer = Observer()
        self.observer.daemon = True
        self.observer.start()
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        say(f"trueup watch: pid {os.getpid()}, every {self.interval:g} s (+ up to "
            f"{self.splay:g} s), debounce {self.debounce:g} s"
            + (f", polling {self.pointer_name} every {self.poll:g} s"
               if self.pointer_name else ""))
        try:
            self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.observer.stop()
        say("trueup watch: stopped")
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            self.want_full("SIGHUP")
            return
        self.stop.set()
        with self.cond:
            self.cond.notify()

    def _loop(self) -> None:
        now = self.clock()
        next_full = now + random.uniform(0, self.splay)  # noqa: S311 - spreading load
        next_poll = now + self.poll
        while not self.stop.is_set():
            now = self.clock()
            if now >= next_full:
                self.want_full(self.full_wanted or ("start" if self.runs == 0 else "interval"))
            if self.pointer_name and now >= next_poll:
                next_poll = now + self.poll
                self._poll_pointer()
            with self.cond:
                why = self.full_wanted
                ready = self._ready(now)
                if not why and not ready:
                    wake = min(next_full, next_poll if self.pointer_name else next_full,
                               self._next_ready(now))
                    self.cond.wait(max(0.01, wake - now))
                    continue
                self.full_wanted = ""
            if why:
                with self.cond:
                    self.drift.clear()  # a full run repairs these too
                self._converge(None, why)
                next_full = self.clock() + self.interval + random.uniform(0, self.splay)  # noqa: S311
            else:
                self._repair(ready)

    def _ready(self, now: float) -> list[str]:
        """Identities whose paths have been quiet for the debounce time (or waited long)."""
        return [ident for ident, (first, last) in self.drift.items()
                if now - last >= self.debounce or now - first >= MAX_WAIT]

    def _next_ready(self, now: float) -> float:
        times = [min(last + self.debounce, first + MAX_WAIT)
                 for first, last in self.drift.values()]
        return min(times, default=now + 3600)

    def _repair(self, idents: list[str]) -> None:
        with self.cond:
            for ident in idents:
                self.drift.pop(ident, None)
            nodes = {n.ident: n for n in self.catalog.nodes} if self.catalog else {}
        now = self.clock()
        wanted = set()
        for ident in idents:
            node = nodes.get(ident)
            if node is None or not _drifted(node):
                continue  # converged: trueup's own write, or a change undone
            if self._fought(ident, now):
                continue
            wanted.add(ident)
        if wanted:
            self._converge(wanted, "drift")

    def _fought(self, ident: str, now: float) -> bool:
        """Count a repair of ``ident``; True while it is backed off as fought over."""
        fight = self.fighting.get(ident)
        if fight is not None and now < fight["until"]:
            return True
        times = self.repairs.setdefault(ident, deque())
        while times and now - times[0] > FIGHT_WINDOW:
            times.popleft()
        times.append(now)
        if len(times) <= self.fight_limit:
            if fight is not None and now - fight["until"] > FIGHT_WINDOW:
                self.fighting.pop(ident, None)  # quiet for a while: the fight is over
                self._status()
            return False
        backoff = min(BACKOFF_MAX, fight["backoff"] * 2) if fight else FIGHT_WINDOW
        self.fighting[ident] = {"until": now + backoff, "backoff": backoff,
                                "repairs": len(times)}
        times.clear()
        say(f"trueup watch: {ident} is being fought over ({self.fight_limit + 1} repairs in "
            f"{FIGHT_WINDOW:g} s: another writer keeps undoing it); left alone for "
            f"{backoff:g} s")
        self._status()
        return True

    def _converge(self, only: set[str] | None, trigger: str) -> None:
        from agent.commands import run

        watching = Watching(self, only, trigger)
        waited = False
        while not self.stop.is_set():
            clients = sys.modules.get("agent.aws.clients")
            if clients is not None:  # each report counts its own run's AWS calls
                clients.STATS.__init__()
            try:
                code = run.converge(self.opts, self.cfg, reboot=self.reboot, watch=watching)
            except LockBusy as exc:
                if not waited:
                    say(f"trueup watch: waiting for the run lock ({exc})")
                    waited = True
                continue
            except TrueupError as exc:
                say(f"trueup watch: error: {exc}")
                code = 1
            self.runs += 1
            self._schedule()  # folders the run created
            self._status(last={"trigger": trigger, "exit_code": code,
                                "repair": sorted(only) if only else None})
            return

    def _poll_pointer(self) -> None:
        from agent.aws.params import current_pointer

        try:
            found = current_pointer(self.pointer_name)
        except (TrueupError, Exception) as exc:  # AWS unreachable: try again next poll
            say(f"trueup watch: cannot read {self.pointer_name}: {exc}")
            return
        seen = json.dumps(found[1], sort_keys=True) if found else ""
        if self.pointer_seen is not None and seen != self.pointer_seen:
            say(f"trueup watch: {self.pointer_name} moved to "
                f"{(found[1] if found else {}).get('version') or 'a new bundle'}")
            self.want_full("pointer")
        self.pointer_seen = seen

    def _status(self, last: dict[str, Any] | None = None) -> None:
        """watch.json in the state dir: pid, the last converge, resources fought over."""
        path = os.path.join(self.cfg.state_dir, "watch.json")
        status: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError), open(path) as fh:
            status = json.load(fh)
        now_wall, now = time.time(), self.clock()
        status.update(pid=os.getpid(), runs=self.runs,
                      fighting={ident: {"repairs": f["repairs"], "backoff_s": f["backoff"],
                                        "until": _iso(now_wall + f["until"] - now)}
                                for ident, f in self.fighting.items()})
        if last is not None:
            status["last"] = {**last, "at": _iso(now_wall)}
        try:
            os.makedirs(self.cfg.state_dir, mode=0o700, exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w") as fh:
                json.dump(status, fh, indent=1)
            os.replace(tmp, path)
        except OSError as exc:
            say(f"trueup watch: warning: cannot write {path}: {exc.strerror}")


class _Handler:
    """A watchdog event handler that hands every event to one callback."""

    def __init__(self, callback: Callable[[Any], None]) -> None:
        self.callback = callback

    def dispatch(self, event: Any) -> None:
        self.callback(event)


def _drifted(node: Any) -> bool:
    try:
        return bool(node.res.check())
    except Exception:  # noqa: BLE001 - a check that fails is for the run to report
        return True


def _pointer_name(source: str, cfg: Config) -> str:
    """``/trueup/ENV/bundle`` for an ssm: source (or none given and an env set); else ""."""
    if not source and cfg.env:
        source = f"ssm:/trueup/{cfg.env}"
    if not source.startswith("ssm:"):
        return ""
    from agent.sources.ssm import parse_url

    return parse_url(source) + "/bundle"


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def say(line: str) -> None:
    with contextlib.suppress(BrokenPipeError):
        print(line, file=sys.stderr, flush=True)
