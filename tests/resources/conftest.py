"""A resource context rooted in the test's scratch folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.engine.backups import Backups
from agent.host.system import System
from agent.resources import Context


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    """What a resource needs beyond its spec; backups go to tmp_path/backups."""

    def no_templates(*args: object) -> str:
        raise AssertionError("this kind renders no template")

    return Context(str(tmp_path), "r", no_templates, Backups(str(tmp_path / "backups")),
                   System())
