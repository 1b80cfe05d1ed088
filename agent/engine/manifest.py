"""The bake manifest: what ``trueup bake`` put into an image, kept for the boot runs.

``<state dir>/bake/manifest.json`` (seal keeps it)::

    {"trueup": "0.1.0", "baked_at": "2026-12-02T03:00:00.000Z", "exit_code": 0,
     "bundle": {"source": "/srv/recipes", "version": "v42", "sha256": "…"},
     "runlist": ["base", "web"],
     "resources": [{"resource": "package:nginx", "phase": "bake", "digest": "…",
                    "status": "changed", "duration_ms": 5210.3}]}

A boot run (``trueup run --phase boot``) on the image compares each baked resource's
input digest with the boot-time bundle's: equal ones stay as baked, changed ones are
converged again and reported as having "left the image".
"""

from __future__ import annotations

import json
import os
from typing import Any

MANIFEST = os.path.join("bake", "manifest.json")


def path(state_dir: str) -> str:
    return os.path.join(state_dir, MANIFEST)


def load(state_dir: str) -> dict[str, Any] | None:
    """The manifest of the bake this machine came from, or None (not a baked image)."""
    try:
        with open(path(state_dir), "rb") as fh:
            data = json.loads(fh.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        from agent.errors import TrueupError

        raise TrueupError(f"the bake manifest cannot be read ({exc}); bake the image again "
                          "or remove it to converge every resource", path(state_dir)) from None
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        from agent.errors import TrueupError

        raise TrueupError("the bake manifest is not one trueup wrote (no resources list)",
                          path(state_dir))
    return data


def digests(manifest: dict[str, Any]) -> dict[str, str]:
    """Baked resource → its input digest at bake time."""
    return {str(r.get("resource")): str(r.get("digest")) for r in manifest["resources"]
            if isinstance(r, dict)}


def write(state_dir: str, data: dict[str, Any]) -> str:
    """Store the manifest atomically (mode 0644: it holds no secret); its path."""
    from agent.host.system import write_file_atomic

    target = path(state_dir)
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    write_file_atomic(target, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(),
                      mode=0o644)
    return target


def tree_sha256(root: str) -> str:
    """sha256 over a bundle folder: every file's relative path and content, sorted."""
    import hashlib

    digest = hashlib.sha256()
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(folder, name)
            if not os.path.isfile(full) or os.path.islink(full):
                continue
            rel = os.path.relpath(full, root)
            with open(full, "rb") as fh:
                content = hashlib.sha256(fh.read()).hexdigest()
            digest.update(f"{rel}\0{content}\n".encode())
    return digest.hexdigest()
