"""Property: for any declared tree, one run converges it and a second run changes nothing."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.aws.secrets import SecretStore
from agent.compile.loader import Bundle
from agent.compile.prepare import Options, prepare
from agent.config import Config
from agent.engine.backups import Backups
from agent.engine.runner import Runner
from agent.host.facts import Facts
from agent.host.system import System
from tests.helpers import snapshot

names = st.text(alphabet="abcdefgh", min_size=1, max_size=4)
# any printable text (recipe values are Jinja, so no braces), plus newlines and tabs
contents = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="{}")
                   | st.sampled_from("\n\t"), max_size=200)
modes = st.sampled_from(["0600", "0640", "0644", "0755", "0700"])


@st.composite
def trees(draw):
    dirs = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    resources = []
    for d in dirs:
        resources.append({"directory": f"{{root}}/{d}", "mode": draw(modes)})
    files = draw(st.lists(st.tuples(st.sampled_from(dirs), names), max_size=8,
                          unique_by=lambda t: t))
    for d, f in files:
        res = {"file": f"{{root}}/{d}/{f}.txt", "content": draw(contents)}
        if draw(st.booleans()):
            res["mode"] = draw(modes)
        resources.append(res)
    if files and draw(st.booleans()):
        d, f = files[0]
        resources.append({"link": f"{{root}}/{d}/link", "to": f"{{root}}/{d}/{f}.txt"})
    return resources


def _run(bundle: Path, state: Path, noop: bool = False):
    prepared = prepare(Options(source=str(bundle), runlist="p"), Config(state_dir=str(state)),
                       Bundle(str(bundle)), System(), Backups(str(state / "backup")), Facts(),
                       SecretStore())
    return Runner(prepared.catalog, System(), noop=noop).run()


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_converge_is_idempotent(resources):
    work = Path(tempfile.mkdtemp())
    try:
        root = work / "root"
        bundle = work / "bundle"
        (bundle / "p").mkdir(parents=True)
        text = json.dumps({"resources": resources}, ensure_ascii=False).replace("{root}", str(root))
        (bundle / "p" / "recipe.yml").write_text(text)
        planned = _run(bundle, work / "state", noop=True)
        assert not root.exists()
        first = _run(bundle, work / "state")
        assert [r.status for r in first] == [r.status for r in planned]
        assert all(r.status == "changed" for r in first), [r.error for r in first]
        converged = snapshot(root)
        second = _run(bundle, work / "state")
        assert all(r.status == "unchanged" for r in second)
        assert snapshot(root) == converged
    finally:
        shutil.rmtree(work)
