"""trueup's AWS clients: one factory (retries, timeouts, region, call counting), error
mapping and pagination. This package is the only one that imports boto3, lazily, so a
run from a folder never loads it.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from agent.errors import TrueupError, Unreachable

DEFAULT_MAX_ATTEMPTS = 5
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 20
THROTTLING = {"Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
              "TooManyRequestsException", "RequestThrottled", "SlowDown",
              "RequestThrottledException", "ProvisionedThroughputExceededException"}

_clients: dict[str, Any] = {}
_lock = threading.Lock()


class AwsStats:
    """Every AWS call of this process: API calls by operation, HTTP attempts, retries."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.attempts = 0

    def call(self, operation: str) -> None:
        self.calls[operation] += 1

    def attempt(self) -> None:
        self.attempts += 1

    @property
    def retries(self) -> int:
        return max(0, self.attempts - sum(self.calls.values()))

    def as_dict(self) -> dict[str, Any]:
        return {"calls": dict(sorted(self.calls.items())), "requests": self.attempts,
                "retries": self.retries}


STATS = AwsStats()


# --------------------------------------------------------------------------- clients


def client(service: str) -> Any:
    """A boto3 client for ``service`` with trueup's retry policy, counted in ``STATS``.

    Retries: botocore's ``standard`` mode (exponential backoff with full jitter) with
    5 attempts; ``AWS_RETRY_MODE=adaptive`` adds client-side rate limiting and
    ``AWS_MAX_ATTEMPTS`` changes the attempts. The region comes from the usual AWS
    configuration, else from IMDS (botocore never asks IMDS for it).
    """
    with _lock:
        found = _clients.get(service)
        if found is not None:
            return found
        from agent import logs

        logs.setup()  # before botocore can log anything
        import boto3
        from botocore.config import Config

        session = boto3.session.Session()
        config = Config(
            retries={"mode": os.environ.get("AWS_RETRY_MODE") or "standard",
                     "total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS")
                                         or DEFAULT_MAX_ATTEMPTS)},
            connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
            user_agent_extra="trueup")
        made = session.client(service, region_name=_region(session), config=config)
        made.meta.events.register("before-call", _count_call)
        made.meta.events.register("request-created", _count_attempt)
        _clients[service] = made
        return made


def _region(session: Any) -> str:
    """AWS_REGION (older botocore releases ignore it), else the usual AWS
    configuration (AWS_DEFAULT_REGION, the config file), else IMDS."""
    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"]
    if session.region_name:
        return str(session.region_name)
    from agent.aws import imds

    try:
        return imds.region()
    except imds.ImdsError as exc:
        raise TrueupError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or run on "
                          f"EC2 where IMDS tells it ({exc})") from None


def _count_call(model: Any = None, **_: Any) -> None:
    STATS.call(f"{model.service_model.service_name}:{model.name}")


def _count_attempt(**_: Any) -> None:
    STATS.attempt()


def call(fn: Callable[..., Any], what: str, **kwargs: Any) -> Any:
    """``fn(**kwargs)`` with AWS errors turned into Unreachable or TrueupError."""
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as AwsConnectionError

    try:
        return fn(**kwargs)
    except (AwsConnectionError, HTTPClientError) as exc:
        raise Unreachable(f"{what}: {exc}") from None
    except ClientError as exc:
        code, status, message = error_parts(exc)
        if code in THROTTLING or status >= 500:
            raise Unreachable(f"{what}: {code} (HTTP {status}) after retries") from None
        raise TrueupError(f"{what}: {code}: {message}") from None
    except BotoCoreError as exc:
        raise TrueupError(f"{what}: {exc}") from None


def error_parts(exc: Any) -> tuple[str, int, str]:
    """(error code, HTTP status, message) of a botocore ClientError."""
    err = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return str(err.get("Code") or status), status, str(err.get("Message") or "")


def pages(fn: Callable[..., Any], what: str, token: str = "NextToken",  # noqa: S107
          **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every page of a paginated call, each through :func:`call`, following ``token``."""
    while True:
        page = call(fn, what, **kwargs)
        yield page
        nxt = page.get(token)
        if not nxt:
            return
        kwargs[token] = nxt


def status_of(fn: Callable[..., Any], *statuses: int) -> Callable[..., Any]:
    """``fn`` that returns None instead of raising for a ClientError with one of ``statuses``
    (404 for a missing object, 304 for an unchanged one)."""

    def wrapped(**kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            if error_parts(exc)[1] in statuses:
                return None
            raise

    return wrapped


def object_sha256(bucket: str, key: str) -> str | None:
    """The ``sha256`` metadata of ``s3://bucket/key``; None when the object does not exist."""
    s3 = client("s3")
    found = call(status_of(s3.head_object, 404), f"s3 HeadObject s3://{bucket}/{key}",
                 Bucket=bucket, Key=key)
    return None if found is None else found.get("Metadata", {}).get("sha256")


def read_body(resp: Any, what: str, limit: int, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """The chunks of a GetObject body, at most ``limit`` bytes; a broken stream is
    :class:`Unreachable`, an oversized one a TrueupError."""
    from botocore.exceptions import BotoCoreError

    size = 0
    try:
        for part in resp["Body"].iter_chunks(chunk):
            size += len(part)
            if size > limit:
                raise TrueupError(f"{what} is larger than {limit} bytes; refused")
            yield part
    except (BotoCoreError, OSError) as exc:
        raise Unreachable(f"{what}: download failed: {exc}") from None
