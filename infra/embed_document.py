"""Copy infra/ssm/run-document.yml into the RunDocument Content block of infra/trueup.yml.

CloudFormation cannot read a file, so the template carries the document's text;
tests/test_infra.py fails when the two differ. Run from the repository root:

    python3 infra/embed_document.py
"""

from __future__ import annotations

import re
from pathlib import Path

INFRA = Path(__file__).resolve().parent
TEMPLATE = INFRA / "trueup.yml"
DOCUMENT = INFRA / "ssm" / "run-document.yml"
INDENT = " " * 10  # the Content block's indentation in the template


def embed(template: str, document: str) -> str:
    """``template`` with the text of the block after ``Content: |`` replaced by ``document``."""
    block = re.compile(r"(\n      Content: \|\n)((?:(?:          .*)?\n)+?)(?=\n  \S|\n\S)")
    found = block.search(template)
    if found is None:
        raise SystemExit(f"no RunDocument 'Content: |' block in {TEMPLATE}")
    body = "".join(INDENT + line if line.strip() else "\n" if line.endswith("\n") else line
                   for line in document.splitlines(keepends=True))
    return template[:found.start(2)] + body + template[found.end(2):]


if __name__ == "__main__":
    TEMPLATE.write_text(embed(TEMPLATE.read_text(), DOCUMENT.read_text()))
    print(f"{TEMPLATE}: RunDocument Content = {DOCUMENT}")
