"""The command line read without argparse (agent.cli._quick_parse) reads as argparse does.

For any command line the quick reader accepts, the values are exactly argparse's; for
the rest (help, errors, abbreviations, unusual forms) it steps aside and argparse reads it.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import cli

TOKENS = {
    "run": ["/srv/b", "./b", "--source", "-s", "--runlist", "-r", "web,db", "--event",
            "deploy", "setup", "bogus", "--phase", "boot", "all", "--phase=bake", "-a",
            "web.port=8080", "-aweb.x=1", "--attributes", "node.yml", "--detailed-exitcodes",
            "--json", "--lock-timeout", "2.5", "nan", "-1", "--lock-timeout=3", "--color",
            "never", "--noop", "--diff", "--splay", "10", "--runl", "--", "-h", "--noop=1",
            "--source=", "x=y"],
    "plan": ["/srv/b", "--runlist", "web", "-a", "k=v", "--phase", "boot", "--json",
             "--noop", "--event=deploy", "extra"],
    "validate": ["/srv/b", "--runlist", "web", "-a", "k=v", "--attributes", "n.yml", "b2"],
    "kinds": ["file", "--json", "template", "--js"],
    "report": ["--json", "x"],
    "facts": ["--json", "x"],
    "publish": ["/srv/b", "--env", "prod", "--bucket", "bk", "--label", "l", "--rollback",
                "3", "--kms-key", "k", "--ssm-path", "/p", "--bundle-version", "v1"],
}


def argparse_reads(argv: list[str]) -> dict | None:
    """argparse's values for ``argv``, or None when it refuses it (or prints help)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return vars(cli.parser().parse_args(argv))
    except SystemExit:
        return None


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(TOKENS)))
    return [command, *draw(st.lists(st.sampled_from(TOKENS[command]), max_size=7))]


@settings(max_examples=400, deadline=None)
@given(argv=command_lines())
def test_what_the_quick_reader_reads_is_what_argparse_reads(argv):
    quick = cli._quick_parse(argv[0], argv[1:])
    if quick is None:
        return  # argparse reads it (tested below: it is what parse_args returns)
    assert vars(quick) == argparse_reads(argv)


@pytest.mark.parametrize("argv", [
    ["run", "/srv/b", "--runlist", "w100"],
    ["run", "-a", "web.port=8080", "-a", "web.name=x", "/srv/b"],
    ["plan", "--source=/srv/b", "--json"],
    ["kinds"], ["report", "--json"], ["facts"],
    ["publish", "/srv/b", "--env", "prod"],
])
def test_plain_command_lines_take_the_quick_way(argv):
    quick = cli._quick_parse(argv[0], argv[1:])
    assert quick is not None
    assert vars(quick) == argparse_reads(argv)


@pytest.mark.parametrize("argv", [
    ["run", "--help"], ["run", "--runl", "x"], ["run", "--event", "bogus"],
    ["run", "--lock-timeout", "-1"], ["run", "a", "b"], ["publish", "/srv/b"],
    ["run", "--noop=1"], ["run", "--"],
])
def test_the_rest_is_left_to_argparse(argv):
    assert cli._quick_parse(argv[0], argv[1:]) is None


def test_a_command_whose_arguments_the_reader_does_not_know_goes_to_argparse(monkeypatch):
    def args(p):
        group = p.add_mutually_exclusive_group()
        group.add_argument("--a", action="store_true")

    monkeypatch.setitem(cli.COMMANDS, "kinds", ("test", args, "kinds", "main"))
    assert cli._quick_parse("kinds", ["--a"]) is None
