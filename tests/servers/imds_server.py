"""A real IMDSv2 HTTP server for tests: token PUT required, metadata, identity document, tags.

It runs ``http.server`` in a thread on 127.0.0.1 with an ephemeral port. Point clients at it
with ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (botocore's variable, also read by agent.aws.imds).
Every request is recorded, so a test can assert that one token served a whole process.

Behaviour, as on EC2 with ``HttpTokens=required``:

- ``PUT /latest/api/token`` needs ``X-aws-ec2-metadata-token-ttl-seconds`` (1-21600),
  else 400; a request carrying ``X-Forwarded-For`` gets 403.
- Every GET needs a valid, unexpired ``X-aws-ec2-metadata-token``, else 401
  (unless ``allow_v1`` is set).
- ``tags/instance`` answers 404 while ``tags_enabled`` is False, as when the instance
  has ``InstanceMetadataTags=disabled``.
- ``token_mode`` simulates broken token requests: ``"ok"``, ``"refuse"`` (answer
  ``token_status``) or ``"hang"`` (accept the connection, never answer: what a too-low
  PUT response hop limit looks like from a container).

Example:
    with ImdsServer(tags={"trueup:env": "prod"}) as server:
        os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server.endpoint
        ...
        assert server.token_puts == 1
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

TOKEN_PATH = "/latest/api/token"
META = "/latest/meta-data"
IDENTITY_PATH = "/latest/dynamic/instance-identity/document"
MAX_TTL = 21600


@dataclass(frozen=True)
class ImdsRequest:
    """One request the fake IMDS received."""

    method: str
    path: str
    token: str | None
    status: int


@dataclass
class ImdsServer:
    """An IMDSv2 stand-in whose answers are the fields below; change them at any time."""

    instance_id: str = "i-0123456789abcdef0"
    instance_type: str = "t3.micro"
    ami_id: str = "ami-0123456789abcdef0"
    region: str = "eu-west-1"
    availability_zone: str = "eu-west-1a"
    account_id: str = "123456789012"
    private_ip: str | None = "10.0.1.23"
    architecture: str = "x86_64"
    role_name: str | None = "trueup-agent"
    instance_profile: str = "trueup-agent-profile"
    tags: dict[str, str] = field(
        default_factory=lambda: {"Name": "web-1", "trueup:env": "prod", "trueup:role": "web"}
    )
    tags_enabled: bool = True
    token_mode: str = "ok"
    token_status: int = 401
    allow_v1: bool = False
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[ImdsRequest] = []
        self._tokens: dict[str, float] = {}
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> ImdsServer:
        """Bind an ephemeral port on ``host`` and serve in a daemon thread."""
        self._stopping.clear()
        handler = type("Handler", (_Handler,), {"imds": self})
        self._httpd = _Server((self.host, 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="fake-imds", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release any request held by ``token_mode="hang"``."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> ImdsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._httpd is not None, "call start() first"
        return int(self._httpd.server_address[1])

    @property
    def endpoint(self) -> str:
        """Base URL, the value for ``AWS_EC2_METADATA_SERVICE_ENDPOINT``."""
        return f"http://{self.host}:{self.port}"

    # ---------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[ImdsRequest]:
        """A copy of every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def token_puts(self) -> int:
        """How many token PUTs were received."""
        return sum(1 for r in self.requests if r.method == "PUT" and r.path == TOKEN_PATH)

    @property
    def gets(self) -> list[ImdsRequest]:
        """Every GET received so far."""
        return [r for r in self.requests if r.method == "GET"]

    @property
    def tokens_issued(self) -> list[str]:
        """Every token handed out, oldest first."""
        with self._lock:
            return list(self._tokens)

    def clear(self) -> None:
        """Forget the recorded requests (tokens stay valid)."""
        with self._lock:
            self._requests.clear()

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far: the next GET with one gets 401."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = 0.0

    # ---------------------------------------------------------------- content

    def identity_document(self) -> dict[str, Any]:
        """The document served at ``/latest/dynamic/instance-identity/document``."""
        return {
            "accountId": self.account_id,
            "architecture": self.architecture,
            "availabilityZone": self.availability_zone,
            "billingProducts": None,
            "devpayProductCodes": None,
            "marketplaceProductCodes": None,
            "imageId": self.ami_id,
            "instanceId": self.instance_id,
            "instanceType": self.instance_type,
            "kernelId": None,
            "pendingTime": "2026-01-01T00:00:00Z",
            "privateIp": self.private_ip,
            "ramdiskId": None,
            "region": self.region,
            "version": "2017-09-30",
        }

    def _leaves(self) -> dict[str, str]:
        leaves = {
            "instance-id": self.instance_id,
            "instance-type": self.instance_type,
            "ami-id": self.ami_id,
            "placement/region": self.region,
            "placement/availability-zone": self.availability_zone,
            "hostname": f"ip-{(self.private_ip or '0.0.0.0').replace('.', '-')}.internal",
        }
        if self.private_ip:
            leaves["local-ipv4"] = self.private_ip
        if self.role_name:
            leaves["iam/info"] = json.dumps(
                {
                    "Code": "Success",
                    "LastUpdated": "2026-01-01T00:00:00Z",
                    "InstanceProfileArn": (
                        f"arn:aws:iam::{self.account_id}:instance-profile/{self.instance_profile}"
                    ),
                    "InstanceProfileId": "AIPAEXAMPLEEXAMPLE0001",
                }
            )
            leaves[f"iam/security-credentials/{self.role_name}"] = json.dumps(
                {
                    "Code": "Success",
                    "LastUpdated": "2026-01-01T00:00:00Z",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": "ASIAFAKEIMDSKEY00001",
                    "SecretAccessKey": "fake-imds-secret-key",
                    "Token": "fake-imds-session-token",
                    "Expiration": "2099-01-01T00:00:00Z",
                }
            )
        return leaves

    def answer(self, path: str) -> str | None:
        """The body for a GET of ``path`` (already authorised), or None for 404."""
        if path == IDENTITY_PATH:
            return json.dumps(self.identity_document(), indent=2)
        if not (path == META or path.startswith(META + "/")):
            return None
        rel = path[len(META) :].strip("/")
        if rel == "tags/instance" or rel.startswith("tags/instance/"):
            if not self.tags_enabled:
                return None
            if rel == "tags/instance":
                return "\n".join(self.tags)
            return self.tags.get(unquote(rel[len("tags/instance/") :]))
        leaves = self._leaves()
        if rel in leaves:
            return leaves[rel]
        # A folder: list its children, folders with a trailing slash, as IMDS does.
        prefix = f"{rel}/" if rel else ""
        children: list[str] = []
        names = list(leaves) + (["tags/instance"] if self.tags_enabled else [])
        for name in names:
            if name.startswith(prefix):
                head, sep, _ = name[len(prefix) :].partition("/")
                entry = head + ("/" if sep else "")
                if entry not in children:
                    children.append(entry)
        return "\n".join(children) if children else None

    # ---------------------------------------------------------------- token logic

    def _issue_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return token

    def _valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and time.monotonic() < expires

    def _record(self, method: str, path: str, token: str | None, status: int) -> None:
        with self._lock:
            self._requests.append(ImdsRequest(method, path, token, status))


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops concurrent connections
    daemon_threads = True
    block_on_close = False  # keep-alive clients (botocore) must not delay stop()


class _Handler(BaseHTTPRequestHandler):
    """Request handler; ``imds`` is set on a per-server subclass."""

    imds: ImdsServer
    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Stay quiet: tests read ``ImdsServer.requests`` instead."""

    def _send(self, status: int, body: str = "", content_type: str = "text/plain") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _path(self) -> str:
        return urlsplit(self.path).path

    def do_PUT(self) -> None:  # noqa: N802 - http.server naming
        """Token requests."""
        server = self.imds
        path = self._path()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if path != TOKEN_PATH:
            status = 405 if path.startswith("/latest/") else 404
            server._record("PUT", path, None, status)
            self._send(status)
            return
        if server.token_mode == "hang":
            server._record("PUT", path, None, 0)
            server._stopping.wait(30)  # the client's read timeout fires first
            self.close_connection = True
            return
        if server.token_mode == "refuse":
            server._record("PUT", path, None, server.token_status)
            self._send(server.token_status)
            return
        if self.headers.get("X-Forwarded-For"):
            server._record("PUT", path, None, 403)
            self._send(403)
            return
        ttl_text = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        try:
            ttl = int(ttl_text)
        except ValueError:
            ttl = 0
        if not 1 <= ttl <= MAX_TTL:
            server._record("PUT", path, None, 400)
            self._send(400)
            return
        token = server._issue_token(ttl)
        server._record("PUT", path, token, 200)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(token)))
        self.send_header("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))
        self.end_headers()
        self.wfile.write(token.encode("ascii"))

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        """Metadata reads."""
        server = self.imds
        path = self._path()
        token = self.headers.get("X-aws-ec2-metadata-token")
        if not server._valid(token) and not (server.allow_v1 and token is None):
            server._record("GET", path, token, 401)
            self._send(401)
            return
        body = server.answer(path)
        status = 200 if body is not None else 404
        server._record("GET", path, token, status)
        if body is None:
            self._send(404, "<title>404 - Not Found</title>", "text/html")
        else:
            self._send(200, body, "application/json" if body.startswith("{") else "text/plain")
