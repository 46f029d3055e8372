"""ops.traffic against botocore's Stubber: real API shapes, a fake region, no credentials, no network."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.stub import Stubber

from ops import traffic
from tests.conftest import REPO_ROOT, shared_botocore_session

ENDPOINT = "fraud-detector-realtime"
REGION = "eu-west-1"
ARN = f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}"
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)
SAVED_AT = "2026-11-25T12:00:00Z"


def endpoint(status="InService", weights=(("v1", 0.9), ("v2", 0.1)), desired=None, counts=2, reason=None):
    """A DescribeEndpoint response in SageMaker's shape."""
    desired = dict(desired or weights)
    response = {
        "EndpointName": ENDPOINT, "EndpointArn": ARN, "EndpointConfigName": "EndpointConfig-abc",
        "EndpointStatus": status, "CreationTime": NOW, "LastModifiedTime": NOW,
        "ProductionVariants": [{"VariantName": name, "CurrentWeight": weight, "DesiredWeight": desired[name],
                                "CurrentInstanceCount": counts, "DesiredInstanceCount": counts}
                               for name, weight in weights]}
    if reason:
        response["FailureReason"] = reason
    return response


class FakeClock:
    """time.monotonic and time.sleep that only move when the command sleeps."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Harness:
    def __init__(self) -> None:
        session = shared_botocore_session()
        config = Config(signature_version=UNSIGNED)  # the Stubber answers before anything is signed or sent
        self.sagemaker = session.create_client("sagemaker", region_name=REGION, config=config)
        self.cloudwatch = session.create_client("cloudwatch", region_name=REGION, config=config)
        self.sm, self.cw = Stubber(self.sagemaker), Stubber(self.cloudwatch)
        self.clock, self.out, self.err = FakeClock(), io.StringIO(), io.StringIO()

    def run(self, *argv: str) -> int:
        with self.sm, self.cw:
            code = traffic.main([*argv, "--endpoint", ENDPOINT], clients=(self.sagemaker, self.cloudwatch),
                                sleep=self.clock.sleep, clock=self.clock, now=lambda: NOW, out=self.out,
                                err=self.err)
            # THEN every queued AWS call was made, in order (and no other call: the Stubber raises on those)
            self.sm.assert_no_pending_responses()
            self.cw.assert_no_pending_responses()
        return code

    # -- queued calls, each checked against the parameters the command must send ------------------------------
    def describe(self, response):
        self.sm.add_response("describe_endpoint", response, {"EndpointName": ENDPOINT})

    def tags(self, tags):
        self.sm.add_response("list_tags", {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]},
                             {"ResourceArn": ARN})

    def save_previous(self, remembered):
        self.sm.add_response("add_tags", {"Tags": []}, {"ResourceArn": ARN, "Tags": [
            {"Key": traffic.PREVIOUS_WEIGHTS_TAG, "Value": remembered},
            {"Key": traffic.PREVIOUS_AT_TAG, "Value": SAVED_AT}]})

    def update(self, weights):
        self.sm.add_response("update_endpoint_weights_and_capacities", {"EndpointArn": ARN}, {
            "EndpointName": ENDPOINT,
            "DesiredWeightsAndCapacities": [{"VariantName": n, "DesiredWeight": w} for n, w in weights]})


@pytest.fixture
def aws() -> Harness:
    return Harness()


# -- status ---------------------------------------------------------------------------------------------------------
def test_status_shows_weights_counts_alarm_states_and_the_rollback_target(aws):
    # GIVEN an endpoint at 90/10 with two instances per variant, one alarm firing, saved weights in its tags
    aws.describe(endpoint())
    aws.tags({traffic.PREVIOUS_WEIGHTS_TAG: "v1=1 v2=0", traffic.PREVIOUS_AT_TAG: SAVED_AT, "project": "x"})
    aws.cw.add_response("describe_alarms", {"MetricAlarms": [
        {"AlarmName": f"{ENDPOINT}-v2-5xx", "StateValue": "ALARM"},
        {"AlarmName": f"{ENDPOINT}-v1-latency-p99", "StateValue": "OK"}]}, {"AlarmNamePrefix": f"{ENDPOINT}-"})
    # WHEN status runs
    assert aws.run("status") == traffic.EXIT_OK
    text = aws.out.getvalue()
    # THEN it shows each variant's weights, share of traffic and instance counts
    assert f"endpoint {ENDPOINT}: InService" in text
    assert any(line.split() == ["v1", "0.9", "0.9", "90%", "2", "2"] for line in text.splitlines())
    assert any(line.split() == ["v2", "0.1", "0.1", "10%", "2", "2"] for line in text.splitlines())
    # AND the alarm states, and what rollback would restore
    assert f"ALARM             {ENDPOINT}-v2-5xx" in text
    assert f"rollback target: v1=1 v2=0 (saved {SAVED_AT})" in text


def test_status_json_is_machine_readable_and_follows_pagination(aws):
    aws.describe(endpoint())
    aws.tags({})
    aws.cw.add_response("describe_alarms", {"MetricAlarms": [{"AlarmName": f"{ENDPOINT}-v1-5xx", "StateValue": "OK"}],
                                            "NextToken": "page2"}, {"AlarmNamePrefix": f"{ENDPOINT}-"})
    aws.cw.add_response("describe_alarms", {"MetricAlarms": [{"AlarmName": f"{ENDPOINT}-v2-5xx",
                                                              "StateValue": "INSUFFICIENT_DATA"}]},
                        {"AlarmNamePrefix": f"{ENDPOINT}-", "NextToken": "page2"})
    assert aws.run("status", "--json") == traffic.EXIT_OK
    report = json.loads(aws.out.getvalue())
    assert [v["share"] for v in report["variants"]] == pytest.approx([0.9, 0.1])
    assert [a["state"] for a in report["alarms"]] == ["OK", "INSUFFICIENT_DATA"]
    assert report["previous_weights"] is None


def test_unknown_endpoint_is_refused_with_its_name_and_region(aws):
    aws.sm.add_client_error("describe_endpoint", service_error_code="ValidationException",
                            service_message=f'Could not find endpoint "{ENDPOINT}".', http_status_code=400)
    assert aws.run("status") == traffic.EXIT_REFUSED
    assert f"endpoint '{ENDPOINT}' not found in region {REGION}" in aws.err.getvalue()


# -- shift ------------------------------------------------------------------------------------------------------------
def test_shift_saves_the_weights_in_effect_then_updates_and_waits_for_in_service(aws):
    # GIVEN 90/10, InService
    aws.describe(endpoint())
    # THEN the 90/10 weights are saved in the endpoint's tags before anything changes
    aws.save_previous("v1=0.9 v2=0.1")
    aws.update([("v1", 0.5), ("v2", 0.5)])
    # AND the command polls until the endpoint is InService with the new weights
    aws.describe(endpoint(status="Updating", desired=[("v1", 0.5), ("v2", 0.5)]))
    aws.describe(endpoint(weights=[("v1", 0.5), ("v2", 0.5)]))
    # WHEN shifting to 50/50
    assert aws.run("shift", "--weights", "v1=0.5,v2=0.5", "--poll-interval", "5") == traffic.EXIT_OK
    assert aws.clock.sleeps == [5]
    assert f"{ENDPOINT} is InService with v1=0.5 v2=0.5" in aws.out.getvalue()


def test_shift_to_the_current_weights_changes_nothing(aws):
    aws.describe(endpoint())
    assert aws.run("shift", "--weights", "v1=0.9 v2=0.1") == traffic.EXIT_OK
    assert "nothing to do" in aws.out.getvalue()


@pytest.mark.parametrize("weights, message", [
    ("v1=0.5,v3=0.5", "has no variant v3; variants: v1, v2"),
    ("v1=1", "give a weight for every variant; missing: v2"),
])
def test_weights_for_other_variants_are_refused_before_any_change(aws, weights, message):
    # GIVEN a live endpoint (the only call allowed is reading it)
    aws.describe(endpoint())
    # WHEN shifting to weights that name unknown variants or miss one
    # THEN the command refuses with the reason, exit 2, and never tags or updates the endpoint
    assert aws.run("shift", "--weights", weights) == traffic.EXIT_REFUSED
    assert message in aws.err.getvalue()


@pytest.mark.parametrize("weights, message", [
    ("v1", "bad weight 'v1': expected NAME=WEIGHT"),
    ("v1=a,v2=1", "weight of v1 is not a number: 'a'"),
    ("v1=1,v1=2", "variant v1 is given twice"),
    (" ", "no weights given"),
    ("v1=-0.5,v2=1", "weights must be finite numbers >= 0; got v1=-0.5"),
    ("v1=nan,v2=1", "weights must be finite numbers >= 0; got v1=nan"),
    ("v1=inf,v2=1", "weights must be finite numbers >= 0; got v1=inf"),
    ("v1=1e999,v2=1", "weights must be finite numbers >= 0; got v1=inf"),
    ("v1=0,v2=0", "at least one weight must be above 0"),
])
def test_bad_weights_are_refused_without_calling_aws(aws, weights, message):
    # GIVEN no AWS call queued: the Stubber raises on any call, and the run checks none is left over
    # WHEN shifting to malformed, repeated, negative, NaN, infinite or all-zero weights
    # THEN the command refuses with the reason and exit 2 before reading the endpoint
    assert aws.run("shift", "--weights", weights) == traffic.EXIT_REFUSED
    assert message in aws.err.getvalue()
    assert "Traceback" not in aws.err.getvalue() and "StubResponseError" not in aws.err.getvalue()


def test_every_weight_problem_is_reported_at_once(aws):
    assert aws.run("shift", "--weights", "v1=-1,v2=x,v2=3,v3") == traffic.EXIT_REFUSED
    message = aws.err.getvalue()
    for part in ("bad weight 'v3'", "variant v2 is given twice", "weight of v2 is not a number: 'x'",
                 "got v1=-1"):
        assert part in message
    assert message.count("\n") == 1


def test_a_saved_rollback_target_of_all_zero_weights_is_still_readable():
    # GIVEN an endpoint that once served 0/0 (invoked only with TargetVariant), saved as the rollback target
    # THEN the tag parses, while the same weights typed by an operator are refused
    assert traffic.parse_weights("v1=0 v2=0", require_traffic=False) == {"v1": 0.0, "v2": 0.0}
    with pytest.raises(traffic.TrafficError, match="at least one weight must be above 0"):
        traffic.parse_weights("v1=0 v2=0")


@pytest.mark.parametrize("status", ["Updating", "SystemUpdating", "RollingBack", "Creating"])
def test_an_endpoint_already_updating_is_refused(aws, status):
    # GIVEN another update in progress (a deploy, another operator, a system update)
    aws.describe(endpoint(status=status))
    # WHEN shifting  THEN the command refuses instead of racing it
    assert aws.run("shift", "--weights", "v1=0.5,v2=0.5") == traffic.EXIT_REFUSED
    assert f"is {status}: another update is in progress" in aws.err.getvalue()


def test_a_failed_endpoint_is_refused_with_its_reason(aws):
    aws.describe(endpoint(status="Failed", reason="Image pull failed"))
    assert aws.run("promote", "v2") == traffic.EXIT_REFUSED
    assert "is Failed: Image pull failed" in aws.err.getvalue()


def test_an_update_that_starts_concurrently_is_reported_not_raised(aws):
    # GIVEN an update that SageMaker refuses because another one started after our check
    aws.describe(endpoint())
    aws.save_previous("v1=0.9 v2=0.1")
    aws.sm.add_client_error("update_endpoint_weights_and_capacities", service_error_code="ValidationException",
                            service_message="Cannot update in-progress endpoint", http_status_code=400)
    assert aws.run("shift", "--weights", "v1=0.5,v2=0.5") == traffic.EXIT_REFUSED
    assert "SageMaker refused the change: Cannot update in-progress endpoint" in aws.err.getvalue()
    assert "Traceback" not in aws.err.getvalue()


def test_a_failing_update_exits_1_with_the_failure_reason(aws):
    aws.describe(endpoint())
    aws.save_previous("v1=0.9 v2=0.1")
    aws.update([("v1", 0.0), ("v2", 1.0)])
    aws.describe(endpoint(status="Failed", reason="Insufficient capacity"))
    assert aws.run("promote", "v2") == traffic.EXIT_FAILED
    assert "the update failed, endpoint fraud-detector-realtime is Failed: Insufficient capacity" in aws.err.getvalue()


def test_waiting_is_bounded(aws):
    # GIVEN an update that never finishes
    aws.describe(endpoint())
    aws.save_previous("v1=0.9 v2=0.1")
    aws.update([("v1", 0.5), ("v2", 0.5)])
    for _ in range(4):  # at t = 0, 10, 20, 30
        aws.describe(endpoint(status="Updating"))
    # WHEN waiting at most 30 s, polling every 10 s
    code = aws.run("shift", "--weights", "v1=0.5,v2=0.5", "--timeout", "30", "--poll-interval", "10")
    # THEN it gives up after the timeout with exit 1, having slept 3 times
    assert code == traffic.EXIT_FAILED
    assert aws.clock.sleeps == [10, 10, 10]
    assert "still Updating after 30 s" in aws.err.getvalue()


def test_aws_errors_are_one_line_messages(aws):
    aws.sm.add_client_error("describe_endpoint", service_error_code="AccessDeniedException",
                            service_message="not authorized to perform sagemaker:DescribeEndpoint",
                            http_status_code=400)
    assert aws.run("status") == traffic.EXIT_AWS
    assert aws.err.getvalue().strip() == ("error: AWS refused the request (AccessDeniedException): not authorized to "
                                          "perform sagemaker:DescribeEndpoint")


# -- promote ----------------------------------------------------------------------------------------------------------
def test_promote_sends_all_traffic_to_one_variant(aws):
    aws.describe(endpoint())
    aws.save_previous("v1=0.9 v2=0.1")
    aws.update([("v1", 0.0), ("v2", 1.0)])
    aws.describe(endpoint(weights=[("v1", 0.0), ("v2", 1.0)]))
    assert aws.run("promote", "v2") == traffic.EXIT_OK
    assert "v2: 0.1 -> 1  (100% of traffic)" in aws.out.getvalue()


def test_promote_of_an_unknown_variant_is_refused(aws):
    aws.describe(endpoint())
    assert aws.run("promote", "v3") == traffic.EXIT_REFUSED
    assert "has no variant 'v3'; variants: v1, v2" in aws.err.getvalue()


# -- rollback ---------------------------------------------------------------------------------------------------------
def test_rollback_restores_the_saved_weights_and_saves_the_ones_it_replaces(aws):
    # GIVEN v2 promoted, and the 90/10 split saved in the endpoint's tags
    aws.describe(endpoint(weights=[("v1", 0.0), ("v2", 1.0)]))
    aws.tags({traffic.PREVIOUS_WEIGHTS_TAG: "v1=0.9 v2=0.1", traffic.PREVIOUS_AT_TAG: "2026-11-25T11:00:00Z"})
    # THEN the promoted weights are saved (a second rollback would undo this one) and 90/10 is restored
    aws.save_previous("v1=0 v2=1")
    aws.update([("v1", 0.9), ("v2", 0.1)])
    aws.describe(endpoint())
    assert aws.run("rollback") == traffic.EXIT_OK
    assert "rolling back to the weights saved 2026-11-25T11:00:00Z: v1=0.9 v2=0.1" in aws.out.getvalue()


def test_rollback_without_saved_weights_is_refused(aws):
    aws.describe(endpoint())
    aws.tags({"project": "ml-deploy-patterns"})
    assert aws.run("rollback") == traffic.EXIT_REFUSED
    assert "no previous weights are recorded" in aws.err.getvalue()


def test_rollback_to_weights_of_other_variants_is_refused(aws):
    # GIVEN weights saved before a deploy replaced variant v2 with v3
    aws.describe(endpoint(weights=[("v1", 0.9), ("v3", 0.1)]))
    aws.tags({traffic.PREVIOUS_WEIGHTS_TAG: "v1=0.5 v2=0.5"})
    assert aws.run("rollback") == traffic.EXIT_REFUSED
    assert "name variants ['v1', 'v2'] but the endpoint now has ['v1', 'v3']" in aws.err.getvalue()


def test_rollback_while_updating_is_refused(aws):
    aws.describe(endpoint(status="Updating"))
    assert aws.run("rollback") == traffic.EXIT_REFUSED
    assert "another update is in progress" in aws.err.getvalue()


# -- as a process -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, code, message", [
    (["shift", "--endpoint", ENDPOINT, "--weights", "v1"], 2, "bad weight 'v1'"),
    (["shift", "--endpoint", ENDPOINT, "--weights", "v1=nan,v2=1"], 2, "weights must be finite numbers >= 0"),
    (["shift", "--endpoint", ENDPOINT, "--weights", "v1=-1,v2=1"], 2, "weights must be finite numbers >= 0"),
    (["status", "--endpoint", ENDPOINT], 3, "error: Unable to locate credentials"),
    (["promote", "--endpoint", ENDPOINT], 2, "the following arguments are required: variant"),
    # options are checked before the first AWS call: nothing is tagged or shifted, then found wrong
    (["shift", "--endpoint", ENDPOINT, "--weights", "v1=1", "--poll-interval", "-5"], 2,
     "--poll-interval: must be a number of seconds above 0"),
    (["promote", "--endpoint", ENDPOINT, "v2", "--timeout", "nan"], 2, "--timeout: must be a number of seconds"),
    (["rollback", "--endpoint", ENDPOINT, "--timeout", "0"], 2, "--timeout: must be a number of seconds"),
])
def test_the_command_line_fails_with_a_message_not_a_traceback(argv, code, message):
    # GIVEN no AWS credentials at all (only a region)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({"AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"})
    # WHEN run as `python -m ops.traffic ...`
    result = subprocess.run([sys.executable, "-m", "ops.traffic", *argv], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    # THEN it exits non-zero with one clear message
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_no_region_is_an_aws_configuration_error_exit_3():
    # GIVEN credentials but no region anywhere
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"})
    # WHEN a command that needs AWS runs
    result = subprocess.run([sys.executable, "-m", "ops.traffic", "status", "--endpoint", ENDPOINT], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    # THEN it exits 3 (the table's AWS/credentials code, as the other commands), one line, no traceback
    assert result.returncode == 3
    assert result.stderr.strip() == "error: no AWS region configured: pass --region or set AWS_REGION"


def test_a_negative_poll_interval_changes_nothing(aws):
    # GIVEN no AWS call queued (the Stubber raises on any call)
    # WHEN shift is given a negative poll interval THEN it is refused with exit 2 before any call
    assert aws.run("shift", "--weights", "v1=0.5,v2=0.5", "--poll-interval", "-5") == traffic.EXIT_REFUSED
