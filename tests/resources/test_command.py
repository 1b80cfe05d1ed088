"""command: a working directory that is not there is reported as such; returns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ResourceError
from agent.resources import Context
from agent.resources.command import Command


def make(ctx: Context, **spec: Any) -> Command:
    res = Command("cmd", spec, ctx)
    res.validate()
    res.prepare()
    return res


def test_a_missing_cwd_is_named(ctx: Context, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    res = make(ctx, run=["/bin/true"], cwd=str(missing))
    with pytest.raises(ResourceError,
                       match=f"^working directory {re.escape(str(missing))} does not exist$"):
        res.apply(res.check())


def test_a_cwd_that_is_a_file_is_named(ctx: Context, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    res = make(ctx, run="true", shell=True, cwd=str(plain))
    with pytest.raises(ResourceError,
                       match=f"^working directory {re.escape(str(plain))} is not a directory$"):
        res.refresh("run")


def test_an_existing_cwd_is_used(ctx: Context, tmp_path: Path) -> None:
    res = make(ctx, run=["/bin/sh", "-c", "pwd > out"], cwd=str(tmp_path))
    res.apply(res.check())
    assert (tmp_path / "out").read_text() == f"{tmp_path}\n"


def test_a_read_only_command_runs_every_time_and_is_never_a_change(tmp_path: Path,
                                                                    trueup: Any) -> None:
    from tests.helpers import write_bundle

    log = tmp_path / "ran"
    bundle = write_bundle(tmp_path / "b", {"check": f"""\
        resources:
          - command: config-test
            run: [/bin/sh, -c, 'echo x >> "$0"', {log}]
            changes: false
            notify: command:after run
          - command: after
            run: [/bin/sh, -c, 'echo notified >> "$0"', {log}]
            refresh_only: true
    """}, runlist="check")
    for runs in (1, 2):
        out = trueup("run", str(bundle), "--detailed-exitcodes")
        assert out.returncode == 0, out.stdout + out.stderr  # no change: exit 0, not 2
        assert "0 changed, 0 failed, 2 unchanged" in out.stdout
        assert log.read_text() == "x\n" * runs  # it ran; it notified nothing
    plan = trueup("plan", str(bundle), "--detailed-exitcodes")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert log.read_text() == "x\n" * 2  # plan runs nothing


def test_a_read_only_command_still_fails_on_a_bad_exit_code(tmp_path: Path,
                                                             trueup: Any) -> None:
    from tests.helpers import write_bundle

    bundle = write_bundle(tmp_path / "b", {"check": """\
        resources:
          - command: config-test
            run: [/bin/sh, -c, 'echo "syntax error at line 3" >&2; exit 1']
            changes: false
    """}, runlist="check")
    out = trueup("run", str(bundle), "--detailed-exitcodes")
    assert out.returncode == 4, out.stdout + out.stderr
    failed = [line for line in out.stdout.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1 and "command:config-test" in failed[0]
    assert failed[0].endswith("exited with status 1: syntax error at line 3")


@pytest.mark.parametrize("returns", [3, [0, 3], [0, "3"]])
def test_returns_lists_the_exit_codes_that_succeed(ctx: Context, tmp_path: Path,
                                                   returns: Any) -> None:
    make(ctx, run=["/bin/sh", "-c", "exit 3"], returns=returns).refresh("run")
    with pytest.raises(ResourceError):
        make(ctx, run=["/bin/sh", "-c", "exit 4"], returns=returns).refresh("run")
