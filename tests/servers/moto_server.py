"""moto in server mode as the AWS stand-in, in its own process, with a request log by operation.

``MotoServer`` (used by the test process) starts this very file as a subprocess:
``python moto_server.py --host 127.0.0.1 --port 0 --port-file F --parent-pid P``. The child
serves moto's WSGI application (``DomainDispatcherApplication``, what ``moto_server`` runs)
in a threaded werkzeug server, wrapped in ``RequestRecorder``: a WSGI middleware that
notes every AWS request that reaches moto as (service, operation, method, path, query,
headers, status) before passing it on. The test process reads that log over HTTP:

- ``GET /_trueup/requests`` returns ``{"requests": [...]}``;
- ``DELETE /_trueup/requests`` clears it;
- ``GET /_trueup/ping`` answers ``ok`` (readiness).

``/moto-api/*`` calls (reset, config) are not recorded. The operation name is botocore's
(``GetParameter``, ``GetObject``, ``DescribeTags``): from ``X-Amz-Target`` for JSON
protocols, from ``Action`` for query protocols, and from method, path and query for S3.

Why a subprocess rather than ``ThreadedMotoServer`` in the test process: moto's import and
backends (about 200 MiB after SSM loads) stay out of pytest, a moto crash cannot take the
test run down, and it is what AWS-EMULATION.md measured. The child exits by itself if its
parent dies, so no moto process outlives the test run.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

CONTROL_PREFIX = "/_trueup/"
DEFAULT_REGION = "us-east-1"
DUMMY_KEY_ID = "testing"
DUMMY_SECRET = "testing"

# --------------------------------------------------------------------------- request naming

_S3_BUCKET_SUBRESOURCES = {
    "accelerate": "BucketAccelerateConfiguration",
    "acl": "BucketAcl",
    "cors": "BucketCors",
    "encryption": "BucketEncryption",
    "lifecycle": "BucketLifecycleConfiguration",
    "location": "BucketLocation",
    "logging": "BucketLogging",
    "notification": "BucketNotificationConfiguration",
    "object-lock": "ObjectLockConfiguration",
    "ownershipControls": "BucketOwnershipControls",
    "policy": "BucketPolicy",
    "policyStatus": "BucketPolicyStatus",
    "publicAccessBlock": "PublicAccessBlock",
    "replication": "BucketReplication",
    "requestPayment": "BucketRequestPayment",
    "tagging": "BucketTagging",
    "versioning": "BucketVersioning",
    "website": "BucketWebsite",
}
_S3_OBJECT_SUBRESOURCES = {
    "acl": "ObjectAcl",
    "legal-hold": "ObjectLegalHold",
    "retention": "ObjectRetention",
    "tagging": "ObjectTagging",
}


def s3_operation(
    method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]
) -> str:
    """Name the S3 REST operation of a path-style request (``/bucket/key?query``)."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, method)
    if not key:
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        if method == "HEAD":
            return "HeadBucket"
        if method == "GET":
            if query.get("list-type") == ["2"]:
                return "ListObjectsV2"
            if "versions" in query:
                return "ListObjectVersions"
            if "uploads" in query:
                return "ListMultipartUploads"
        for sub, name in _S3_BUCKET_SUBRESOURCES.items():
            if sub in query:
                return f"{verb}{name}"
        return {"GET": "ListObjects", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(
            method, f"{method} bucket"
        )
    copy = "x-amz-copy-source" in headers
    if "uploadId" in query:
        if method == "PUT":
            return "UploadPartCopy" if copy else "UploadPart"
        return {
            "GET": "ListParts",
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
        }.get(method, f"{method} upload")
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "GET" and "attributes" in query:
        return "GetObjectAttributes"
    for sub, name in _S3_OBJECT_SUBRESOURCES.items():
        if sub in query:
            return f"{verb}{name}"
    if method == "PUT":
        return "CopyObject" if copy else "PutObject"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
        method, f"{method} object"
    )


def _service_from_scope(scope: str) -> str | None:
    # Credential=AKID/20260101/us-east-1/ssm/aws4_request
    parts = scope.split("/")
    return parts[3].lower() if len(parts) == 5 else None


def describe_request(environ: dict[str, Any]) -> dict[str, Any]:
    """Describe a WSGI request as a JSON-able record; may buffer a form body (restored)."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    query_string = environ.get("QUERY_STRING", "")
    query = parse_qs(query_string, keep_blank_values=True)
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and key != "HTTP_AUTHORIZATION"
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]

    service = None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        service = _service_from_scope(auth.split("Credential=", 1)[1].split(",", 1)[0])
    elif "X-Amz-Credential" in query:
        service = _service_from_scope(query["X-Amz-Credential"][0])

    operation = None
    target = headers.get("x-amz-target")
    if target:
        operation = target.rsplit(".", 1)[-1]
    elif "Action" in query:
        operation = query["Action"][0]
    elif environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ) and "gzip" not in headers.get("content-encoding", ""):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # give moto the body back
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        operation = form.get("Action")
    if operation is None and service in (None, "s3"):
        service = "s3"
        operation = s3_operation(method, path, query, headers)
    return {
        "service": service,
        "operation": operation,
        "method": method,
        "path": path,
        "query": query_string,
        "headers": headers,
        "status": None,
        "time": time.time(),
    }


class RequestRecorder:
    """WSGI middleware: record every AWS request, answer ``/_trueup/*`` control calls."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Serve one request."""
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        record = describe_request(environ)
        with self.lock:
            self.records.append(record)

        def recording_start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            record["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, recording_start_response)
        except BaseException:
            record["status"] = 500  # werkzeug answers 500 for an exception escaping moto
            raise

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ["PATH_INFO"]
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_trueup/ping":
            body, status = b"ok", "200 OK"
        elif path == "/_trueup/requests" and method == "GET":
            with self.lock:
                body = json.dumps({"requests": self.records}).encode()
            status = "200 OK"
        elif path == "/_trueup/requests" and method == "DELETE":
            with self.lock:
                self.records.clear()
            body, status = b"{}", "200 OK"
        else:
            body, status = b"unknown control call", "404 Not Found"
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


# --------------------------------------------------------------------------- child process


def _watch_parent(parent_pid: int) -> None:
    """Exit when the test process is gone, so a killed pytest leaves no moto behind."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    """Child entry point: serve moto, wrapped in ``RequestRecorder``, until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = RequestRecorder(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True)
    port = server.server_address[1]
    os.environ["MOTO_PORT"] = str(port)  # moto builds some URLs from it
    tmp = Path(f"{args.port_file}.tmp")
    tmp.write_text(str(port))
    tmp.replace(args.port_file)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # nothing to flush: be quick
    print(f"moto server (pid {os.getpid()}) on http://{args.host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


# --------------------------------------------------------------------------- test-process side


@dataclass(frozen=True)
class MotoRequest:
    """One AWS request that reached moto. Header names are lower case."""

    service: str | None
    operation: str | None
    method: str
    path: str
    query: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    time: float = 0.0


class MotoServer:
    """Handle on a moto server subprocess with a request log.

    Args:
        log_path: where the child's stdout and stderr go (werkzeug's request log and any
            ``NotImplementedError`` traceback for an action moto lacks).
        host: interface to bind.
        region: the region ``env()`` and ``client()`` use.
        startup_timeout: seconds to wait for the server to answer.
    """

    def __init__(
        self,
        log_path: Path,
        *,
        host: str = "127.0.0.1",
        region: str = DEFAULT_REGION,
        startup_timeout: float = 30.0,
    ):
        self.log_path = Path(log_path)
        self.host = host
        self.region = region
        self.startup_timeout = startup_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> MotoServer:
        """Spawn the server and wait until it answers."""
        port_file = self.log_path.with_suffix(".port")
        port_file.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["PYTHONUNBUFFERED"] = "1"
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--host",
            self.host,
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--parent-pid",
            str(os.getpid()),
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"moto server exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            if port_file.exists():
                self.port = int(port_file.read_text())
                try:
                    if self._call("GET", "/_trueup/ping") == b"ok":
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto server did not answer within {self.startup_timeout}s")

    def stop(self) -> None:
        """Terminate the server process (this one only) and wait for it."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc else None

    @property
    def endpoint(self) -> str:
        """Base URL, the value for ``AWS_ENDPOINT_URL``."""
        return f"http://{self.host}:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server log (look here for ``NotImplementedError``)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ---------------------------------------------------------------- HTTP to the server

    def _call(self, method: str, path: str, body: bytes = b"") -> bytes:
        # http.client, not urllib: no proxy from the environment, and an explicit
        # Content-Type (a form-encoded body is swallowed by moto's Flask, see the notes).
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            headers = {"Content-Type": "text/plain"} if method in ("POST", "PUT") else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path} on moto: HTTP {resp.status}: {data[:500]!r}")
            return data
        finally:
            conn.close()

    def reset(self) -> None:
        """Wipe every moto backend, turn IAM enforcement off again, clear the request log."""
        self._call("POST", "/moto-api/reset-auth", b"inf")
        self._call("POST", "/moto-api/reset")
        self.clear_requests()

    def enforce_iam(self, after: int = 0) -> None:
        """Turn on moto's IAM enforcement after ``after`` more requests (``reset`` undoes it)."""
        self._call("POST", "/moto-api/reset-auth", str(after).encode())

    # ---------------------------------------------------------------- request log

    def requests(
        self, operation: str | None = None, *, service: str | None = None
    ) -> list[MotoRequest]:
        """The AWS requests moto received since the last reset, oldest first, optionally filtered.

        Example:
            >>> gets = aws.requests("GetObject", service="s3")
            >>> [r.status for r in gets], gets[0].headers.get("if-none-match")
            ([304], '"9a0364b9e99bb480dd25e1f0284c8555"')
        """
        data = json.loads(self._call("GET", "/_trueup/requests"))
        found = [MotoRequest(**row) for row in data["requests"]]
        return [
            r
            for r in found
            if (operation is None or r.operation == operation)
            and (service is None or r.service == service)
        ]

    def count(self, operation: str | None = None, *, service: str | None = None) -> int:
        """How many requests (of that operation / service) moto received since the last reset."""
        return len(self.requests(operation, service=service))

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._call("DELETE", "/_trueup/requests")

    # ---------------------------------------------------------------- clients

    def env(self, *, imds: bool = False) -> dict[str, str]:
        """Environment for boto3 and for subprocesses (``trueup ...``) to use this server.

        With ``imds=False``, ``AWS_EC2_METADATA_DISABLED=true`` keeps botocore from ever
        trying 169.254.169.254.
        """
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_MAX_ATTEMPTS": "1",  # moto answers unimplemented actions with a retried 500
            "AWS_RETRY_MODE": "standard",
        }
        if not imds:
            env["AWS_EC2_METADATA_DISABLED"] = "true"
        return env

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for this server that does not depend on the environment."""
        import boto3
        from botocore.config import Config

        kwargs.setdefault("endpoint_url", self.endpoint)
        kwargs.setdefault("region_name", self.region)
        kwargs.setdefault("aws_access_key_id", DUMMY_KEY_ID)
        kwargs.setdefault("aws_secret_access_key", DUMMY_SECRET)
        kwargs.setdefault("config", Config(retries={"max_attempts": 1, "mode": "standard"}))
        return boto3.session.Session().client(service, **kwargs)

    def warm_up(self) -> None:
        """Load the SSM and S3 backends once (the first SSM call costs about a second)."""
        self.client("ssm").describe_parameters()
        self.client("s3").list_buckets()
        self.reset()


if __name__ == "__main__":
    main()
