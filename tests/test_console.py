"""What a person sees: ``trueup report`` printed like the run."""

from __future__ import annotations

from tests.helpers import write_bundle


def test_report_prints_the_run_lines_again(tmp_path, trueup):
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - file: {tmp_path}/motd
            content: "hi\\n"
            mode: "0640"
          - command: broken
            run: [/bin/sh, -c, 'echo boom >&2; exit 3']
          - file: {tmp_path}/needs-broken
            requires: [command:broken]
          - file: {tmp_path}/quiet
        """}, runlist="app")
    (tmp_path / "quiet").write_text("")
    run = trueup("run", str(bundle))
    assert run.returncode == 4
    report = trueup("report")
    assert report.returncode == 0, report.stderr
    heading, *lines, totals = report.stdout.splitlines()
    *resource_lines, summary = run.stdout.splitlines()
    assert lines == resource_lines  # the same Console formats both
    assert len(lines) == 3 and "exited with status 3: boom" in lines[1]
    assert heading.startswith("run ") and "(run)" in heading and heading.endswith("exit 4")
    assert totals.startswith("totals: 1 changed, 1 failed, 1 skipped, 1 unchanged (4 resources)")
    assert totals.split(": ", 1)[1] == summary.split(": ", 1)[1]
