#!/usr/bin/env python3
"""The peers' 'physical limit' baseline (baseline/converge.py) for any W<size>.

    converge_scaled.py SIZE T        (bench/baseline/run.sh SIZE runs it)

Same method as converge.py, statement for statement: stat + read + sha256 compare against
the string.Template render of the peers' baseline/file.tmpl, atomic write only if different,
same for dirs/links/stamp; only the number of directories is SIZE // 10 instead of 10.
converge.py hard-codes 10 directories, hence this copy for the scaling table.
"""
import hashlib
import os
import string
import subprocess
import sys

SIZE, T = int(sys.argv[1]), sys.argv[2]
PEERS = os.environ.get("PEERS") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                "..", "..", "..", "shared", "bench", "peers")
HOST, PORT = "node01.bench.example.test", "8443"
with open(os.path.join(PEERS, "baseline", "file.tmpl")) as f:
    tpl = string.Template(f.read())
changed = 0


def ensure_dir(p):
    global changed
    try:
        st = os.stat(p)
    except FileNotFoundError:
        os.mkdir(p, 0o755)
        st = os.stat(p)
        changed += 1
    if st.st_mode & 0o7777 != 0o755:
        os.chmod(p, 0o755)
        changed += 1


ensure_dir(T)
for i in range(SIZE // 10):
    d = f"{T}/d{i}"
    ensure_dir(d)
    for j in range(10):
        p = f"{d}/f{j}.conf"
        want = tpl.substitute(hostname=HOST, port=PORT, index=f"{i}{j}").encode()
        try:
            st = os.stat(p)
            with open(p, "rb") as f:
                same = hashlib.sha256(f.read()).digest() == hashlib.sha256(want).digest()
        except FileNotFoundError:
            st, same = None, False
        if not same:
            with open(p + ".w100tmp", "wb") as f:
                f.write(want)
            os.chmod(p + ".w100tmp", 0o644)
            os.replace(p + ".w100tmp", p)
            changed += 1
        elif st.st_mode & 0o7777 != 0o644:
            os.chmod(p, 0o644)
            changed += 1
    link, dest = f"{d}/latest", f"{d}/f9.conf"
    if not os.path.islink(link) or os.readlink(link) != dest:
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(dest, link)
        changed += 1
if not os.path.exists(f"{T}/stamp"):
    subprocess.run(["/bin/sh", "-c", f"echo converged > {T}/stamp"], check=True)
    changed += 1
print(f"changed={changed}")
