"""Killing a run with SIGKILL while it writes 1,000 files never leaves a partial file."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, write_bundle

FILES = 1000
BODY = "line {n} of version {v}: " + "x" * 200 + "\n"


def content(i: int, version: int) -> str:
    return "".join(BODY.format(n=n, v=version) for n in range(20 + i % 7)) + f"end {i}\n"


@pytest.mark.slow
def test_sigkill_during_writes_never_leaves_partial_files(tmp_path, env):
    target = tmp_path / "target"
    resources = [f'  - directory: "{target}"\n']
    resources += [
        f'  - template: "{target}/f{i:04d}.conf"\n'
        f"    source: body.j2\n"
        f"    variables: {{i: {i}}}\n"
        for i in range(FILES)
    ]
    bundle = write_bundle(
        tmp_path / "bundle", {"many": "resources:\n" + "".join(resources)}, runlist="many",
        templates={"many/body.j2":
                   "{% for n in range(20 + i % 7) %}line {{ n }} of version {{ attributes.v }}: "
                   + "x" * 200 + "\n{% endfor %}end {{ i }}\n"})
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    rng = random.Random(20261126)

    def start(version: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "agent", "run", str(bundle),
                                 "-a", f"v={version}"], env=full_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # how long a full first run takes here, to spread the kills over it
    t0 = time.monotonic()
    assert start(0).wait(timeout=300) == 0
    full = time.monotonic() - t0
    allowed = {v: {i: content(i, v) for i in range(FILES)} for v in range(3)}
    kills = 0
    for round_ in range(24):
        version = 1 + round_ % 2
        proc = start(version)
        time.sleep(rng.uniform(0.05, full))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        for i in range(FILES):
            path = target / f"f{i:04d}.conf"
            text = path.read_text()
            assert text in (allowed[0][i], allowed[1][i], allowed[2][i]), f"partial {path}"
    assert kills >= 12, "the runs finished before they could be killed; nothing was tested"

    final = subprocess.run([sys.executable, "-m", "agent", "run", str(bundle), "-a", "v=2"],
                           env=full_env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert all((target / f"f{i:04d}.conf").read_text() == allowed[2][i] for i in range(FILES))
    assert sorted(p.name for p in target.iterdir() if p.name.startswith(".")) == []
    again = subprocess.run([sys.executable, "-m", "agent", "run", str(bundle), "-a", "v=2",
                            "--detailed-exitcodes"], env=full_env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "0 changed" in again.stdout
