"""``secret("/path")``: SecureString values for recipes, known to the redactor before use.

In a recipe or a template::

    - template: /etc/app/db.conf
      source: db.conf.j2            # password={{ secret("/trueup/prod/db/password") }}

    - file: /etc/app/token
      content: "{{ secret('/trueup/prod/app/token') }}\\n"

A secret read from an ``ssm:`` source's own tree costs no extra call; any other name is
one ``GetParameter`` (with decryption) per run. The value is added to the redactor
before it is returned, so no output, report, log or error message can show it; the
resource that used it becomes sensitive (no diff, mode 0600 unless the recipe sets one).
"""

from __future__ import annotations

from agent.errors import RenderError, TrueupError, Unreachable
from agent.redact import REDACTOR

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any


class SecretStore:
    """Resolves secret names: from what the source already fetched, else Parameter Store.

    Args:
        known: decrypted values by parameter name (from the source's tree).
        offline: why AWS is unreachable; when set, a name not in ``known`` is an error at
            once instead of another wait for the network.
    """

    def __init__(self, known: dict[str, str] | None = None, offline: str = "") -> None:
        self.values: dict[str, str] = dict(known or {})
        self.offline = offline
        for value in self.values.values():
            REDACTOR.add(value)

    def __call__(self, name: Any) -> str:
        if not isinstance(name, str) or not name.startswith("/") or len(name) < 2:
            raise RenderError(f"secret() takes an absolute Parameter Store name such as "
                              f"'/trueup/prod/db/password', not {name!r}")
        value = self.values.get(name)
        if value is not None:
            return value
        if self.offline:
            raise RenderError(f"secret {name!r} cannot be read: this run is offline "
                              f"({self.offline}) and secrets are never cached on disk")
        from agent.aws.params import get_secret

        try:
            value = get_secret(name)
        except Unreachable as exc:
            raise RenderError(f"secret {name!r} cannot be read: {exc}") from None
        except TrueupError as exc:
            raise RenderError(exc.message) from None
        REDACTOR.add(value)
        self.values[name] = value
        return value


class Placeholders(SecretStore):
    """For ``trueup validate`` / ``publish``: a stand-in value per name, no AWS call."""

    def __call__(self, name: Any) -> str:
        if not isinstance(name, str) or not name.startswith("/") or len(name) < 2:
            return super().__call__(name)
        return f"(secret {name})"


class Unavailable:
    """A secret attribute in an offline run: using it stops the run with a clear message."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def __str__(self) -> str:
        raise RenderError(f"attribute from SecureString {self.name} is not available: this "
                          f"run is offline ({self.reason}) and secrets are never cached on "
                          "disk")

    def __repr__(self) -> str:
        return f"<secret {self.name}: unavailable offline>"
