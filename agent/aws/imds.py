"""IMDSv2 client on the standard library only: instance facts in milliseconds, or a fast "no".

The agent reads instance facts from the EC2 instance metadata service (IMDS), version 2
only: one ``PUT /latest/api/token`` gives a session token, which every ``GET`` then carries
in ``X-aws-ec2-metadata-token``. A process fetches one token and reuses it until it nears
its TTL (or IMDS rejects it with 401). boto3 is not used: it is slow to import and has no
public API for the identity document or the instance tags.

Off EC2 the answer has to come fast: connections time out after ``connect_timeout``
(0.5 s by default), a failed call is retried at most once, and once the token request has
failed the failure is remembered by the client, so later calls raise at once. Proxies
(``HTTP_PROXY``...) are never used, as for botocore's own IMDS fetcher.

Configuration, from the environment (botocore's variable names):

- ``AWS_EC2_METADATA_SERVICE_ENDPOINT``: base URL, default ``http://169.254.169.254``
  (``http://[fd00:ec2::254]`` if ``AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6``).
- ``AWS_EC2_METADATA_DISABLED=true``: every call raises ``ImdsUnavailable`` without
  touching the network.

Example:
    >>> from agent import imds
    >>> imds.ec2_facts()["region"]
    'eu-west-1'
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_ENDPOINT_IPV6",
    "ImdsClient",
    "ImdsError",
    "ImdsUnavailable",
    "default_client",
    "ec2_facts",
    "region",
    "reset_default_client",
]

DEFAULT_ENDPOINT = "http://169.254.169.254"
DEFAULT_ENDPOINT_IPV6 = "http://[fd00:ec2::254]"
TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a URL path, not a secret
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"  # noqa: S105
TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105
DEFAULT_TOKEN_TTL = 21600  # seconds, the IMDS maximum
_TOKEN_REFRESH_MARGIN = 60.0  # refresh a token this long before it expires
_MAX_BODY = 1024 * 1024

#: Characters IMDS allows in instance tag keys when tags are exposed in metadata.
_TAG_KEY_SAFE = "+-=.,_:@"


class ImdsError(Exception):
    """IMDS answered, but not with what was asked (bad status, unparsable document)."""


class ImdsUnavailable(ImdsError):
    """IMDS cannot be used: not on EC2, disabled, unreachable, or the token was refused.

    The message says which, and what to do about it (for example the PUT response hop
    limit when the agent runs in a container).
    """


class _Unreachable(Exception):
    """Internal: a network-level failure (refused, timed out, reset)."""

    def __init__(self, message: str, *, timed_out: bool, connected: bool):
        super().__init__(message)
        self.timed_out = timed_out
        self.connected = connected


def _env_true(name: str, env: Mapping[str, str]) -> bool:
    return env.get(name, "").strip().lower() == "true"


def endpoint_from_env(env: Mapping[str, str] | None = None) -> str:
    """Return the IMDS base URL configured by botocore's environment variables."""
    env = os.environ if env is None else env
    endpoint = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "").strip()
    if endpoint:
        return endpoint.rstrip("/")
    if env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "").strip().lower() == "ipv6":
        return DEFAULT_ENDPOINT_IPV6
    return DEFAULT_ENDPOINT


class ImdsClient:
    """An IMDSv2 client holding one session token for its lifetime.

    Args:
        endpoint: base URL (``http://host[:port]``); default from the environment.
        connect_timeout: seconds to wait for the TCP connection.
        read_timeout: seconds to wait for each answer once connected.
        retries: extra attempts after a network failure or a 5xx (0 or 1).
        token_ttl: lifetime asked for the session token, in seconds (1-21600).
        disabled: refuse every call (default: ``AWS_EC2_METADATA_DISABLED=true``).
        failure_ttl: seconds a failed token request is remembered, so that later calls
            fail at once instead of waiting for the network again.

    Example:
        >>> client = ImdsClient("http://127.0.0.1:8080", connect_timeout=0.2)
        >>> client.instance_id()
        'i-0123456789abcdef0'
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        connect_timeout: float = 0.5,
        read_timeout: float = 1.0,
        retries: int = 1,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        disabled: bool | None = None,
        failure_ttl: float = 60.0,
    ):
        self.endpoint = (endpoint or endpoint_from_env()).rstrip("/")
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImdsUnavailable(f"invalid IMDS endpoint {self.endpoint!r}: expected http://host")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = max(0, min(1, retries))
        if not 1 <= token_ttl <= DEFAULT_TOKEN_TTL:
            raise ValueError(f"token_ttl must be 1..{DEFAULT_TOKEN_TTL}, got {token_ttl}")
        self.token_ttl = token_ttl
        if disabled is None:
            disabled = _env_true("AWS_EC2_METADATA_DISABLED", os.environ)
        self.disabled = disabled
        self.failure_ttl = failure_ttl
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._failure: ImdsUnavailable | None = None
        self._failure_until = 0.0
        self._identity: dict[str, Any] | None = None
        #: Number of token PUTs this client made (for diagnostics and tests).
        self.token_requests = 0

    # ------------------------------------------------------------------ transport

    def _request(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """One HTTP exchange, no retry; network failures raise ``_Unreachable``."""
        conn_class = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_class(self._host, self._port, timeout=self.connect_timeout)
        connected = False
        try:
            conn.connect()
            connected = True
            if conn.sock is not None:
                conn.sock.settimeout(self.read_timeout)
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            body = resp.read(_MAX_BODY)
            return resp.status, body
        except TimeoutError as exc:
            phase = "answer" if connected else "connection"
            raise _Unreachable(
                f"{method} {path}: no {phase} within "
                f"{self.read_timeout if connected else self.connect_timeout}s ({exc})",
                timed_out=True,
                connected=connected,
            )
        except (OSError, http.client.HTTPException) as exc:
            raise _Unreachable(
                f"{method} {path}: {exc.__class__.__name__}: {exc}",
                timed_out=False,
                connected=connected,
            )
        finally:
            conn.close()

    def _with_retry(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """``_request`` with at most ``retries`` extra attempts on network errors and 5xx."""
        attempt = 0
        while True:
            try:
                status, body = self._request(method, path, headers)
            except _Unreachable:
                if attempt >= self.retries:
                    raise
            else:
                if status < 500 or attempt >= self.retries:
                    return status, body
            attempt += 1

    # ------------------------------------------------------------------ token

    def token(self) -> str:
        """Return the session token, fetching it on first use or when it nears expiry.

        Raises:
            ImdsUnavailable: IMDS is disabled, unreachable, or refused the token.
        """
        with self._lock:
            if self._failure is not None and time.monotonic() < self._failure_until:
                raise self._failure
            if self._token is not None and time.monotonic() < self._token_expires:
                return self._token
            try:
                self._token = self._fetch_token()
            except ImdsUnavailable as exc:
                self._failure = exc
                self._failure_until = time.monotonic() + self.failure_ttl
                raise
            self._failure = None
            self._token_expires = time.monotonic() + max(
                1.0, self.token_ttl - _TOKEN_REFRESH_MARGIN
            )
            return self._token

    def _fetch_token(self) -> str:
        where = f"IMDS at {self.endpoint}"
        if self.disabled:
            raise ImdsUnavailable(f"{where} not used: AWS_EC2_METADATA_DISABLED=true")
        self.token_requests += 1
        try:
            status, body = self._with_retry(
                "PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(self.token_ttl)}
            )
        except _Unreachable as exc:
            if exc.connected and exc.timed_out:
                raise ImdsUnavailable(
                    f"{where} accepted the connection but never answered the token PUT "
                    f"({exc}). On EC2 this usually means the PUT response hop limit is too "
                    "low for where trueup runs (a container adds a hop): raise it with "
                    "'aws ec2 modify-instance-metadata-options --instance-id ID "
                    "--http-put-response-hop-limit 2'"
                )
            raise ImdsUnavailable(f"{where} is unreachable ({exc}): not on EC2?")
        if status == 200 and body.strip():
            return body.decode("ascii", "replace").strip()
        raise ImdsUnavailable(f"{where} refused the token PUT: {self._explain_put(status)}")

    @staticmethod
    def _explain_put(status: int) -> str:
        reasons = {
            400: "HTTP 400, the TTL header is missing or out of range",
            401: (
                "HTTP 401; IMDSv2 token requests are being rejected: check the instance "
                "metadata options (HttpTokens, HttpPutResponseHopLimit) and that no proxy "
                "sits in between"
            ),
            403: (
                "HTTP 403; the metadata endpoint is disabled on this instance "
                "(HttpEndpoint=disabled) or the request went through a proxy "
                "(X-Forwarded-For is refused)"
            ),
            404: "HTTP 404; this endpoint does not offer IMDSv2 tokens",
            405: "HTTP 405; this endpoint does not accept PUT (not an IMDSv2 service)",
        }
        return reasons.get(status, f"HTTP {status}")

    # ------------------------------------------------------------------ reads

    def get(self, path: str) -> str | None:
        """GET a metadata path (``/latest/...``) with the token; None if it does not exist (404).

        A 401 means the token expired or was revoked: a new one is fetched and the request
        sent once more.

        Raises:
            ImdsUnavailable: no token could be had, or IMDS stopped answering.
            ImdsError: any status other than 200 and 404.
        """
        if not path.startswith("/"):
            path = "/" + path
        for refreshed in (False, True):
            token = self.token()
            try:
                status, body = self._with_retry("GET", path, {TOKEN_HEADER: token})
            except _Unreachable as exc:
                raise ImdsUnavailable(f"IMDS at {self.endpoint} stopped answering: {exc}")
            if status == 200:
                return body.decode("utf-8", "replace")
            if status == 404:
                return None
            if status == 401 and not refreshed:
                with self._lock:
                    if self._token == token:
                        self._token = None
                continue
            break
        raise ImdsError(f"IMDS GET {path}: HTTP {status}")

    def _get_required(self, path: str) -> str:
        value = self.get(path)
        if value is None:
            raise ImdsError(f"IMDS GET {path}: HTTP 404")
        return value.strip()

    def identity_document(self) -> dict[str, Any]:
        """Return the instance identity document (cached): accountId, region, imageId..."""
        if self._identity is None:
            text = self._get_required("/latest/dynamic/instance-identity/document")
            try:
                doc = json.loads(text)
            except ValueError as exc:
                raise ImdsError(f"unparsable instance identity document: {exc}")
            if not isinstance(doc, dict):
                raise ImdsError("unparsable instance identity document: not a JSON object")
            self._identity = doc
        return self._identity

    def instance_id(self) -> str:
        """Return the instance id (``i-...``)."""
        return self._get_required("/latest/meta-data/instance-id")

    def instance_type(self) -> str:
        """Return the instance type (``t3.micro``)."""
        return self._get_required("/latest/meta-data/instance-type")

    def ami_id(self) -> str:
        """Return the id of the AMI the instance was launched from."""
        return self._get_required("/latest/meta-data/ami-id")

    def region(self) -> str:
        """Return the region (``placement/region``, else the identity document's)."""
        value = self.get("/latest/meta-data/placement/region")
        if value and value.strip():
            return value.strip()
        return str(self.identity_document()["region"])

    def availability_zone(self) -> str:
        """Return the availability zone (``eu-west-1a``)."""
        return self._get_required("/latest/meta-data/placement/availability-zone")

    def account_id(self) -> str:
        """Return the AWS account id, from the identity document."""
        try:
            return str(self.identity_document()["accountId"])
        except KeyError:
            raise ImdsError("instance identity document has no accountId")

    def private_ip(self) -> str | None:
        """Return the primary private IPv4 address, or None (IPv6-only instance)."""
        value = self.get("/latest/meta-data/local-ipv4")
        return value.strip() if value and value.strip() else None

    def iam_role(self) -> str | None:
        """Return the name of the instance profile's IAM role, or None without a profile."""
        listing = self.get("/latest/meta-data/iam/security-credentials/")
        names = [line.strip() for line in (listing or "").splitlines() if line.strip()]
        return names[0] if names else None

    def instance_profile_arn(self) -> str | None:
        """Return the instance profile ARN from ``iam/info``, or None without a profile."""
        text = self.get("/latest/meta-data/iam/info")
        if not text:
            return None
        try:
            info = json.loads(text)
        except ValueError:
            return None
        arn = info.get("InstanceProfileArn") if isinstance(info, dict) else None
        return str(arn) if arn else None

    def tags(self) -> dict[str, str] | None:
        """Return the instance tags, or None when tags are not exposed in metadata.

        Tags are only in IMDS if the instance has ``InstanceMetadataTags=enabled``;
        otherwise ``tags/instance`` is a 404 and the caller should fall back to
        ``ec2:DescribeTags``.
        """
        listing = self.get("/latest/meta-data/tags/instance")
        if listing is None:
            return None
        result: dict[str, str] = {}
        for key in (line.strip() for line in listing.splitlines()):
            if not key:
                continue
            value = self.get(f"/latest/meta-data/tags/instance/{quote(key, safe=_TAG_KEY_SAFE)}")
            if value is not None:
                result[key] = value
        return result

    def facts(self) -> dict[str, Any]:
        """Gather every fact; see ``ec2_facts`` for the keys."""
        doc = self.identity_document()

        def pick(key: str, fallback: Any) -> Any:
            value = doc.get(key)
            return str(value) if value else fallback()

        return {
            "instance_id": pick("instanceId", self.instance_id),
            "instance_type": pick("instanceType", self.instance_type),
            "ami_id": pick("imageId", self.ami_id),
            "region": pick("region", self.region),
            "availability_zone": pick("availabilityZone", self.availability_zone),
            "account_id": pick("accountId", self.account_id),
            "private_ip": pick("privateIp", self.private_ip),
            "architecture": doc.get("architecture"),
            "iam_role": self.iam_role(),
            "instance_profile_arn": self.instance_profile_arn(),
            "tags": self.tags(),
        }


# ---------------------------------------------------------------------- process-wide client

_default_lock = threading.Lock()
_default: ImdsClient | None = None


def default_client() -> ImdsClient:
    """Return the process-wide client, so the whole process shares one token.

    A new client is made if the endpoint or ``AWS_EC2_METADATA_DISABLED`` changed in the
    environment since the last call.
    """
    global _default
    endpoint = endpoint_from_env()
    disabled = _env_true("AWS_EC2_METADATA_DISABLED", os.environ)
    with _default_lock:
        if _default is None or _default.endpoint != endpoint or _default.disabled != disabled:
            _default = ImdsClient(endpoint, disabled=disabled)
        return _default


def reset_default_client() -> None:
    """Forget the process-wide client (its token and any remembered failure)."""
    global _default
    with _default_lock:
        _default = None


def region(client: ImdsClient | None = None) -> str:
    """Return the instance's region (botocore never derives it from IMDS on its own)."""
    return (client or default_client()).region()


def ec2_facts(client: ImdsClient | None = None) -> dict[str, Any]:
    """Return every instance fact IMDS offers, with one token for all requests.

    Returns:
        A dict shaped like::

            {"instance_id": "i-0abc...", "instance_type": "t3.micro",
             "ami_id": "ami-0abc...", "region": "eu-west-1",
             "availability_zone": "eu-west-1a", "account_id": "123456789012",
             "private_ip": "10.0.1.23", "architecture": "x86_64",
             "iam_role": "trueup-agent" | None,
             "instance_profile_arn": "arn:aws:iam::123456789012:instance-profile/x" | None,
             "tags": {"trueup:env": "prod", ...} | None}

        ``tags`` is None when tags are not exposed in metadata (fall back to
        ``ec2:DescribeTags``).

    Raises:
        ImdsUnavailable: not on EC2, IMDS disabled or unreachable, token refused.
        ImdsError: IMDS answered with an unexpected status or document.
    """
    return (client or default_client()).facts()
