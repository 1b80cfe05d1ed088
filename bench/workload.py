#!/usr/bin/env python3
"""Write trueup bundles for the W100 benchmark workload and its scaled variants.

W100 is defined by the peer benchmark (``$PEERS/WORKLOAD.md``, ``$PEERS/common/w100.py``):
one root directory, 10 directories ``d<i>``, 10 templated files ``d<i>/f<j>.conf`` in each,
one symlink ``d<i>/latest -> <T>/d<i>/f9.conf`` per directory, and one command
``echo converged > <T>/stamp`` guarded by ``creates``.  The scaled variants keep that shape
and only raise the number of directories:

    size    dirs x files   resources (1 + dirs + files + links + 1)
    100       10 x 10        122
    1000     100 x 10      1,202
    10000   1000 x 10     12,002

The template ``index`` variable is ``"<i><j>"`` (``"%d%d"``) as in w100.py, so W100 gets
``"00"`` ... ``"99"``.  The file template is generated from the peers' master template
``common/template.in`` by turning each ``@x@`` into ``{{ x }}`` (Jinja2), exactly as the
peers' ``gen_templates.py`` does for Salt, Ansible and pyinfra.

Usage:

    workload.py [--size 100|1000|10000] [--root T] [--out BUNDLE]   # a W<size> bundle
    workload.py --empty --out BUNDLE                                # a recipe managing nothing

Defaults: W100 goes to ``/tmp/peers/bundles/trueup/w100`` with target
``/tmp/peers/target/trueup`` (so that ``verify.py check trueup`` checks it byte for byte);
W<n> (n > 100) goes to ``/tmp/peers/bundles/trueup/w<n>`` with target
``/tmp/peers/target/trueup-w<n>``.  The bundle's recipe is called ``w<size>`` (run it with
``trueup run BUNDLE --runlist w<size>``); the empty bundle's recipe is called ``empty``.
A bundle is rewritten only where its files differ, so re-running this is cheap and harmless.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SIZES = (100, 1000, 10000)
FILES_PER_DIR = 10
DIRS_PER_RECIPE = 250  # about 570 KB of recipe.yml, under the 1 MiB limit

HOSTNAME = "node01.bench.example.test"
PORT = "8443"
DIR_MODE = "0755"
FILE_MODE = "0644"
LINK_NAME = "latest"
LINK_TO = "f9.conf"
BUNDLES = "/tmp/peers/bundles/trueup"
TARGET_BASE = "/tmp/peers/target"


def peers_dir() -> str:
    """The peer benchmark folder: $PEERS, else ../shared/bench/peers from the repo root."""
    return os.path.abspath(os.environ.get("PEERS") or os.path.join(REPO, "..", "shared", "bench",
                                                                   "peers"))


def target_name(size: int, tool: str = "trueup") -> str:
    """The target folder name under /tmp/peers/target for a tool at a size."""
    return tool if size == 100 else f"{tool}-w{size}"


def jinja_template(peers: str) -> str:
    """``common/template.in`` with ``@x@`` replaced by ``{{ x }}``."""
    with open(os.path.join(peers, "common", "template.in")) as f:
        src = f.read()
    # Jinja2 syntax all starts with "{" (the default environment has no line statements)
    assert "{" not in src and "}" not in src, "template.in must not contain braces"
    return re.sub(r"@(\w+)@", lambda m: "{{ " + m.group(1) + " }}", src)


def recipe_yamls(size: int, root: str) -> dict[str, str]:
    """recipe.yml texts for W<size> by recipe name, resources in the peers' order:
    root dir; per directory: dir, its 10 files, its link; the stamp command.

    A recipe file may hold at most 1 MiB (agent.host.files.MAX_TEXT_BYTES), so a
    workload of more than DIRS_PER_RECIPE directories is cut into recipes
    ``w<size>-part<k>`` of DIRS_PER_RECIPE directories each (the first also holds the
    root dir); the recipe ``w<size>`` holds the last directories and the stamp, and
    ``depends`` on the parts in order, so the run converges the same resources in the
    same order. W100 and W1000 are one recipe each."""
    name = f"w{size}"
    ndirs = size // FILES_PER_DIR
    a = f"attributes.{name}"
    R = "{{ " + a + ".root }}"
    groups = [range(start, min(start + DIRS_PER_RECIPE, ndirs))
              for start in range(0, ndirs, DIRS_PER_RECIPE)]
    parts = [f"{name}-part{k + 1}" for k in range(len(groups) - 1)]
    texts = {}
    for k, dirs in enumerate(groups):
        first, last = k == 0, k == len(groups) - 1
        recipe = name if last else parts[k]
        if last:
            out = [f"# W{size} benchmark workload for trueup, written by bench/workload.py; "
                   "do not edit.",
                   f"# {ndirs} dirs x {FILES_PER_DIR} files: {12 * ndirs + 2} resources"
                   + (f", in {len(groups)} recipes." if parts else "."),
                   f"description: W{size} benchmark workload"]
            if parts:
                out.append(f"depends: [{', '.join(parts)}]")
            out += ["attributes:",
                    f'  {name}: {{root: {root}, hostname: {HOSTNAME}, port: "{PORT}"}}']
        else:
            out = [f"# Part {k + 1} of the W{size} benchmark workload (recipe {name} "
                   "depends on it), written by bench/workload.py; do not edit.",
                   f"description: W{size} benchmark workload, dirs {dirs[0]}-{dirs[-1]}"]
        out.append("resources:")
        if first:
            out += [f'  - directory: "{R}"',
                    f'    mode: "{DIR_MODE}"']
        for i in dirs:
            d = f"{R}/d{i}"
            out += [f'  - directory: "{d}"',
                    f'    mode: "{DIR_MODE}"']
            for j in range(FILES_PER_DIR):
                out += [f'  - template: "{d}/f{j}.conf"',
                        "    source: file.j2",
                        f'    mode: "{FILE_MODE}"',
                        f'    variables: {{hostname: "{{{{ {a}.hostname }}}}", '
                        f'port: "{{{{ {a}.port }}}}", index: "{i}{j}"}}']
            out += [f'  - link: "{d}/{LINK_NAME}"',
                    f'    to: "{d}/{LINK_TO}"']
        if last:
            out += ["  - command: stamp",
                    f'    run: "echo converged > {R}/stamp"',
                    "    shell: true",
                    f'    creates: "{R}/stamp"']
        texts[recipe] = "\n".join(out) + "\n"
    return texts


EMPTY_YAML = """\
# A recipe that manages nothing: trueup's start-up floor (bench/trueup/empty.sh).
description: empty recipe (benchmark start-up floor)
resources: []
"""


def put(path: str, text: str) -> bool:
    """Write text to path unless it already holds exactly that; True if written."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def write_bundle(out: str, recipe: str, yaml_texts: dict[str, str],
                 template: str | None) -> list[str]:
    """Write the runlist (``recipe``) and each recipe of ``yaml_texts`` into ``out``."""
    written = []
    if put(os.path.join(out, "runlist"), recipe + "\n"):
        written.append("runlist")
    for name, yaml_text in yaml_texts.items():
        if put(os.path.join(out, name, "recipe.yml"), yaml_text):
            written.append(f"{name}/recipe.yml")
        os.makedirs(os.path.join(out, name, "files"), exist_ok=True)
        os.makedirs(os.path.join(out, name, "templates"), exist_ok=True)
        if template is not None and put(os.path.join(out, name, "templates", "file.j2"),
                                        template):
            written.append(f"{name}/templates/file.j2")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=100, choices=SIZES)
    ap.add_argument("--root", help="target directory T (default /tmp/peers/target/trueup[-w<n>])")
    ap.add_argument("--out", help="bundle folder (default /tmp/peers/bundles/trueup/w<n>)")
    ap.add_argument("--empty", action="store_true", help="write the empty bundle instead")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.empty:
        out = a.out or os.path.join(BUNDLES, "empty")
        written = write_bundle(out, "empty", {"empty": EMPTY_YAML}, None)
    else:
        out = a.out or os.path.join(BUNDLES, f"w{a.size}")
        root = a.root or os.path.join(TARGET_BASE, target_name(a.size))
        written = write_bundle(out, f"w{a.size}", recipe_yamls(a.size, root),
                               jinja_template(peers_dir()))
    if not a.quiet:
        print(f"{out}: " + (", ".join(written) + " written" if written else "up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
