"""The AWS calls that carry a run report off the instance: CloudWatch Logs, SSM Compliance
and CloudWatch metrics. What goes into them is built in ``agent.engine.shipping``.

Each function makes the fewest calls it can: ``put_log_events`` is one ``PutLogEvents``
per batch, and creates the log group and stream only when AWS says they are missing.
Errors are :class:`agent.errors.Unreachable` (network, throttling, 5xx) or TrueupError
(refused, invalid), as everywhere in ``agent.aws``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from agent.aws.clients import call, client, error_parts

METRICS_NAMESPACE = "trueup"


def put_log_events(group: str, stream: str, events: Sequence[dict[str, Any]],
                   retention_days: int = 30) -> dict[str, Any]:
    """``PutLogEvents`` of ``events`` ({"timestamp": ms, "message": str}, in time order)
    to ``group``/``stream``.

    A missing stream (``ResourceNotFoundException``) is created, and the events sent
    again; the log group too when it is missing as well (the stack in infra/ creates it,
    and the instance role may create streams only). The first run of an instance costs
    three calls, every later one a single ``PutLogEvents``. Returns the response
    (``rejectedLogEventsInfo`` says which events AWS refused as too old or too new).
    """
    logs = client("logs")
    what = f"logs PutLogEvents {group} {stream}"
    missing = _MISSING.copy()
    done = call(_or_missing(logs.put_log_events, missing), what, logGroupName=group,
                logStreamName=stream, logEvents=list(events))
    if done is not missing:
        return done
    made = call(_or_missing(logs.create_log_stream, missing), f"logs CreateLogStream {stream}",
                logGroupName=group, logStreamName=stream)
    if made is missing:  # the group is missing too
        _create(logs.create_log_group, f"logs CreateLogGroup {group}", logGroupName=group)
        if retention_days:
            call(logs.put_retention_policy, f"logs PutRetentionPolicy {group}",
                 logGroupName=group, retentionInDays=retention_days)
        _create(logs.create_log_stream, f"logs CreateLogStream {group} {stream}",
                logGroupName=group, logStreamName=stream)
    return call(logs.put_log_events, what, logGroupName=group, logStreamName=stream,
                logEvents=list(events))


_MISSING: dict[str, Any] = {}


def _or_missing(fn: Any, missing: Any) -> Any:
    """``fn`` that returns ``missing`` for ResourceNotFoundException instead of raising
    (and {} for ResourceAlreadyExistsException: another run made it first)."""
    from botocore.exceptions import ClientError

    def wrapped(**kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = error_parts(exc)[0]
            if code == "ResourceNotFoundException":
                return missing
            if code == "ResourceAlreadyExistsException":
                return {}
            raise

    return wrapped


def _raise(exc: Exception) -> Any:
    raise exc


def _create(fn: Any, what: str, **kwargs: Any) -> None:
    """Create a log group or stream; one that exists already is fine."""
    from botocore.exceptions import ClientError

    try:
        fn(**kwargs)
    except ClientError as exc:
        if error_parts(exc)[0] != "ResourceAlreadyExistsException":
            call(_raise, what, exc=exc)


def put_compliance_items(instance_id: str, compliance_type: str, execution_id: str,
                         execution_time: dt.datetime, items: Sequence[dict[str, Any]],
                         content_hash: str) -> None:
    """One ``ssm:PutComplianceItems`` (upload type COMPLETE) for a managed instance.

    ``items`` are SSM compliance items: ``Id``, ``Title``, ``Severity``, ``Status``
    (COMPLIANT or NON_COMPLIANT), ``Details``. A COMPLETE upload replaces every item of
    ``compliance_type`` the instance had, so a resource dropped from the recipes
    disappears from the fleet view.
    """
    ssm = client("ssm")
    call(ssm.put_compliance_items, f"ssm PutComplianceItems {compliance_type} {instance_id}",
         ResourceId=instance_id, ResourceType="ManagedInstance",
         ComplianceType=compliance_type,
         ExecutionSummary={"ExecutionTime": execution_time, "ExecutionId": execution_id,
                           "ExecutionType": "Command"},
         Items=list(items), ItemContentHash=content_hash, UploadType="COMPLETE")


def put_metrics(metrics: Sequence[dict[str, Any]], namespace: str = METRICS_NAMESPACE) -> None:
    """One ``cloudwatch:PutMetricData`` with ``metrics`` (MetricData entries)."""
    cw = client("cloudwatch")
    call(cw.put_metric_data, f"cloudwatch PutMetricData {namespace}", Namespace=namespace,
         MetricData=list(metrics))


def instance_id() -> str | None:
    """This instance's id from IMDSv2; None off EC2 (or with IMDS disabled)."""
    from agent.aws import imds

    try:
        return imds.default_client().instance_id()
    except imds.ImdsError:
        return None
