"""``facts.ec2``: this instance's identity from IMDSv2, read the first time a run uses it.

In a recipe::

    - file: /etc/instance-id
      content: "{{ facts.ec2.instance_id }} in {{ facts.ec2.availability_zone }}\\n"
    - file: /etc/role
      content: "{{ facts.ec2.tags['trueup:role'] }}\\n"

Keys: instance_id, instance_type, ami_id, region, availability_zone, account_id,
private_ip, architecture, iam_role, instance_profile_arn, tags. Tags come from IMDS
when the instance exposes them (``InstanceMetadataTags=enabled``), else from one
``ec2:DescribeTags``. A run makes one :class:`InstanceFacts` and passes it to everything
that needs the instance (the environment and role tags, the source, ``facts.ec2``), so
IMDS and DescribeTags are asked at most once per run. Off EC2 a read fails fast with a
message saying so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from agent.errors import RenderError, TrueupError, Unreachable

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

KEYS = ("instance_id", "instance_type", "ami_id", "region", "availability_zone", "account_id",
        "private_ip", "architecture", "iam_role", "instance_profile_arn", "tags")


class Ec2Unavailable(RenderError):
    """Instance facts were asked for but IMDS cannot give them (not on EC2, disabled ...)."""


class _Ec2Keys(Mapping):  # Mapping[str, Any]
    """The instance-fact names as a mapping with attribute access; values from ``[key]``."""

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or key not in KEYS:
            raise AttributeError(key)
        return self[key]

    def __iter__(self) -> Iterator[str]:
        return iter(KEYS)

    def __len__(self) -> int:
        return len(KEYS)


class InstanceFacts(_Ec2Keys):
    """The instance facts of one run, as a lazy mapping (``facts.ec2.region``).

    The first read asks IMDS for everything (and DescribeTags once, when IMDS does not
    expose tags); later reads, from any part of the run, use that answer.
    """

    def __init__(self) -> None:
        self._data: dict[str, Any] | None = None
        self._on_ec2: bool | None = None

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            from agent.aws import imds

            try:
                data = imds.ec2_facts()
            except imds.ImdsError as exc:
                raise Ec2Unavailable(f"facts.ec2 is not available: {exc}") from None
            if data.get("tags") is None:
                data["tags"] = _describe_tags(data["instance_id"])
            self._data = data
        return self._data

    def __getitem__(self, key: str) -> Any:
        if key not in KEYS:
            raise KeyError(key)
        return self._load()[key]

    def on_ec2(self) -> bool:
        """Whether IMDS answers (one token request, remembered for the run)."""
        if self._on_ec2 is None:
            from agent.aws import imds

            try:
                imds.default_client().token()
                self._on_ec2 = True
            except imds.ImdsError:
                self._on_ec2 = False
        return self._on_ec2

    def tag(self, name: str) -> str | None:
        """The value of instance tag ``name``; None off EC2 or when the instance lacks it."""
        if not self.on_ec2():
            return None
        try:
            return self["tags"].get(name)
        except Ec2Unavailable as exc:
            raise TrueupError(f"cannot read the instance tag {name!r}: {exc}") from None

    def as_dict(self) -> dict[str, Any] | None:
        """Every fact, or None off EC2 (for ``trueup facts``)."""
        try:
            return dict(self._load())
        except Ec2Unavailable:
            return None


def _describe_tags(instance_id: str) -> dict[str, str]:
    """The instance's tags from ``ec2:DescribeTags`` (when IMDS does not expose them)."""
    from agent.aws.clients import client, pages

    try:
        ec2 = client("ec2")
        return {tag["Key"]: tag.get("Value", "")
                for page in pages(ec2.describe_tags, "ec2 DescribeTags",
                                  Filters=[{"Name": "resource-id", "Values": [instance_id]}])
                for tag in page.get("Tags", [])}
    except (TrueupError, Unreachable) as exc:
        raise Ec2Unavailable(f"instance tags are not in IMDS (enable InstanceMetadataTags) and "
                             f"DescribeTags failed: {exc}") from None


class Placeholder(_Ec2Keys):
    """Stand-in instance facts for ``trueup validate``: no IMDS call."""

    def __getitem__(self, key: str) -> Any:
        if key not in KEYS:
            raise KeyError(key)
        return _AnyTag() if key == "tags" else f"(ec2 {key})"

    def tag(self, name: str) -> str | None:
        return None


class _AnyTag(dict):
    def __missing__(self, key: str) -> str:
        return f"(tag {key})"

    def get(self, key: str, default: Any = None) -> Any:
        return self[key]
