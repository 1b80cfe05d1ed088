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
