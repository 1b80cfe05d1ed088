"""What every source kind shares: the registry, the fetch context and what a fetch returns."""

from __future__ import annotations

from agent.model import Record

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any, ClassVar

REGISTRY: dict[str, type[Source]] = {}


class FetchContext(Record):
    """What a source needs to know about the run that fetches it.

    ``instance``: the agent.aws.ec2.InstanceFacts of this run (tags: role).
    """

    __slots__ = ("state_dir", "role", "event", "instance")
    DEFAULTS = {"role": "", "event": "", "instance": None}


class Fetched(Record):
    """A verified bundle folder and what the source says beside it.

    ``runlists`` maps ``""`` (the run list) or an event name to (recipe names, origin);
    ``recipes`` maps a recipe name to (recipe.yml text, origin) for recipes kept in
    Parameter Store; ``secrets`` holds decrypted SecureString values by parameter name,
    in memory only; ``secret_attributes`` lists (attribute keys, parameter name) of the
    attributes that are secrets, so they are never written to the state dir.
    """

    __slots__ = ("root", "runlists", "attributes", "attributes_origin", "recipes", "secrets",
                 "secret_attributes", "origin", "offline", "offline_reason")
    DEFAULTS = {"runlists": {}, "attributes": {}, "attributes_origin": "", "recipes": {},
                "secrets": {}, "secret_attributes": [], "origin": {}, "offline": False,
                "offline_reason": ""}


class Source:
    """Base class of every source kind.

    A kind sets ``schemes`` through the class keyword (``class S3(Source, scheme="s3")``),
    ``remote`` (whether its last verified fetch is remembered for offline runs), and
    implements ``fetch() -> Fetched``. It raises :class:`Unreachable` when AWS
    cannot be reached and ``TrueupError`` for anything else (missing object, access
    denied, bad pointer, tampered bundle).
    """

    schemes: ClassVar[tuple[str, ...]] = ()
    remote: ClassVar[bool] = True

    def __init_subclass__(cls, scheme: str | tuple[str, ...] | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if scheme is not None:
            cls.schemes = (scheme,) if isinstance(scheme, str) else tuple(scheme)
            for name in cls.schemes:
                if name in REGISTRY and REGISTRY[name] is not cls:
                    raise RuntimeError(f"source scheme {name!r} registered twice")
                REGISTRY[name] = cls

    def __init__(self, url: str, ctx: FetchContext) -> None:
        self.url = url
        self.ctx = ctx

    def fetch(self) -> Fetched:
        raise NotImplementedError
