"""The fleet side: SSM Run Command to converge many instances, and what they reported.

Used by ``trueup fleet run`` and ``trueup fleet status`` on an operator's machine or in
CI, never by the agent on an instance.
"""

from __future__ import annotations

from typing import Any

from agent.aws.clients import call, client, pages

TERMINAL = {"Success", "Cancelled", "Failed", "TimedOut", "DeliveryTimedOut",
            "ExecutionTimedOut", "Undeliverable", "Terminated", "InvalidPlatform",
            "AccessDenied"}


def send_command(document: str, targets: list[dict[str, Any]], parameters: dict[str, list[str]],
                 max_concurrency: str, max_errors: str, comment: str = "",
                 timeout_s: int = 3600) -> dict[str, Any]:
    """One ``ssm:SendCommand`` of ``document`` to the instances ``targets`` select; the
    Command (``CommandId``, ``Status``, ``TargetCount`` …)."""
    ssm = client("ssm")
    kwargs: dict[str, Any] = {
        "DocumentName": document, "Targets": targets, "Parameters": parameters,
        "MaxConcurrency": max_concurrency, "MaxErrors": max_errors,
        "TimeoutSeconds": timeout_s}
    if comment:
        kwargs["Comment"] = comment[:100]
    return call(ssm.send_command, f"ssm SendCommand {document}", **kwargs)["Command"]


def command(command_id: str) -> dict[str, Any]:
    """The Command of ``command_id`` (``ssm:ListCommands``)."""
    ssm = client("ssm")
    found = call(ssm.list_commands, f"ssm ListCommands {command_id}", CommandId=command_id)
    commands = found.get("Commands") or []
    return commands[0] if commands else {}


def invocations(command_id: str) -> list[dict[str, Any]]:
    """Every invocation of ``command_id`` with its plugins' output
    (``ssm:ListCommandInvocations`` with ``Details``, all pages)."""
    ssm = client("ssm")
    out: list[dict[str, Any]] = []
    for page in pages(ssm.list_command_invocations,
                      f"ssm ListCommandInvocations {command_id}", CommandId=command_id,
                      Details=True, MaxResults=50):
        out += page.get("CommandInvocations") or []
    return out


def compliance_summaries(types: list[str]) -> list[dict[str, Any]]:
    """Per-instance compliance summaries of ``types`` (``ssm:ListResourceComplianceSummaries``,
    all pages)."""
    ssm = client("ssm")
    out: list[dict[str, Any]] = []
    for page in pages(ssm.list_resource_compliance_summaries,
                      "ssm ListResourceComplianceSummaries",
                      Filters=[{"Key": "ComplianceType", "Values": types, "Type": "EQUAL"}],
                      MaxResults=50):
        out += page.get("ResourceComplianceSummaryItems") or []
    return out


def instances(tags: dict[str, str]) -> list[dict[str, Any]]:
    """Instances (not terminated) carrying every tag of ``tags``: id, state and Name tag
    (``ec2:DescribeInstances``, all pages)."""
    ec2 = client("ec2")
    filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
    filters.append({"Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"]})
    out = []
    for page in pages(ec2.describe_instances, "ec2 DescribeInstances", Filters=filters):
        for reservation in page.get("Reservations", []):
            for inst in reservation.get("Instances", []):
                names = [t["Value"] for t in inst.get("Tags", []) if t["Key"] == "Name"]
                out.append({"instance_id": inst["InstanceId"],
                            "state": inst.get("State", {}).get("Name", ""),
                            "name": names[0] if names else ""})
    return sorted(out, key=lambda i: i["instance_id"])
