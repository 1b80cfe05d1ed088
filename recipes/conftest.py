"""Fixtures for the recipes' own testinfra checks (``<recipe>/tests/test_*.py``).

``host`` is testinfra's host (``--hosts``, default the local machine). ``attributes``
is what the recipes declared, merged like a run does; ``TRUEUP_TEST_ATTRIBUTES``
(a JSON object) overrides it to match a run that used ``-a`` or a node file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.compile.attributes import merge_all
from agent.compile.loader import Bundle, expand_runlist

BUNDLE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def attributes() -> dict:
    bundle = Bundle(str(BUNDLE))
    recipes = expand_runlist(bundle, bundle.names(), "recipes")
    layers = [r.attributes for r in recipes]
    extra = os.environ.get("TRUEUP_TEST_ATTRIBUTES")
    if extra:
        layers.append(json.loads(extra))
    return merge_all(layers)
