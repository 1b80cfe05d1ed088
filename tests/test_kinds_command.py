"""trueup kinds [KIND] [--json]: every kind's documentation and fields, from its declaration."""

from __future__ import annotations

import argparse
import json
import re

import pytest
import yaml

from agent.cli import parser
from agent.commands import kinds as command
from agent.config import Config
from agent.errors import TrueupError, did_you_mean
from agent.resources import COMMON_FIELDS, Field, load_all

KINDS = load_all()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    args = parser().parse_args(["kinds", *argv])
    assert command.main(args, Config()) == 0
    return capsys.readouterr().out


def _row(name: str, fld: Field) -> re.Pattern[str]:
    """The table line of a field: name, types, default, in that order."""
    types = " | ".join(t.__name__ for t in fld.types)
    default = "required" if fld.required else (
        "-" if fld.default is None else json.dumps(list(fld.default) if isinstance(
            fld.default, tuple) else fld.default))
    return re.compile(rf"^  {re.escape(name)} +{re.escape(types)} +{re.escape(default)} +"
                      rf"{re.escape(fld.doc)}", re.M)


def test_the_command_line_takes_an_optional_kind_and_json() -> None:
    args = parser().parse_args(["kinds"])
    assert (args.command, args.kind, args.json) == ("kinds", "", False)
    args = parser().parse_args(["kinds", "file", "--json"])
    assert (args.kind, args.json) == ("file", True)


def _blocks(out: str) -> dict[str, str]:
    """The text under each underlined heading, by heading."""
    parts = re.split(r"^(\S[^\n]*)\n=+\n", out, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_kind_is_listed_with_its_summary_and_every_field(capsys) -> None:
    blocks = _blocks(_run(capsys))
    assert list(blocks) == [*KINDS, "Fields every type takes"]
    for kind, cls in KINDS.items():
        block = blocks[kind]
        assert block.startswith(cls.__doc__.strip().splitlines()[0]), kind
        assert f"states: {', '.join(cls.STATES)}" in block
        for name, fld in cls.FIELDS.items():
            assert _row(name, fld).search(block), (kind, name)
    for name, fld in COMMON_FIELDS.items():
        assert _row(name, fld).search(blocks["Fields every type takes"]), name


def test_the_table_shows_declared_defaults_and_choices(capsys) -> None:
    out = _run(capsys)
    assert re.search(r'^  user +str +"root" +run as this user', out, re.M)       # cron
    assert re.search(r"^  returns +list \| int +\[0\] +exit codes", out, re.M)    # command
    assert re.search(r"^  backup +bool \| int +true +keep", out, re.M)            # file
    assert re.search(r"^  run +list \| str +required +argv", out, re.M)          # command
    assert re.search(r"^  retry_delay +int \| float +1 +seconds", out, re.M)      # common
    assert "(one of: bake, boot, any)" in out


def test_one_kind_prints_only_it_with_its_description_and_example(capsys) -> None:
    out = _run(capsys, "file")
    assert out.startswith("file\n====\nA regular file")
    assert "Writes are atomic" in out                    # description
    assert "Example:\n  - file: /etc/motd\n    content:" in out
    assert "Spec:" not in out                            # the table replaces it
    assert "\ntemplate\n" not in out and "\ncommand\n" not in out
    assert "Fields every type takes" in out


def test_an_unknown_kind_is_an_error_that_suggests_the_closest() -> None:
    args = parser().parse_args(["kinds", "flie"])
    with pytest.raises(TrueupError, match=r"unknown resource type 'flie' \(did you mean "
                                          r"'file'\?\); types: apt_repository, archive, "
                                          r"block, command"):
        command.main(args, Config())


def test_did_you_mean() -> None:
    assert did_you_mean("flie", ["file", "line", "link"]) == " (did you mean 'file'?)"
    assert did_you_mean("zzz", ["file"]) == ""


def test_json_describes_every_kind(capsys) -> None:
    data = json.loads(_run(capsys, "--json"))
    assert set(data) == {"kinds", "common_fields"}
    assert list(data["kinds"]) == list(KINDS)
    for kind, cls in KINDS.items():
        entry = data["kinds"][kind]
        assert entry["states"] == list(cls.STATES) and entry["actions"] == list(cls.ACTIONS)
        assert entry["summary"] == cls.__doc__.strip().splitlines()[0]
        assert list(entry["fields"]) == list(cls.FIELDS)
        for name, fld in cls.FIELDS.items():
            got = entry["fields"][name]
            assert set(got) == {"type", "default", "choices", "doc", "required"}, (kind, name)
            assert got["type"] == [t.__name__ for t in fld.types]
            assert got["default"] == fld.default and got["required"] == fld.required
        example = yaml.safe_load(entry["example"])
        assert isinstance(example, list) and next(iter(example[0])) == kind, kind
    common = data["common_fields"]
    assert list(common) == list(COMMON_FIELDS)
    assert common["retries"]["default"] == 0 and common["requires"]["default"] == []
    assert common["phase"]["choices"] == ["bake", "boot", "any"]


def test_json_of_one_kind_has_the_same_shape(capsys) -> None:
    data = json.loads(_run(capsys, "cron", "--json"))
    assert list(data["kinds"]) == ["cron"]
    cron = data["kinds"]["cron"]
    assert cron["fields"]["user"] == {"type": ["str"], "default": "root", "choices": None,
                                      "doc": "run as this user", "required": False}
    assert cron["system"] is True and "- cron: logrotate-app" in cron["example"]
    assert list(data["common_fields"]) == list(COMMON_FIELDS)


def test_main_tolerates_a_namespace_without_the_new_options(capsys) -> None:
    assert command.main(argparse.Namespace(), Config()) == 0
    assert "Fields every type takes" in capsys.readouterr().out


def test_the_real_command_line(trueup) -> None:
    out = trueup("kinds", "template", "--json")
    assert out.returncode == 0, out.stderr
    assert list(json.loads(out.stdout)["kinds"]) == ["template"]
    bad = trueup("kinds", "tempalte")
    assert bad.returncode == 1 and bad.stdout == ""
    assert "did you mean 'template'?" in bad.stderr
