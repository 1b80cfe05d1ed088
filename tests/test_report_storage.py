"""A report that cannot be stored is a warning, never the run's exit code; a stored
report is whole or absent; ``trueup report`` on a damaged one says so in one line."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from tests.helpers import tiny_tmpfs, write_bundle

WARNING = "trueup: warning: could not store the report: "


def files_bundle(tmp_path: Path, count: int = 1) -> tuple[Path, Path]:
    """``count`` files under target/, their content from attribute ``v`` (default 1)."""
    target = tmp_path / "target"
    lines = [f'  - directory: "{target}"\n']
    lines += [f'  - file: "{target}/f{i:03d}"\n'
              f'    content: "file {i}, version {{{{ attributes.v }}}}\\n"\n'
              for i in range(count)]
    bundle = write_bundle(tmp_path / "bundle", {"r": "resources:\n" + "".join(lines)},
                          runlist="r", attributes="v: 1\n")
    return bundle, target


def reports_dir(env: dict[str, str]) -> Path:
    return Path(env["TRUEUP_STATE_DIR"]) / "reports"


def assert_run_kept_its_exit_code(result) -> None:
    """Changes were made: exit 2 with --detailed-exitcodes, plus one warning line."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith(WARNING)]
    assert len(warnings) == 1 and result.stderr.strip() == warnings[0], result.stderr
    assert "changed" in result.stdout  # the console summary still printed


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


def test_history_that_is_a_file_is_a_warning_after_changes(tmp_path, trueup, env):
    bundle, target = files_bundle(tmp_path)
    reports_dir(env).mkdir(parents=True)
    (reports_dir(env) / "history").write_text("not a folder\n")
    result = trueup("run", str(bundle), "--detailed-exitcodes")
    assert_run_kept_its_exit_code(result)
    assert "history" in result.stderr
    assert (target / "f000").read_text() == "file 0, version 1\n"
    # the last report is still kept, and says what the run did
    last = json.loads((reports_dir(env) / "last_run.json").read_text())
    assert last["exit_code"] == 2 and last["totals"]["changed"] == 2
    assert leftovers(reports_dir(env)) == []


def test_unwritable_reports_folder_is_a_warning_after_changes(tmp_path, trueup, env):
    bundle, target = files_bundle(tmp_path)
    reports_dir(env).mkdir(parents=True)
    (reports_dir(env) / "last_run.json").mkdir()  # cannot be replaced by a file, even as root
    result = trueup("run", str(bundle), "--detailed-exitcodes")
    assert_run_kept_its_exit_code(result)
    assert (target / "f000").exists()
    assert leftovers(reports_dir(env)) == []


def fill(folder: Path, leave_pages: int = 0) -> None:
    """Fill the file system of ``folder`` with one-page files, then free ``leave_pages``."""
    page = b"\0" * 4096
    n = 0
    while True:
        try:
            (folder / f"filler{n:05d}").write_bytes(page)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
            break
        n += 1
    for i in range(leave_pages):
        (folder / f"filler{n - 1 - i:05d}").unlink()


@pytest.mark.parametrize("free_pages", [0, 1], ids=["full", "one page free"])
def test_full_disk_keeps_the_exit_code_and_the_last_whole_report(tmp_path, trueup, env,
                                                                  free_pages):
    # 40 files: the report is over 4 KiB, so one free page means a short write
    bundle, target = files_bundle(tmp_path, count=40)
    with tiny_tmpfs(reports_dir(env)) as folder:
        first = trueup("run", str(bundle))
        assert first.returncode == 0, first.stderr
        before = (folder / "last_run.json").read_bytes()
        assert len(before) > 4096
        history_before = sorted(p.name for p in (folder / "history").iterdir())
        fill(folder, leave_pages=free_pages)

        result = trueup("run", str(bundle), "-a", "v=2", "--detailed-exitcodes")
        assert_run_kept_its_exit_code(result)
        assert "No space left on device: " + str(folder / "last_run.json") in result.stderr
        assert (target / "f039").read_text() == "file 39, version 2\n"
        # last_run.json is the first run's report, whole: never a truncated new one
        assert (folder / "last_run.json").read_bytes() == before
        assert sorted(p.name for p in (folder / "history").iterdir()) == history_before
        assert leftovers(folder) == []


DAMAGED = {
    "truncated": b'{"run_id": "20260101T000000-abcd", "mode": "run", "tot',
    "empty": b"",
    "not json": b"this is not a report\n",
    "not utf-8": b"\xff\xfe\x00{",
    "a list": b"[1, 2, 3]\n",
    "a string": b'"report"\n',
    "null": b"null\n",
    "resources not a list": b'{"run_id": "x", "mode": "run", "resources": "all"}\n',
    "resource not an object": b'{"run_id": "x", "mode": "run", "resources": [1]}\n',
    "totals not numbers": (b'{"run_id": "x", "mode": "run", "resources": [], '
                           b'"totals": {"changed": "many"}, "duration_s": 1}\n'),
}


@pytest.mark.parametrize("case", DAMAGED, ids=list(DAMAGED))
@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_report_on_a_damaged_last_run_is_one_line(tmp_path, trueup, env, case, as_json):
    path = reports_dir(env) / "last_run.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(DAMAGED[case])
    result = trueup("report", *(["--json"] if as_json else []))
    assert_one_line_naming(result, path, "trueup run")


def test_report_without_any_run_is_one_line(tmp_path, trueup, env):
    result = trueup("report")
    assert_one_line_naming(result, reports_dir(env) / "last_run.json", "trueup run")


def test_report_that_cannot_be_read_is_one_line(tmp_path, trueup, env):
    path = reports_dir(env) / "last_run.json"
    path.mkdir(parents=True)  # a folder where the file belongs: EISDIR, even as root
    result = trueup("report")
    assert_one_line_naming(result, path, "trueup run")


def assert_one_line_naming(result, path: Path, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("trueup: error: ") and str(path) in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def test_a_stored_report_reads_back(tmp_path, trueup, env):
    bundle, _ = files_bundle(tmp_path)
    assert trueup("run", str(bundle)).returncode == 0
    shown = trueup("report", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["totals"]["changed"] == 2
    human = trueup("report")
    assert human.returncode == 0 and "totals: 2 changed" in human.stdout
    assert os.stat(reports_dir(env) / "last_run.json").st_mode & 0o777 == 0o600


def test_stored_reports_pass_over_what_is_not_a_readable_json_object(tmp_path: Path) -> None:
    """What ``seal`` and ``plan --bake-report`` read: last_run.json, then history/ oldest
    first; a truncated, non-object, non-UTF-8 or unreadable file is passed over."""
    from agent.engine.report import stored

    folder = tmp_path / "reports"
    history = folder / "history"
    history.mkdir(parents=True)
    (folder / "last_run.json").write_text('{"run_id": "last"}')
    for name, data in [("1.json", b'{"run_id": "one"}'), ("2.json", b'{"run_id": '),
                       ("3.json", b'["run_id"]'), ("4.json", b'"text"'),
                       ("5.json", b'{"run_id": "\xff"}'), ("6.json", b'{"run_id": "six"}')]:
        (history / name).write_bytes(data)
    (history / "7.json").mkdir()  # a folder: cannot be read as a file
    assert [(Path(p).name, r["run_id"]) for p, r in stored(str(tmp_path))] == [
        ("last_run.json", "last"), ("1.json", "one"), ("6.json", "six")]
    assert list(stored(str(tmp_path / "none"))) == []
