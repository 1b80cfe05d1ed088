"""Configuration: defaults < /etc/trueup/config.toml < TRUEUP_* environment < flags.

Example ``/etc/trueup/config.toml``::

    source = "ssm:/trueup/prod"
    state_dir = "/var/lib/trueup"
    lock_timeout = 0        # seconds to wait for another run; then exit 75
    backups = 5             # replaced file versions kept per file
    history = 50            # run reports kept
    cache_keep = 5          # old bundles, recipe sets and parsed-YAML caches kept
    splay = 0               # trueup run sleeps a random 0..splay seconds before fetching
    report_to = ""          # "cloudwatch,ssm,metrics": reports leave the instance
    log_group = ""          # CloudWatch log group (default /trueup/<env>)
"""

from __future__ import annotations

import math
import os

from agent.errors import TrueupError
from agent.model import Record

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CONFIG = "/etc/trueup/config.toml"


def default_state_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/trueup"
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "trueup")


class Config(Record):
    """Settings of one trueup invocation."""

    __slots__ = ("state_dir", "source", "runlist", "env", "role", "lock_timeout", "backups",
                 "history", "cache_keep", "color", "splay", "report_to", "log_group")
    DEFAULTS = {
        "state_dir": "", "source": "", "runlist": "", "env": "", "role": "",
        "lock_timeout": 0.0,
        "backups": 5,
        "history": 50,
        "cache_keep": 5,  # per cache, besides the entries in use and the last verified bundle
        "color": "auto",  # auto, always, never
        "splay": 0.0,     # seconds; random sleep before a run fetches its source
        "report_to": "",  # cloudwatch,ssm,metrics (agent.engine.shipping)
        "log_group": "",  # default /trueup/<env>, /trueup/local without an environment
    }

    @classmethod
    def load(cls, path: str | None = None, environ: dict[str, str] | None = None) -> Config:
        environ = dict(os.environ if environ is None else environ)
        path = path or environ.get("TRUEUP_CONFIG") or DEFAULT_CONFIG
        cfg = cls()
        known = cls.__slots__
        if os.path.isfile(path):
            import tomllib

            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise TrueupError(f"invalid TOML: {exc}", path) from None
            except OSError as exc:
                raise TrueupError(f"cannot read config: {exc.strerror}", path) from None
            for key, value in data.items():
                if key not in known:
                    raise TrueupError(f"unknown setting {key!r}; settings: "
                                      f"{', '.join(known)}", path)
                cfg.set(key, value, path)
        for key in known:
            value = environ.get(f"TRUEUP_{key.upper()}")
            if value is not None:
                cfg.set(key, value, f"TRUEUP_{key.upper()}")
        if not cfg.state_dir:
            cfg.state_dir = default_state_dir()
        return cfg

    def set(self, key: str, value: Any, origin: str) -> None:
        current = getattr(self, key)
        try:
            if isinstance(current, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true")
            elif isinstance(current, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            else:
                value = str(value)
        except (TypeError, ValueError):
            raise TrueupError(f"{key} must be a {type(current).__name__}, not {value!r}",
                              origin) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise TrueupError(f"{key} must be a finite number of seconds, not {value!r}",
                              origin)
        setattr(self, key, value)
