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
SageMaker still refuses what it refuses, only with a vaguer message. Every request that carries a
response URL is answered (FAILED, with the reason, when the request itself is malformed), and the
answer is retried, since an unanswered request holds the stack for up to an hour.

Standard library and boto3 only: this runs in the Lambda Python runtime.
"""
from __future__ import annotations

import functools
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Mapping

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)
#: CloudFormation accepts a response body of at most 4096 bytes; keep the reason well below.
MAX_REASON_CHARS = 3000
REQUEST_TYPES = ("Create", "Update", "Delete")
#: What a response must echo back for CloudFormation to match it to the request.
REQUIRED_KEYS = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId")
#: Without an answer CloudFormation waits for its custom-resource timeout (one hour by default), so
#: the PUT is retried; attempts, timeouts and backoff (0.5, 1, 2 s) fit the function's 30 s timeout.
RESPONSE_ATTEMPTS = 4
RESPONSE_TIMEOUT_S = 5.0
RESPONSE_BACKOFF_S = 0.5
#: Time kept back for logging after the last attempt, when the Lambda context tells the time left.
RESPONSE_MARGIN_S = 1.0


class ResponseNotDelivered(Exception):
    """Every attempt to PUT the answer to CloudFormation's pre-signed URL failed."""


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
            from botocore.config import Config

            # Bounded, so a slow API still leaves time to answer CloudFormation within the 30 s timeout.
            cloudformation = boto3.client("cloudformation", config=Config(
                connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 2}))
        stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
        return "ROLLBACK" in stacks[0]["StackStatus"]
    except Exception:  # noqa: BLE001 - fail open: SageMaker still validates the update itself
        LOGGER.exception("could not read the stack status of %s; not checking", stack_id)
        return True


def send_response(event: Mapping[str, Any], status: str, reason: str, physical_id: str, *,
                  attempts: int = RESPONSE_ATTEMPTS, sleep: Callable[[float], None] = time.sleep,
                  time_left_s: Callable[[], float] | None = None) -> None:
    """PUT the answer to the request's pre-signed URL, retrying with backoff; raises ``ResponseNotDelivered``."""
    body = json.dumps({
        "Status": status, "Reason": reason[:MAX_REASON_CHARS], "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId", ""), "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""), "Data": {}}).encode()
    failure = "no attempt made"
    for attempt in range(1, attempts + 1):
        try:
            # The URL is signed without a content type, so AWS's own cfn-response module sends an empty one.
            request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                             headers={"Content-Type": "", "Content-Length": str(len(body))})
            # S310: the URL is CloudFormation's pre-signed S3 URL, always https.
            with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_S) as response:  # noqa: S310
                LOGGER.info("CloudFormation received the %s answer (HTTP %s, attempt %d of %d)", status,
                            response.status, attempt, attempts)
                return
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:  # HTTPError too
            failure = f"{type(exc).__name__}: {exc}"
            LOGGER.warning("attempt %d of %d to send the %s answer failed: %s", attempt, attempts, status, failure)
        if attempt == attempts:
            break
        delay = RESPONSE_BACKOFF_S * 2 ** (attempt - 1)
        if time_left_s is not None and time_left_s() < delay + RESPONSE_TIMEOUT_S + RESPONSE_MARGIN_S:
            LOGGER.warning("not enough time left in this invocation for another attempt")
            break
        sleep(delay)
    LOGGER.error("CloudFormation did NOT receive the %s answer for %s of stack %s (last error: %s); it waits for its "
                 "custom-resource timeout unless a retried invocation answers", status, event.get("LogicalResourceId"),
                 event.get("StackId"), failure)
    raise ResponseNotDelivered(failure)


def request_problems(event: Any) -> list[str]:
    """Why ``event`` is not a CloudFormation custom-resource request this guard can answer properly."""
    if not isinstance(event, Mapping):
        return [f"the event is a {type(event).__name__}, not an object"]
    problems = [f"{key} is missing" for key in REQUIRED_KEYS if not event.get(key)]
    if event.get("RequestType") and event["RequestType"] not in REQUEST_TYPES:
        problems.append(f"RequestType {event['RequestType']!r} is not one of {', '.join(REQUEST_TYPES)}")
    for key in ("ResourceProperties", "OldResourceProperties"):
        if event.get(key) is not None and not isinstance(event[key], Mapping):
            problems.append(f"{key} is not an object")
    return problems


def decide(event: Mapping[str, Any], cloudformation: Any = None) -> tuple[str, str, str]:
    """(status, reason, physical resource id) for one request, without answering it."""
    problems = request_problems(event)
    properties = event.get("ResourceProperties") if isinstance(event.get("ResourceProperties"), Mapping) else {}
    physical_id = event.get("PhysicalResourceId") or f"{properties.get('EndpointName', 'endpoint')}-update-guard"
    if problems:
        return "FAILED", "malformed custom-resource request: " + "; ".join(problems), physical_id
    try:
        if event["RequestType"] == "Update" and not stack_is_rolling_back(event["StackId"], cloudformation):
            problems = find_problems(event.get("OldResourceProperties"), properties)
            if problems:
                return "FAILED", " | ".join(problems), physical_id
    except Exception:  # noqa: BLE001 - fail open, see the module docstring
        LOGGER.exception("guard check failed; letting the update proceed")
    return "SUCCESS", "no endpoint update problem found", physical_id


def handle(event: Any, *, cloudformation: Any = None,
           respond: Callable[[Mapping[str, Any], str, str, str], None] = send_response) -> str:
    """Decide and answer one CloudFormation request; returns the status sent.

    Every request that names a response URL gets an answer, whatever goes wrong in between.
    """
    try:
        status, reason, physical_id = decide(event, cloudformation)
    except Exception as exc:  # noqa: BLE001 - a bug here must not leave CloudFormation waiting
        LOGGER.exception("the update guard failed to decide; answering FAILED")
        status, reason, physical_id = "FAILED", f"the update guard failed: {type(exc).__name__}: {exc}", \
            "endpoint-update-guard"
    if not isinstance(event, Mapping) or not event.get("ResponseURL"):
        LOGGER.error("no ResponseURL in the event, so no answer can reach CloudFormation (%s): %s", reason,
                     json.dumps(event, default=str)[:MAX_REASON_CHARS])
        return status
    LOGGER.info("%s %s %s: %s", event.get("RequestType", "(no RequestType)"), event.get("LogicalResourceId"),
                status, reason)
    respond(event, status, reason, physical_id)
    return status


def handler(event: Any, context: Any) -> None:
    # If every PUT fails, ResponseNotDelivered propagates: CloudFormation invokes asynchronously, so
    # Lambda retries the invocation (twice by default) and a later attempt may still get through.
    time_left_s = None
    if hasattr(context, "get_remaining_time_in_millis"):
        def time_left_s() -> float:
            return context.get_remaining_time_in_millis() / 1000
    handle(event, respond=functools.partial(send_response, time_left_s=time_left_s))
