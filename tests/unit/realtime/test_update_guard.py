"""The update guard's handler, run as Lambda would run it: old vs new properties, CloudFormation's protocol."""
from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.stub import Stubber

from tests.conftest import REPO_ROOT, shared_botocore_session

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/FraudDetector-Realtime/abc"
TYPE_REMEDY = "{variant} moves from {old_type} to {new_type}: deploy twice"
NAMES_REMEDY = "variants [{old_names}] -> [{new_names}]: deploy once without guardrails"


def load_handler():
    spec = importlib.util.spec_from_file_location("update_guard_index", REPO_ROOT / "ml_constructs/realtime/update_guard/runtime" / "index.py")
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
    client = shared_botocore_session().create_client(
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


class ResponseURL:
    """A local HTTP server standing in for CloudFormation's pre-signed S3 URL; the first ``failures`` PUTs get 503."""

    def __init__(self, failures: int = 0) -> None:
        self.puts: list[dict] = []
        outer = self

        class Receiver(BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802 - http.server's naming
                outer.puts.append({"body": json.loads(self.rfile.read(int(self.headers["Content-Length"]))),
                                   "content_type": self.headers.get("Content-Type")})
                self.send_response(503 if len(outer.puts) <= failures else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Receiver)
        self.url = f"http://127.0.0.1:{self.server.server_port}/response"

    def __enter__(self) -> "ResponseURL":
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def test_the_response_is_put_to_the_presigned_url_in_cloudformations_format():
    with ResponseURL() as url:
        request = {**event("Update", DEPLOYED, DEPLOYED), "ResponseURL": url.url}
        # WHEN the guard answers with a very long reason
        guard.send_response(request, "FAILED", "x" * 10_000, "guard-id")
    # THEN one PUT carries the request's ids and a reason short enough for CloudFormation's 4 KB limit
    assert len(url.puts) == 1
    body = url.puts[0]["body"]
    assert body["Status"] == "FAILED" and body["PhysicalResourceId"] == "guard-id"
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (STACK_ID, "req-1", "Guard")
    assert len(json.dumps(body)) < 4096
    assert url.puts[0]["content_type"] == ""


def test_a_failed_put_is_retried_with_backoff_until_cloudformation_has_the_answer(caplog):
    # GIVEN a response URL whose first two PUTs fail (503)
    sleeps = []
    with ResponseURL(failures=2) as url:
        # WHEN the guard answers
        guard.send_response({**event("Update", DEPLOYED, DEPLOYED), "ResponseURL": url.url}, "SUCCESS", "ok",
                            "guard-id", sleep=sleeps.append)
    # THEN the same answer is PUT again after short, growing pauses, and the failures are logged
    assert [put["body"]["Status"] for put in url.puts] == ["SUCCESS"] * 3
    assert sleeps == [0.5, 1.0]
    assert "attempt 1 of 4 to send the SUCCESS answer failed" in caplog.text


def test_an_answer_that_never_gets_through_is_logged_and_raised(caplog):
    # GIVEN a response URL that always fails
    sleeps = []
    with ResponseURL(failures=99) as url:
        # WHEN the guard answers  THEN it gives up after a bounded number of attempts, loudly, so Lambda retries
        with pytest.raises(guard.ResponseNotDelivered, match="HTTPError"):
            guard.send_response({**event("Update", DEPLOYED, DEPLOYED), "ResponseURL": url.url}, "SUCCESS", "ok",
                                "guard-id", sleep=sleeps.append)
    assert len(url.puts) == guard.RESPONSE_ATTEMPTS and sleeps == [0.5, 1.0, 2.0]
    assert "CloudFormation did NOT receive the SUCCESS answer" in caplog.text


def test_retries_stop_when_the_invocation_is_about_to_time_out():
    # GIVEN a Lambda invocation with 3 s left and a URL that refuses connections (a closed port)
    with ResponseURL() as url:
        closed = url.url
    sleeps = []
    with pytest.raises(guard.ResponseNotDelivered):
        guard.send_response({**event("Create", None, DEPLOYED), "ResponseURL": closed}, "SUCCESS", "ok", "guard-id",
                            sleep=sleeps.append, time_left_s=lambda: 3.0)
    # THEN it does not sleep into the timeout, where it could not even log
    assert sleeps == []


@pytest.mark.parametrize("missing", ["RequestType", "StackId", "RequestId", "LogicalResourceId"])
def test_a_malformed_request_is_answered_failed_with_the_reason(missing):
    # GIVEN a request lacking a field CloudFormation always sends
    request = {key: value for key, value in event("Update", DEPLOYED, DEPLOYED).items() if key != missing}
    # WHEN the guard handles it
    status, answers, _ = run(request)
    # THEN CloudFormation still gets an answer, FAILED, naming what is missing
    assert status == "FAILED"
    assert answers == [("FAILED", f"malformed custom-resource request: {missing} is missing",
                        "fraud-detector-realtime-update-guard")]


@pytest.mark.parametrize("change, reason", [
    ({"RequestType": "Upgrade"}, "RequestType 'Upgrade' is not one of Create, Update, Delete"),
    ({"ResourceProperties": ["not", "an", "object"]}, "ResourceProperties is not an object"),
])
def test_an_unknown_request_type_or_unreadable_properties_are_answered_failed(change, reason):
    status, answers, _ = run({**event("Update", DEPLOYED, DEPLOYED), **change})
    assert status == "FAILED" and reason in answers[0][1]


def test_a_request_without_a_response_url_is_logged_since_it_cannot_be_answered(caplog):
    request = {key: value for key, value in event("Update", DEPLOYED, DEPLOYED).items() if key != "ResponseURL"}
    status, answers, _ = run(request)
    assert status == "FAILED" and answers == []
    assert "no ResponseURL in the event" in caplog.text


def test_a_bug_while_deciding_still_answers(monkeypatch):
    # GIVEN a defect that raises while the request is examined
    def broken(event, cloudformation=None):
        raise KeyError("Variants")

    monkeypatch.setattr(guard, "decide", broken)
    status, answers, _ = run(event("Update", DEPLOYED, DEPLOYED))
    # THEN CloudFormation is told, instead of waiting for an hour
    assert status == "FAILED" and answers[0][1] == "the update guard failed: KeyError: 'Variants'"


class LambdaContext:
    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def test_the_lambda_entry_point_answers_a_request_without_request_type_despite_a_failed_put():
    # GIVEN a request without RequestType, and a response URL whose first PUT fails
    request = {key: value for key, value in event("Update", DEPLOYED, DEPLOYED).items() if key != "RequestType"}
    with ResponseURL(failures=1) as url:
        # WHEN Lambda invokes the handler
        guard.handler({**request, "ResponseURL": url.url}, LambdaContext())
    # THEN the FAILED answer with the reason reaches CloudFormation on the second PUT
    assert len(url.puts) == 2
    body = url.puts[1]["body"]
    assert body["Status"] == "FAILED" and body["Reason"] == "malformed custom-resource request: RequestType is missing"
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (STACK_ID, "req-1", "Guard")
