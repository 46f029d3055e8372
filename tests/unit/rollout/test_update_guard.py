"""The update guard's handler, run as Lambda would run it: old vs new properties, CloudFormation's protocol."""
from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import botocore.session
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.stub import Stubber

from tests.conftest import REPO_ROOT

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/FraudDetector-Realtime/abc"
TYPE_REMEDY = "{variant} moves from {old_type} to {new_type}: deploy twice"
NAMES_REMEDY = "variants [{old_names}] -> [{new_names}]: deploy once without guardrails"


def load_handler():
    spec = importlib.util.spec_from_file_location("update_guard_index", REPO_ROOT / "update_guard_src" / "index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


guard = load_handler()


def properties(*variants: tuple[str, str, bool], guardrails: bool = True) -> dict:
    """Properties as CloudFormation delivers them to a custom resource: every scalar is a string."""
    return {"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:guard",
            "EndpointName": "fraud-detector-realtime",
            "Variants": [{"Name": name, "InstanceType": instance_type, "Autoscaled": str(autoscaled).lower()}
                         for name, instance_type, autoscaled in variants],
            "Guardrails": str(guardrails).lower(),
            "InstanceTypeChangeRemedy": TYPE_REMEDY, "VariantSetChangeRemedy": NAMES_REMEDY}


DEPLOYED = properties(("v1", "ml.m5.large", True), ("v2", "ml.m5.large", True))


def test_instance_type_change_of_an_autoscaled_variant_is_stopped_with_the_remedy():
    new = properties(("v1", "ml.m5.xlarge", True), ("v2", "ml.m5.large", True))
    assert guard.find_problems(DEPLOYED, new) == ["v1 moves from ml.m5.large to ml.m5.xlarge: deploy twice"]


def test_instance_type_change_is_allowed_once_autoscaling_was_removed():
    # GIVEN step 1 of the remedy deployed: the same types, autoscaling off
    step_one = properties(("v1", "ml.m5.large", False), ("v2", "ml.m5.large", False))
    assert guard.find_problems(DEPLOYED, step_one) == []
    # WHEN step 2 changes the type with autoscaling back on  THEN nothing is registered yet, so it may proceed
    step_two = properties(("v1", "ml.m5.xlarge", True), ("v2", "ml.m5.large", True))
    assert guard.find_problems(step_one, step_two) == []


def test_renamed_or_added_variants_are_stopped_only_under_guardrails():
    single = properties(("v1", "ml.m5.large", True))
    assert guard.find_problems(single, DEPLOYED) == ["variants [v1] -> [v1, v2]: deploy once without guardrails"]
    assert guard.find_problems(single, {**DEPLOYED, "Guardrails": "false"}) == []


def test_unchanged_variants_and_first_deploys_pass():
    assert guard.find_problems(DEPLOYED, properties(("v1", "ml.m5.large", True), ("v2", "ml.m5.large", True))) == []
    assert guard.find_problems(None, DEPLOYED) == []


# -- the CloudFormation protocol ------------------------------------------------------------------------------------
def event(request_type: str, old: dict | None, new: dict) -> dict:
    body = {"RequestType": request_type, "StackId": STACK_ID, "RequestId": "req-1", "LogicalResourceId": "Guard",
            "ResourceType": "Custom::EndpointUpdateGuard", "ResponseURL": "https://example.invalid/response",
            "ResourceProperties": new}
    if old is not None:
        body["OldResourceProperties"] = old
        body["PhysicalResourceId"] = "fraud-detector-realtime-update-guard"
    return body


def cloudformation(stack_status: str | None):
    client = botocore.session.get_session().create_client(
        "cloudformation", region_name="eu-west-1", config=Config(signature_version=UNSIGNED))
    stubber = Stubber(client)
    if stack_status:
        stubber.add_response("describe_stacks", {"Stacks": [{
            "StackName": "FraudDetector-Realtime", "StackId": STACK_ID, "CreationTime": "2026-11-25T00:00:00Z",
            "StackStatus": stack_status}]}, {"StackName": STACK_ID})
    else:
        stubber.add_client_error("describe_stacks", service_error_code="AccessDenied", http_status_code=403)
    stubber.activate()
    return client, stubber


def run(request, stack_status="UPDATE_IN_PROGRESS"):
    answers = []
    client, stubber = cloudformation(stack_status)
    status = guard.handle(request, cloudformation=client,
                          respond=lambda event, status, reason, physical_id: answers.append((status, reason,
                                                                                             physical_id)))
    return status, answers, stubber


def test_a_refused_update_fails_the_resource_with_the_reason():
    new = properties(("v1", "ml.m5.xlarge", True), ("v2", "ml.m5.large", True))
    status, answers, stubber = run(event("Update", DEPLOYED, new))
    assert status == "FAILED"
    assert answers == [("FAILED", "v1 moves from ml.m5.large to ml.m5.xlarge: deploy twice",
                        "fraud-detector-realtime-update-guard")]
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("stack_status", ["UPDATE_ROLLBACK_IN_PROGRESS", None])
def test_a_rollback_or_an_unreadable_stack_is_never_blocked(stack_status):
    # GIVEN the reverse of a change the guard would refuse: CloudFormation rolling back, or no stack status
    new = properties(("v1", "ml.m5.xlarge", True), ("v2", "ml.m5.large", True))
    status, answers, _ = run(event("Update", new, DEPLOYED), stack_status=stack_status)
    # THEN the guard answers SUCCESS: a failed rollback would leave the stack stuck
    assert status == "SUCCESS" and answers[0][0] == "SUCCESS"


@pytest.mark.parametrize("request_type", ["Create", "Delete"])
def test_create_and_delete_succeed_without_any_call(request_type):
    status, answers, stubber = run(event(request_type, None, DEPLOYED), stack_status="CREATE_IN_PROGRESS")
    assert status == "SUCCESS"
    assert answers[0][2] == "fraud-detector-realtime-update-guard"
    # THEN the stack was not even read
    with pytest.raises(AssertionError):
        stubber.assert_no_pending_responses()


def test_the_response_is_put_to_the_presigned_url_in_cloudformations_format():
    # GIVEN a local HTTP server standing in for CloudFormation's pre-signed S3 URL
    received = {}

    class Receiver(BaseHTTPRequestHandler):
        def do_PUT(self):  # noqa: N802 - http.server's naming
            received["body"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received["content_type"] = self.headers.get("Content-Type")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    request = {**event("Update", DEPLOYED, DEPLOYED),
               "ResponseURL": f"http://127.0.0.1:{server.server_port}/response"}
    # WHEN the guard answers with a very long reason
    guard.send_response(request, "FAILED", "x" * 10_000, "guard-id")
    thread.join(timeout=10)
    server.server_close()
    # THEN the body carries the request's ids and a reason short enough for CloudFormation's 4 KB limit
    body = received["body"]
    assert body["Status"] == "FAILED" and body["PhysicalResourceId"] == "guard-id"
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (STACK_ID, "req-1", "Guard")
    assert len(json.dumps(body)) < 4096
    assert received["content_type"] == ""
