"""cron: every value is checked before it is written into /etc/cron.d, so none adds a line."""

from __future__ import annotations

from typing import Any

import pytest

from agent.resources import Context, SpecError
from agent.resources.cron import Cron

JOB = {"schedule": "*/5 * * * *", "run": "/bin/true"}


def make(ctx: Context, name: str = "job", **spec: Any) -> Cron:
    res = Cron(name, {**JOB, **spec}, ctx)
    res.validate()
    res.prepare()
    return res


@pytest.mark.parametrize("environment", [
    {"MAILTO": "ops\n* * * * * root /tmp/evil"},
    {"MAILTO": "ops\r* * * * * root /tmp/evil"},
    {"PATH=/bin\n* * * * * root /tmp/evil\nX": "1"},
    {"A=B": "1"},
    {"": "1"},
], ids=["newline-in-value", "cr-in-value", "newline-in-key", "equals-in-key", "empty-key"])
def test_an_environment_entry_that_would_add_a_line_is_refused(ctx: Context,
                                                               environment: dict) -> None:
    with pytest.raises(SpecError, match="environment") as caught:
        make(ctx, environment=environment)
    assert caught.value.field == "environment"


@pytest.mark.parametrize(("field", "value"), [("user", "root\n"), ("run", "/bin/true\r")])
def test_a_line_break_in_user_or_run_is_refused(ctx: Context, field: str, value: str) -> None:
    with pytest.raises(SpecError) as caught:
        make(ctx, **{field: value})
    assert caught.value.field == field


def test_a_name_ending_in_a_newline_is_refused(ctx: Context) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        make(ctx, "job\n")


def test_a_plain_environment_is_one_line_each(ctx: Context) -> None:
    res = make(ctx, environment={"MAILTO": "", "PATH": "/usr/bin:/bin"})
    assert res.desired == (b"# job: managed by trueup, local edits are replaced\n"
                           b"MAILTO=\nPATH=/usr/bin:/bin\n*/5 * * * * root /bin/true\n")
