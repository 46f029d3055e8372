"""CloudFormation custom resource: stop an endpoint update that SageMaker would refuse, before it starts.

The stack makes the SageMaker endpoint depend on this resource, whose properties list the variants
(name, instance type, autoscaled or not) and whether deployment guardrails are on. CloudFormation
calls it only when those change, with the deployed values in ``OldResourceProperties``; it fails
the deploy with the exact remedy, before ``UpdateEndpoint`` runs, when:

* an autoscaled variant changes its instance type: SageMaker refuses ``UpdateEndpoint`` while the
  variant is a registered scalable target, and CloudFormation cannot deregister it first
  (aws-cdk #29626; "Update endpoints that use auto scaling", SageMaker developer guide);
* the variant names change while guardrails are on: "your new endpoint configuration must have
  the same variant name as the old endpoint configuration" ("Deployment guardrails - Exclusions").

It never blocks a rollback (the stack status says ROLLBACK) and fails open on unexpected errors:
SageMaker still refuses what it refuses, only with a vaguer message.

Standard library and boto3 only: this runs in the Lambda Python runtime.
"""
from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any, Callable, Mapping

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
#: CloudFormation accepts a response body of at most 4096 bytes; keep the reason well below.
MAX_REASON_CHARS = 3000


def _variants(properties: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    return {variant["Name"]: variant for variant in (properties or {}).get("Variants", [])}


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def find_problems(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Why updating from ``old`` to ``new`` properties would fail in SageMaker (empty when it would not)."""
    if not old:
        return []  # a new endpoint, or the guard was just added: nothing deployed to compare with
    before, after = _variants(old), _variants(new)
    problems = []
    for name in sorted(set(before) & set(after)):
        old_type, new_type = before[name]["InstanceType"], after[name]["InstanceType"]
        if old_type != new_type and str(before[name].get("Autoscaled")).lower() == "true":
            problems.append(_fill(new.get("InstanceTypeChangeRemedy", ""), variant=name, old_type=old_type,
                                  new_type=new_type))
    guardrails_on = str(new.get("Guardrails")).lower() == "true"
    if guardrails_on and set(before) != set(after):
        problems.append(_fill(new.get("VariantSetChangeRemedy", ""), old_names=", ".join(sorted(before)),
                              new_names=", ".join(sorted(after))))
    return problems


def stack_is_rolling_back(stack_id: str, cloudformation: Any = None) -> bool:
    """True while the stack rolls back, and when that cannot be told (never block a rollback)."""
    try:
        if cloudformation is None:
            import boto3

            cloudformation = boto3.client("cloudformation")
        stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
        return "ROLLBACK" in stacks[0]["StackStatus"]
    except Exception:  # noqa: BLE001 - fail open: SageMaker still validates the update itself
        LOGGER.exception("could not read the stack status of %s; not checking", stack_id)
        return True


def send_response(event: Mapping[str, Any], status: str, reason: str, physical_id: str) -> None:
    body = json.dumps({
        "Status": status, "Reason": reason[:MAX_REASON_CHARS], "PhysicalResourceId": physical_id,
        "StackId": event["StackId"], "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"], "Data": {}}).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - CloudFormation's pre-signed URL
        LOGGER.info("CloudFormation answered %s", response.status)


def handle(event: Mapping[str, Any], *, cloudformation: Any = None,
           respond: Callable[[Mapping[str, Any], str, str, str], None] = send_response) -> str:
    """Decide and answer one CloudFormation request; returns the status sent."""
    properties = event.get("ResourceProperties", {})
    physical_id = event.get("PhysicalResourceId") or f"{properties.get('EndpointName', 'endpoint')}-update-guard"
    status, reason = "SUCCESS", "no endpoint update problem found"
    try:
        if event["RequestType"] == "Update" and not stack_is_rolling_back(event["StackId"], cloudformation):
            problems = find_problems(event.get("OldResourceProperties"), properties)
            if problems:
                status, reason = "FAILED", " | ".join(problems)
    except Exception:  # noqa: BLE001 - fail open, see the module docstring
        LOGGER.exception("guard check failed; letting the update proceed")
    LOGGER.info("%s %s: %s", event["RequestType"], status, reason)
    respond(event, status, reason, physical_id)
    return status


def handler(event: Mapping[str, Any], context: Any) -> None:
    handle(event)
