"""A splay that is not a finite number of seconds is refused, on the flag and in config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import write_bundle


def one_file_bundle(tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "target"
    bundle = write_bundle(tmp_path / "bundle",
                          {"r": f'resources:\n  - file: "{target}"\n    content: "x\\n"\n'},
                          runlist="r")
    return bundle, target


def assert_refused_in_one_line(result, target: Path, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not target.exists(), "the run went ahead"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "infinity"])
def test_splay_flag_that_is_not_finite_is_refused(tmp_path, trueup, value):
    bundle, target = one_file_bundle(tmp_path)
    result = trueup("run", str(bundle), f"--splay={value}", timeout=30)
    assert_refused_in_one_line(result, target, "--splay", "finite")


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_splay_from_the_environment_that_is_not_finite_is_refused(tmp_path, trueup, value):
    bundle, target = one_file_bundle(tmp_path)
    result = trueup("run", str(bundle), env={"TRUEUP_SPLAY": value}, timeout=30)
    assert_refused_in_one_line(result, target, "TRUEUP_SPLAY", "finite")


@pytest.mark.parametrize("value", ["nan", "inf", "+inf"])
def test_splay_in_the_config_file_that_is_not_finite_is_refused(tmp_path, trueup, env, value):
    bundle, target = one_file_bundle(tmp_path)
    Path(env["TRUEUP_CONFIG"]).write_text(f"splay = {value}\n")
    result = trueup("run", str(bundle), timeout=30)
    assert_refused_in_one_line(result, target, env["TRUEUP_CONFIG"], "splay", "finite")


def test_lock_timeout_that_is_not_finite_is_refused(tmp_path, trueup):
    bundle, target = one_file_bundle(tmp_path)
    result = trueup("run", str(bundle), "--lock-timeout", "nan", timeout=30)
    assert_refused_in_one_line(result, target, "--lock-timeout", "finite")
