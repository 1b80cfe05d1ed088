"""Helpers for the AWS delivery tests: a bucket on moto, publishing, reading reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO

BUCKET = "trueup-bundles"
ENV = "test"
SOURCE = f"ssm:/trueup/{ENV}"
EXAMPLE = REPO / "recipes"


@pytest.fixture
def bucket(aws) -> str:
    aws.client("s3").create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def publish(trueup, bucket) -> Callable[..., dict[str, Any]]:
    """``publish(path)`` runs ``trueup publish`` and returns the pointer it printed."""

    def call(path: Path | str = EXAMPLE, *extra: str) -> dict[str, Any]:
        out = trueup("publish", str(path), "--bucket", bucket, "--env", ENV, *extra)
        assert out.returncode == 0, out.stdout + out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    return call


def last_report(env: dict[str, str]) -> dict[str, Any]:
    return json.loads((Path(env["TRUEUP_STATE_DIR"]) / "reports" / "last_run.json").read_text())


def ssm_put(aws, name: str, value: str, kind: str = "String") -> None:
    aws.client("ssm").put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)


def state_snapshot(env: dict[str, str]) -> dict[str, bytes]:
    """Every file of the bundle cache and the source records (not reports)."""
    root = Path(env["TRUEUP_STATE_DIR"])
    out = {}
    for sub in ("bundles", "sources"):
        for path in sorted((root / sub).rglob("*")):
            if path.is_file():
                out[str(path.relative_to(root))] = path.read_bytes()
    return out
