"""Boot-time values (secrets and EC2 facts): which resource read one, and the rule that
such a resource is never baked into an image.

``--phase bake`` (Packer, ``trueup bake``) runs on the build instance: its instance id,
tags and secrets are not the ones of the instances that will boot from the image. So a
resource whose values read ``secret(...)``, a SecureString attribute or ``facts.ec2`` is
boot-time, whatever its ``phase`` says, and rendering it in a bake stops the run::

    - template: /etc/app/db.conf        # reads secret(): give it phase: boot
      source: db.conf.j2
      phase: boot

A resource that rendered a secret becomes ``sensitive`` (no diff, values hidden); a
file it writes gets mode 0600 unless the recipe sets ``mode``, and its replaced content
is not kept as a backup unless the recipe sets ``backup``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from agent.compile.render import RenderError
from agent.model import AttrMapping
from agent.redact import REDACTOR

PRIVATE_MODE = 0o600


class BakeRefused(RenderError):
    """A boot-time value was read while rendering for --phase bake."""


class BootReads:
    """Counts reads of boot-time values while a catalog is compiled."""

    def __init__(self, phase: str) -> None:
        self.bake = phase == "bake"
        self.secrets = 0
        self.instance = 0

    def read(self, what: str) -> None:
        """Note one read of ``what`` (``secret('/x')``, ``facts.ec2.region``), or refuse it."""
        if self.bake:
            raise BakeRefused(f"{what} is only known at boot, so a resource that reads it "
                              "cannot be baked: give the resource (or its recipe) phase: boot")
        if what.startswith("secret"):
            self.secrets += 1
        else:
            self.instance += 1

    def secret_function(self, store: Callable[[Any], str]) -> Callable[[Any], str]:
        """``secret(name)`` for the renderer: counted, refused in a bake, then resolved."""

        def secret(name: Any) -> str:
            self.read(f"secret({name!r})")
            return store(name)

        return secret

    def watch_facts(self, facts: Any) -> None:
        """Make every read of ``facts.ec2.<key>`` count as a boot-time read."""
        gather = facts.gatherer("ec2")
        if gather is not None:
            facts.provide("ec2", lambda f: Watched(gather(f), self))

    def mark(self) -> tuple[int, int]:
        return self.secrets, self.instance

    def settle(self, res: Any, mark: tuple[int, int]) -> dict[str, Any]:
        """After ``res`` is rendered and prepared: the spec values a secret in it imposes.

        ``{}`` when no secret went into it. Otherwise it becomes ``sensitive``; a
        ``mode`` the recipe did not set becomes 0600, and a ``backup`` it did not set
        becomes false (a backup would be one more copy of the secret), for kinds that
        have those fields. The caller builds the resource again from the new spec: a
        resource never changes its own.
        """
        used = self.secrets > mark[0] or _holds_secret(res)
        if not used:
            return {}
        if self.bake:
            raise BakeRefused("its values hold a secret (a SecureString attribute), which is "
                              "only known at boot, so it cannot be baked: give the resource "
                              "(or its recipe) phase: boot")
        spec = res.spec
        overrides: dict[str, Any] = {"sensitive": True}
        if "mode" in spec and not spec.given("mode"):
            overrides["mode"] = f"{PRIVATE_MODE:04o}"
        if "backup" in spec and not spec.given("backup"):
            overrides["backup"] = False
        return overrides


def _holds_secret(res: Any) -> bool:
    if not REDACTOR:
        return False
    if REDACTOR.found_in(res.name) or _spec_holds(res.spec):
        return True
    desired = getattr(res, "desired", None)
    return isinstance(desired, bytes) and REDACTOR.found_in(desired.decode("utf-8", "replace"))


def _spec_holds(value: Any) -> bool:
    if isinstance(value, str):
        return REDACTOR.found_in(value)
    if isinstance(value, Mapping):
        return any(_spec_holds(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_spec_holds(v) for v in value)
    return False


class Watched(AttrMapping):
    """``facts.ec2`` as recipes see it: each key read is noted (and refused in a bake)."""

    def __init__(self, inner: Mapping[str, Any], reads: BootReads) -> None:
        self._inner = inner
        self._reads = reads

    def __getitem__(self, key: str) -> Any:
        self._reads.read(f"facts.ec2.{key}")
        return self._inner[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner)

    def __len__(self) -> int:
        return len(self._inner)

    def as_dict(self) -> dict[str, Any] | None:
        inner = self._inner
        return inner.as_dict() if hasattr(inner, "as_dict") else dict(inner)


# --- found in the source, before anything is rendered ------------------------------------


def source_reads(renderer: Any, text: str) -> list[tuple[str, int]]:
    """Boot-time values ``text`` (a recipe value or a template file) reads anywhere, taken
    or not: ``[("secret('/db/pw')", line), ("facts.ec2", line)]``; lines count from 1.

    Read from Jinja's syntax tree, so a branch that is false on the build machine still
    counts. Text that does not parse yields nothing here (rendering reports it).
    """
    if "{" not in text:
        return []
    from jinja2 import nodes

    try:
        tree = renderer.env().parse(text)
    except Exception:  # jinja2.TemplateSyntaxError: the renderer names it
        return []
    found: list[tuple[str, int]] = []
    for node in tree.find_all((nodes.Call, nodes.Getattr, nodes.Getitem)):
        what = _boot_value(node, nodes)
        if what:
            found.append((what, node.lineno))
    return found


def reads_instance(renderer: Any, texts: list[str]) -> bool:
    """Whether any of ``texts`` reads something an image cannot hold for every instance:
    any ``facts`` (host name, addresses, EC2 metadata) or ``secret(...)``."""
    from jinja2 import nodes

    for text in texts:
        if "{" not in text:
            continue
        try:
            tree = renderer.env().parse(text)
        except Exception:  # jinja2.TemplateSyntaxError
            return True  # unknown: not a candidate for baking
        for node in tree.find_all(nodes.Name):
            if node.name in ("facts", "secret"):
                return True
    return False


def _boot_value(node: Any, nodes: Any) -> str | None:
    if isinstance(node, nodes.Call):
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name == "secret":
            arg = node.args[0] if node.args else None
            shown = repr(arg.value) if isinstance(arg, nodes.Const) else "..."
            return f"secret({shown})"
        if (isinstance(callee, nodes.Getattr) and callee.attr == "get"
                and _is_facts(callee.node, nodes) and node.args
                and isinstance(node.args[0], nodes.Const) and node.args[0].value == "ec2"):
            return "facts.ec2"
        return None
    if isinstance(node, nodes.Getattr):
        return "facts.ec2" if node.attr == "ec2" and _is_facts(node.node, nodes) else None
    arg = node.arg
    if isinstance(arg, nodes.Const) and arg.value == "ec2" and _is_facts(node.node, nodes):
        return "facts.ec2"
    return None


def _is_facts(node: Any, nodes: Any) -> bool:
    return isinstance(node, nodes.Name) and node.name == "facts"


def refuse_baked_reads(ident: str, what: str, file: str, line: int) -> None:
    """The error for a ``phase: bake`` resource whose source reads a boot-time value."""
    from agent.errors import TrueupError

    raise TrueupError(f"{ident} has phase: bake but reads {what}, which is only known at "
                      "boot: give the resource (or its recipe) phase: boot, or take the "
                      "value from attributes", file, line)


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a recipe value (lists and mappings walked)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings_in(v)


# --- what a baked resource was made from -------------------------------------------------

#: Fields that say when or how a resource runs, not what it makes.
NOT_INPUTS = frozenset({"phase", "retries", "retry_delay", "ignore_failure", "immediately"})


def input_digest(res: Any) -> str:
    """sha256 of what ``res`` makes: its kind, name, rendered fields and content.

    Equal digests at bake and at boot mean the image already holds this resource as the
    boot-time bundle declares it; a changed template or value changes the digest.
    """
    import hashlib
    import json

    spec = res.spec
    fields = {key: spec[key] for key in spec if key not in NOT_INPUTS}
    desired = getattr(res, "desired", None)
    material = {"kind": res.kind, "name": res.name, "fields": fields,
                "content": hashlib.sha256(desired).hexdigest()
                if isinstance(desired, bytes) else None}
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
