"""Fuzz, CI seed: hostile bundles through validate, plan and run, under time and memory limits.

Each case comes from tests/fuzz/generate.py (malformed YAML, wrong types for every kind,
bombs, deep nesting, bytes, hostile templates, odd files, run lists, graphs, tarballs and
valid bundles) and is run by tests/fuzz/runner.py, one ``python -m agent`` per command.
The invariants: no traceback, exit codes in the documented set, no hang, memory under
1 GiB, validate and plan change nothing, an exit-1 run changes nothing, a valid bundle
converges and a second run has nothing left to do. A failure prints the case (seed,
index, every file of its bundle) and what each command did.

Reproduce one case: ``generate(SEED, INDEX, Path(folder))``, then run its commands, or
``python bench/fuzz.py --seed SEED --start INDEX --cases 1 --mode exec``. The long mode
(thousands of cases) is bench/fuzz.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.generate import Case, generate
from tests.fuzz.runner import Limits, ensure_pycache, run_case

SEED = 20240611
CASES = 80

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Limits:
    """20 s and 1 GiB per command; trueup compiled once into a private bytecode cache."""
    limits = Limits(timeout=20.0, pycache=str(tmp_path_factory.mktemp("pycache")))
    ensure_pycache(limits)
    return limits


@pytest.mark.parametrize("index", range(CASES))
def test_hostile_bundle(tmp_path: Path, limits: Limits, index: int) -> None:
    case = generate(SEED, index, tmp_path / "case")
    result = run_case(case, limits)
    assert not result.violations, "\n" + result.report()


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    """The same seed and index give the same bundle, byte for byte."""
    first = generate(SEED, 7, tmp_path / "a")
    second = generate(SEED, 7, tmp_path / "b")
    assert first.label == second.label and first.detail.replace("/a/", "/b/") == second.detail
    assert first.listing().replace(str(tmp_path / "a"), "X") == \
        second.listing().replace(str(tmp_path / "b"), "X")


def test_an_over_limit_case_that_is_accepted_is_a_violation(tmp_path: Path,
                                                              limits: Limits) -> None:
    """The runner's check for refused cases can fail: a converging bundle marked refused."""
    case = next(c for i in range(50)
                if (c := generate(SEED, i, tmp_path / f"c{i}", only="valid")).label
                == "valid:examples")
    case.refused = True
    result = run_case(case, limits)
    assert "validate: over-limit case not refused (exit 0)" in result.violations


def test_valid_cases_keep_to_the_limits_and_over_limit_cases_are_refused(
        tmp_path: Path, limits: Limits) -> None:
    """A depends chain one recipe over MAX_DEPENDS_DEPTH is generated as a refused case,
    and trueup refuses it with one error line; one at the limit converges."""
    from agent.compile.loader import MAX_DEPENDS_DEPTH
    found: dict[bool, Case] = {}
    for i in range(60):
        case = generate(SEED, i, tmp_path / f"r{i}", only="runlist")
        if case.label == "runlist:chain" and f"chain of {MAX_DEPENDS_DEPTH} recipes" in \
                case.detail:
            found.setdefault(True, case)
        elif case.label == "runlist:chain" and \
                f"chain of {MAX_DEPENDS_DEPTH + 1} recipes" in case.detail:
            found.setdefault(False, case)
    assert set(found) == {True, False}
    for valid, case in found.items():
        assert case.valid is valid and case.refused is not valid
        result = run_case(case, limits)
        assert not result.violations, "\n" + result.report()
