"""line: byte-exact edits, the change names the line, apply writes what check planned."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agent.aws.secrets import SecretStore
from agent.compile.loader import Bundle
from agent.compile.prepare import Options, prepare
from agent.config import Config
from agent.engine.backups import Backups
from agent.engine.runner import Runner
from agent.errors import ResourceError, TrueupError
from agent.host.facts import Facts
from agent.host.system import System
from agent.resources import Context
from agent.resources import line as line_module
from agent.resources.line import Line

# CRLF endings, a form feed inside a line, the other characters str.splitlines() breaks on
# (\x0b, \x1c-\x1e, \x85, \u2028), a byte that is not UTF-8, and no final newline
TRICKY = (b"a=1\x0cstill line one\r\n"
          b"b=1\r\n"
          b"vt\x0bfs\x1cgs\x1drs\x1e nel\xc2\x85 ls\xe2\x80\xa8 end\r\n"
          b"b=9\r\n"
          b"latin1 caf\xe9\r\n"
          b"last=no newline")


def make(ctx: Context, name: str, **spec: Any) -> Line:
    res = Line(name, spec, ctx)
    res.validate()
    res.prepare()
    return res


def converge(res: Line) -> list:
    changes = res.check()
    res.apply(changes)
    assert res.check() == []
    return changes


@pytest.fixture
def tricky(tmp_path: Path) -> Path:
    path = tmp_path / "tricky.conf"
    path.write_bytes(TRICKY)
    return path


def test_appending_keeps_every_other_byte(ctx: Context, tricky: Path) -> None:
    changes = converge(make(ctx, str(tricky), text="added"))
    # the unterminated last line gets the file's CRLF, then the new line with CRLF
    assert tricky.read_bytes() == TRICKY + b"\r\nadded\r\n"
    assert [c.after for c in changes] == ["appended"]


def test_replacing_a_matched_line_changes_only_that_line(ctx: Context, tricky: Path) -> None:
    changes = converge(make(ctx, str(tricky), text="vt=replaced", match="^vt\x0bfs"))
    lines = TRICKY.split(b"\n")
    lines[2] = b"vt=replaced\r"
    assert tricky.read_bytes() == b"\n".join(lines)
    assert [c.after for c in changes] == ["line 3 replaced"]


def test_replacing_the_first_match_removes_the_others(ctx: Context, tricky: Path) -> None:
    changes = converge(make(ctx, str(tricky), text="b=2", match="^b="))
    assert tricky.read_bytes() == TRICKY.replace(b"b=1\r\n", b"b=2\r\n").replace(b"b=9\r\n", b"")
    assert [c.after for c in changes] == ["line 2 replaced, line 4 removed"]


def test_an_unterminated_last_line_is_replaced_in_place(ctx: Context, tricky: Path) -> None:
    converge(make(ctx, str(tricky), text="last=changed", match="^last="))
    assert tricky.read_bytes() == TRICKY.replace(b"last=no newline", b"last=changed")


def test_absent_removes_only_matching_lines(ctx: Context, tricky: Path) -> None:
    changes = converge(make(ctx, str(tricky), match="^b=", state="absent"))
    assert tricky.read_bytes() == TRICKY.replace(b"b=1\r\n", b"").replace(b"b=9\r\n", b"")
    assert [c.after for c in changes] == ["2 lines removed (2, 4)"]


def test_absent_text_is_compared_without_the_crlf(ctx: Context, tricky: Path) -> None:
    changes = converge(make(ctx, str(tricky), text="b=9", state="absent"))
    assert tricky.read_bytes() == TRICKY.replace(b"b=9\r\n", b"")
    assert [c.after for c in changes] == ["line 4 removed"]


def test_a_present_line_is_left_alone(ctx: Context, tricky: Path) -> None:
    assert make(ctx, str(tricky), text="b=1").check() == []
    assert make(ctx, str(tricky), text="last=no newline").check() == []
    assert tricky.read_bytes() == TRICKY


def test_match_sees_the_decoded_line_even_with_bytes_that_are_not_utf8(
        ctx: Context, tricky: Path) -> None:
    converge(make(ctx, str(tricky), text="latin1 fixed", match="^latin1 caf.$"))
    assert tricky.read_bytes() == TRICKY.replace(b"latin1 caf\xe9", b"latin1 fixed")


def test_an_lf_file_gets_lf_and_a_newline_before_the_appended_line(
        ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "lf"
    path.write_bytes(b"one\ntwo")
    converge(make(ctx, str(path), text="three"))
    assert path.read_bytes() == b"one\ntwo\nthree\n"


def test_create_makes_the_file_with_the_line(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "new"
    changes = converge(make(ctx, str(path), text="hello", create=True))
    assert path.read_bytes() == b"hello\n"
    assert oct(os.stat(path).st_mode & 0o7777) == "0o644"
    assert [c.after for c in changes] == ["appended to a new file"]


def test_a_missing_file_is_an_error_without_create(ctx: Context, tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match="create: true"):
        make(ctx, str(tmp_path / "missing"), text="x").check()


def test_apply_keeps_mode_and_backs_up_the_old_bytes(ctx: Context, tricky: Path,
                                                      tmp_path: Path) -> None:
    os.chmod(tricky, 0o600)
    converge(make(ctx, str(tricky), text="added"))
    assert os.stat(tricky).st_mode & 0o7777 == 0o600
    (backup,) = [p for p in (tmp_path / "backups").rglob("*") if p.is_file()]
    assert backup.read_bytes() == TRICKY


def test_apply_writes_the_bytes_check_planned(ctx: Context, tricky: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    res = make(ctx, str(tricky), text="b=2", match="^b=")
    changes = res.check()
    planned = changes[0].payload.after

    def no_recompute(*args: object) -> None:
        raise AssertionError("apply recomputed the content")

    monkeypatch.setattr(line_module, "edit", no_recompute)
    res.apply(changes)
    assert tricky.read_bytes() == planned


def test_apply_refuses_a_file_changed_since_check(ctx: Context, tricky: Path) -> None:
    res = make(ctx, str(tricky), text="added")
    changes = res.check()
    tricky.write_bytes(b"someone else\n")
    with pytest.raises(ResourceError, match="changed since it was checked"):
        res.apply(changes)
    assert tricky.read_bytes() == b"someone else\n"


def test_the_change_reports_a_diff_but_never_its_payload(ctx: Context, tricky: Path) -> None:
    (change,) = make(ctx, str(tricky), text="b=2", match="^b=").check()
    out = change.as_dict()
    assert set(out) == {"field", "before", "after", "diff"}
    assert "-b=1\r\n+b=2\r\n" in out["diff"]
    json.dumps(out)  # serialisable as it is


def test_a_sensitive_line_is_shown_without_diff(ctx: Context, tricky: Path) -> None:
    from agent.engine.sensitive import shown_changes

    res = make(ctx, str(tricky), text="token=s3cret", match="^b=", sensitive=True)
    (shown,) = shown_changes(res, res.check())
    assert shown.diff is None
    assert "s3cret" not in repr(shown.as_dict())


@pytest.mark.parametrize(("name", "spec", "words"), [
    ("relative/path", {"text": "x"}, "must be absolute"),
    ("a-label", {"text": "x"}, "label"),
    ("a-label", {"path": "relative", "text": "x"}, "must be absolute"),
    ("/etc/x", {"text": "two\nlines"}, "newline"),
    ("/etc/x", {"state": "absent"}, "text or match"),
])
def test_invalid_specs_are_refused(ctx: Context, name: str, spec: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        make(ctx, name, **spec)


def _prepare(tmp_path: Path, resources: list[dict]) -> Any:
    bundle = tmp_path / "bundle"
    (bundle / "r").mkdir(parents=True, exist_ok=True)
    (bundle / "r" / "recipe.yml").write_text(json.dumps({"resources": resources}))
    return prepare(Options(source=str(bundle), runlist="r"), Config(state_dir=str(tmp_path)),
                   Bundle(str(bundle)), System(), Backups(str(tmp_path / "backups")), Facts(),
                   SecretStore())


def test_two_managed_lines_in_one_file(tmp_path: Path) -> None:
    conf = tmp_path / "sshd_config"
    conf.write_bytes(b"#PermitRootLogin yes\r\nPasswordAuthentication yes\r\nUsePAM yes")
    resources = [
        {"line": "root-login", "path": str(conf), "text": "PermitRootLogin no",
         "match": "^#?PermitRootLogin\\b"},
        {"line": "passwords", "path": str(conf), "text": "PasswordAuthentication no",
         "match": "^#?PasswordAuthentication\\b"},
    ]
    catalog = _prepare(tmp_path, resources).catalog
    assert [n.ident for n in catalog.nodes] == ["line:root-login", "line:passwords"]

    results = Runner(catalog, System()).run()
    assert [(r.status, [c.after for c in r.changes]) for r in results] == [
        ("changed", ["line 1 replaced"]), ("changed", ["line 2 replaced"])]
    assert conf.read_bytes() == (b"PermitRootLogin no\r\nPasswordAuthentication no\r\n"
                                 b"UsePAM yes")
    again = Runner(_prepare(tmp_path, resources).catalog, System()).run()
    assert [r.status for r in again] == ["unchanged", "unchanged"]


def test_one_label_twice_is_a_duplicate(tmp_path: Path) -> None:
    twice = {"line": "same", "path": str(tmp_path / "f"), "text": "x"}
    with pytest.raises(TrueupError, match="duplicate resource line:same"):
        _prepare(tmp_path, [twice, dict(twice, text="y")])
