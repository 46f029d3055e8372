"""ops.rehearse: open-loop load against the local server (loopback only, a few seconds) and against
botocore's Stubber for InvokeEndpoint, DescribeEndpoint and GetMetricData (no credentials, no network)."""
from __future__ import annotations

import _thread
import datetime as dt
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from ops.rehearse import command
from ops.rehearse.observe import EndpointObserver
from ops.rehearse.runner import Rehearsal, RunOptions
from ops.rehearse.schedule import LoadProfile
from tests.conftest import REPO_ROOT, shared_botocore_session

MODEL_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
ENDPOINT = "fraud-detector-realtime"
REGION = "eu-west-1"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
SERVER_START_TIMEOUT_S = 60


# -- the schedule --------------------------------------------------------------------------------------------------
def test_constant_rate_schedules_rate_times_duration_requests_evenly():
    # GIVEN 40 req/s for 8 s
    offsets = list(LoadProfile.constant(40, 8).offsets(10**6))
    # THEN 320 requests are due, 25 ms apart, all inside the 8 s
    assert len(offsets) == 320
    assert offsets[1] - offsets[0] == pytest.approx(0.025)
    assert offsets[-1] < 8


def test_ramp_sends_what_its_area_promises_and_speeds_up():
    # GIVEN a ramp from 0 to 10 req/s over 10 s, then 10 req/s for 10 s more
    profile = LoadProfile(rps_start=0, rps_end=10, ramp_s=10, duration_s=20)
    offsets = list(profile.offsets(10**6))
    # THEN the ramp holds 50 requests (its triangle) and the plateau 100
    assert len(offsets) == profile.expected_requests() == 150
    assert sum(1 for t in offsets if t < 10) == 50
    # AND gaps shrink along the ramp and are 100 ms on the plateau
    gaps = [b - a for a, b in zip(offsets, offsets[1:])]
    assert gaps[1] > gaps[10] > gaps[40]
    assert gaps[-1] == pytest.approx(0.1)


def test_schedule_stops_at_the_request_cap():
    assert len(list(LoadProfile.constant(100, 10).offsets(7))) == 7


# -- open loop, in process -----------------------------------------------------------------------------------------
class SlowTarget:
    """Answers every request after ``service_s``; counts what it received."""

    description = "slow fake"

    def __init__(self, service_s: float, interrupt_after: int | None = None) -> None:
        self.service_s, self.interrupt_after = service_s, interrupt_after
        self.calls, self.lock = 0, threading.Lock()

    def invoke(self, body: bytes) -> str | None:
        with self.lock:
            self.calls += 1
            calls = self.calls
        if calls == self.interrupt_after:
            _thread.interrupt_main()  # what Ctrl-C does to the sending loop
        time.sleep(self.service_s)
        return None


def test_open_loop_keeps_sending_on_schedule_and_counts_queueing_in_latency():
    # GIVEN one sender and a target needing 250 ms per request, asked for 10 req/s for 1 s
    target = SlowTarget(0.25)
    options = RunOptions(profile=LoadProfile.constant(10, 1), concurrency=1, max_requests=100, interval_s=1,
                         drain_s=5)
    # WHEN the rehearsal runs
    summary = Rehearsal(target=target, bodies=[b"x"], options=options).run()
    # THEN all 10 requests were due on schedule (a closed loop would have sent 4 in that second)
    assert summary["requests_due"] == 10 and summary["requests_sent"] == 10 == target.calls
    # AND the last request waited for the ones before it: latency counts from its due time, not its send time
    assert summary["p99_ms"] > 1000
    assert summary["p50_ms"] > 250


def test_ctrl_c_stops_sending_and_still_reports(tmp_path):
    # GIVEN a 5-second rehearsal whose third request is answered with Ctrl-C
    target = SlowTarget(0.0, interrupt_after=3)
    options = RunOptions(profile=LoadProfile.constant(10, 5), concurrency=2, max_requests=100, interval_s=1,
                         drain_s=1)
    started = time.monotonic()
    # WHEN it runs
    rehearsal = Rehearsal(target=target, bodies=[b"x"], options=options)
    summary = rehearsal.run()
    # THEN it stops within a second, reports itself interrupted, and keeps what was measured
    assert time.monotonic() - started < 2
    assert summary["stopped"] == "interrupted"
    assert 3 <= summary["requests_sent"] < 10
    assert sum(entry["completed"] for entry in rehearsal.series) == summary["requests_completed"]


# -- against the local server --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    """``python -m serve`` with the demo model on a free loopback port, one worker."""
    if not (MODEL_DIR / "model.joblib").is_file():
        pytest.skip("demo model not built: python -m training.build --out artifacts")
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "serve", "--model-dir", str(MODEL_DIR), "--host", "127.0.0.1",
                                "--port", str(port), "--workers", "1"], cwd=REPO_ROOT,
                               env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            assert process.poll() is None, "the local server exited"
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the local server did not answer /ping"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/invocations"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_command(*argv: str, clients=None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = command.main(list(argv), clients=clients, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_constant_rate_against_the_local_server_stays_within_the_requested_load(server_url, tmp_path):
    # GIVEN the local server and 40 req/s for 3 s in 1-second intervals
    report, picture = tmp_path / "r.json", tmp_path / "r.png"
    # WHEN the rehearsal runs
    code, out, err = run_command("--url", server_url, "--rps", "40", "--duration", "3", "--interval", "1",
                                 "--concurrency", "4", "--model-dir", str(MODEL_DIR), "--json", str(report),
                                 "--plot", str(picture))
    # THEN it succeeds and every request of the schedule was sent and answered, none more
    assert code == 0, err
    document = json.loads(report.read_text())
    summary = document["summary"]
    assert summary["stopped"] == "completed"
    assert summary["requests_sent"] == summary["requests_completed"] == 120
    assert summary["errors"] == 0
    # AND one entry per interval, each within the requested rate (a little slack for timer jitter)
    series = document["series"]
    assert len(series) == 3
    assert all(set(entry) >= {"t", "rps", "p50_ms", "p99_ms", "errors", "instances"} for entry in series)
    assert all(entry["sent_rps"] <= 40 * 1.15 and entry["instances"] is None for entry in series)
    # (the stragglers after the last boundary are folded into the last interval, not plotted as a sliver)
    assert all(entry["interval_s"] >= 0.9 for entry in series)
    assert summary["worst_p99_ms"] == max(entry["p99_ms"] for entry in series) > 0
    # AND the progress went to stderr, the summary to stdout, the picture is a PNG
    assert err.count("\n") == 3 and "p99" in err
    assert out.startswith("completed: sent 120")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rejected_bodies_are_counted_as_errors_not_fatal(server_url, tmp_path):
    # GIVEN a payload the model refuses (400)
    payload = tmp_path / "bad.csv"
    payload.write_text("not,a,row\n")
    report = tmp_path / "r.json"
    # WHEN 6 requests are sent
    code, _, err = run_command("--url", server_url, "--rps", "20", "--duration", "0.3", "--interval", "1",
                               "--payload", str(payload), "--json", str(report))
    # THEN the run completes and every request is an HTTP 400 error
    assert code == 0, err
    summary = json.loads(report.read_text())["summary"]
    assert summary["errors"] == summary["requests_sent"] == 6
    assert summary["error_kinds"] == {"HTTP 400": 6}


def test_the_request_cap_stops_the_run(server_url, tmp_path):
    report = tmp_path / "r.json"
    code, _, err = run_command("--url", server_url, "--rps", "50", "--duration", "60", "--max-requests", "7",
                               "--model-dir", str(MODEL_DIR), "--json", str(report))
    assert code == 0
    summary = json.loads(report.read_text())["summary"]
    assert summary["stopped"] == "max-requests" and summary["requests_sent"] == 7
    assert summary["elapsed_s"] < 5
    assert "--max-requests stops at 7" in err


# -- a SageMaker endpoint, through the Stubber ---------------------------------------------------------------------
def endpoint_description(status="InService", instances=1, desired=None):
    return {"EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}",
            "EndpointConfigName": "config-1", "EndpointStatus": status, "CreationTime": NOW,
            "LastModifiedTime": NOW, "ProductionVariants": [
                {"VariantName": "AllTraffic", "CurrentWeight": 1.0, "DesiredWeight": 1.0,
                 "CurrentInstanceCount": instances, "DesiredInstanceCount": desired or instances}]}


def metric_data(invocations_per_instance, latency_us):
    return {"MetricDataResults": [
        {"Id": "ipi0", "Label": "InvocationsPerInstance", "StatusCode": "Complete",
         "Timestamps": [NOW, NOW - dt.timedelta(minutes=1)], "Values": [invocations_per_instance, 1.0]},
        {"Id": "lat0", "Label": "ModelLatency", "StatusCode": "Complete",
         "Timestamps": [NOW], "Values": [latency_us]}]}


class StubbedAws:
    def __init__(self) -> None:
        session = shared_botocore_session()
        config = Config(signature_version=UNSIGNED)
        self.clients = {name: session.create_client(name, region_name=REGION, config=config)
                        for name in ("sagemaker", "sagemaker-runtime", "cloudwatch")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def describe(self, response):
        self.stubs["sagemaker"].add_response("describe_endpoint", response, {"EndpointName": ENDPOINT})

    def metrics(self, response):
        self.stubs["cloudwatch"].add_response("get_metric_data", response, {
            "MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampDescending"})

    def invoke_ok(self, body=b'{"predictions": [0.1]}'):
        self.stubs["sagemaker-runtime"].add_response(
            "invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
            {"EndpointName": ENDPOINT, "Body": ANY, "ContentType": "text/csv", "Accept": "application/json"})

    def run(self, *argv: str) -> tuple[int, str, str]:
        for stub in self.stubs.values():
            stub.activate()
        try:
            result = run_command(*argv, "--endpoint", ENDPOINT, clients=self.clients.__getitem__)
            for stub in self.stubs.values():
                stub.assert_no_pending_responses()
        finally:
            for stub in self.stubs.values():
                stub.deactivate()
        return result


def test_endpoint_rehearsal_reports_instances_scale_out_and_model_errors(tmp_path):
    # GIVEN an in-service endpoint with 1 instance that has 3 by the end of the run, and 5 requests of which
    # the model fails one
    aws = StubbedAws()
    aws.describe(endpoint_description(instances=1))            # the pre-flight check
    aws.describe(endpoint_description(instances=1))            # the observation at the start
    aws.metrics(metric_data(900.0, 4000.0))
    for _ in range(4):
        aws.invoke_ok()
    aws.stubs["sagemaker-runtime"].add_client_error("invoke_endpoint", service_error_code="ModelError",
                                                    service_message="boom", http_status_code=424)
    aws.describe(endpoint_description(instances=3, desired=3))  # the observation of the (only) interval
    aws.metrics(metric_data(310.0, 6500.0))
    report = tmp_path / "r.json"
    # WHEN 5 requests are sent, one at a time
    code, out, err = aws.run("--rps", "50", "--duration", "0.1", "--concurrency", "1", "--interval", "5",
                             "--model-dir", str(MODEL_DIR), "--target-instances", "3", "--json", str(report),
                             "--plot", str(tmp_path / "r.png"))
    # THEN every queued AWS call was made in order, and the report shows the scale-out and the model error
    assert code == 0, err
    document = json.loads(report.read_text())
    (entry,) = document["series"]
    assert entry["instances"] == 3 and entry["errors"] == 1
    assert entry["variants"]["AllTraffic"] == {"instances": 3, "desired_instances": 3,
                                               "invocations_per_instance": 310.0, "model_latency_ms": 6.5}
    summary = document["summary"]
    assert summary["initial_instances"] == 1 and summary["max_instances"] == 3
    assert summary["time_to_first_scale_out_s"] == summary["time_to_target_s"] == entry["t"]
    assert summary["error_kinds"] == {"ModelError": 1} and summary["requests_sent"] == 5
    assert "instances 3" in err


@pytest.mark.parametrize("status", ["Creating", "Updating", "Failed", "OutOfService"])
def test_refuses_an_endpoint_that_is_not_in_service(status):
    aws = StubbedAws()
    aws.describe(endpoint_description(status=status))
    code, _, err = aws.run("--rps", "5", "--duration", "1", "--model-dir", str(MODEL_DIR))
    # THEN nothing is invoked (the Stubber would fail on an unqueued call) and the refusal is one line
    assert code == 2
    assert err == f"error: endpoint {ENDPOINT} is {status}, not InService; rehearse when it is in service\n"


def test_refuses_an_endpoint_that_does_not_exist():
    aws = StubbedAws()
    aws.stubs["sagemaker"].add_client_error("describe_endpoint", service_error_code="ValidationException",
                                            service_message=f'Could not find endpoint "{ENDPOINT}".')
    code, _, err = aws.run("--rps", "5", "--duration", "1", "--model-dir", str(MODEL_DIR))
    assert code == 2
    assert err.startswith(f"error: endpoint {ENDPOINT} does not exist") and err.count("\n") == 1


def test_other_aws_failures_are_exit_3():
    aws = StubbedAws()
    aws.stubs["sagemaker"].add_client_error("describe_endpoint", service_error_code="AccessDeniedException",
                                            service_message="not allowed")
    code, _, err = aws.run("--rps", "5", "--duration", "1", "--model-dir", str(MODEL_DIR))
    assert code == 3 and err.startswith("error: ") and err.count("\n") == 1


def test_a_failed_observation_is_recorded_not_fatal():
    # GIVEN CloudWatch throttles the metrics query
    aws = StubbedAws()
    aws.describe(endpoint_description(instances=2))
    aws.stubs["cloudwatch"].add_client_error("get_metric_data", service_error_code="Throttling",
                                             service_message="Rate exceeded")
    observer = EndpointObserver(aws.clients["sagemaker"], aws.clients["cloudwatch"], ENDPOINT, now=lambda: NOW)
    with aws.stubs["sagemaker"], aws.stubs["cloudwatch"]:
        observation = observer.observe()
    # THEN the observation carries the error and no numbers
    assert observation.instances is None and "Throttling" in observation.error


# -- bad input -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["--url", "ftp://127.0.0.1/x", "--rps", "5"], "--url must be an http(s) URL"),
    (["--url", "http://127.0.0.1:1/invocations", "--rps", "5000"], "--rps must be above 0 and at most 1000"),
    (["--url", "http://127.0.0.1:1/invocations", "--rps", "5", "--duration", "7200"], "--duration must be"),
    (["--url", "http://127.0.0.1:1/invocations", "--rps", "5", "--rps-end", "9"], "not both"),
    (["--url", "http://127.0.0.1:1/invocations", "--rps-start", "1", "--rps-end", "9"], "all of --rps-start"),
    (["--url", "http://127.0.0.1:1/invocations", "--rps", "5", "--concurrency", "0"], "--concurrency must be"),
    (["--url", "http://127.0.0.1:1/invocations", "--rps", "5", "--payload", "/nonexistent/body.csv"],
     "cannot read --payload"),
    (["--url", "http://127.0.0.1:1/invocations", "--rps", "5", "--model-dir", "/nonexistent"],
     "cannot read sample requests"),
    (["--url", "http://127.0.0.1:1/invocations", "--rps", "5", "--json", "/nonexistent/r.json",
      "--model-dir", str(MODEL_DIR)], "is not a directory"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message):
    code, out, err = run_command(*argv)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1 and out == ""


def test_nothing_listening_is_exit_3():
    port = _free_port()
    code, _, err = run_command("--url", f"http://127.0.0.1:{port}/invocations", "--rps", "5", "--model-dir",
                               str(MODEL_DIR))
    assert code == 3 and "nothing answers" in err


def test_help_has_an_example():
    result = subprocess.run([sys.executable, "-m", "ops.rehearse", "--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "python -m ops.rehearse --url http://127.0.0.1:8080" in result.stdout


def test_two_variants_are_observed_separately_and_summed():
    # GIVEN an endpoint splitting traffic over two variants, v2 scaling out
    aws = StubbedAws()
    description = endpoint_description(instances=2)
    description["ProductionVariants"].append({"VariantName": "Candidate", "CurrentWeight": 0.1, "DesiredWeight": 0.1,
                                              "CurrentInstanceCount": 1, "DesiredInstanceCount": 3})
    aws.describe(description)
    aws.stubs["cloudwatch"].add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "ipi1", "StatusCode": "Complete", "Timestamps": [NOW], "Values": [1200.0]},
        {"Id": "lat1", "StatusCode": "Complete", "Timestamps": [], "Values": []},
        {"Id": "ipi0", "StatusCode": "Complete", "Timestamps": [NOW], "Values": [300.0]},
        {"Id": "lat0", "StatusCode": "Complete", "Timestamps": [NOW], "Values": [2500.0]}]},
        {"MetricDataQueries": [
            {"Id": f"{prefix}{index}", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": [
                    {"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]},
                "Period": 60, "Stat": stat}}
            for index, variant in enumerate(["AllTraffic", "Candidate"])
            for prefix, metric, stat in (("ipi", "InvocationsPerInstance", "Sum"), ("lat", "ModelLatency", "Average"))],
         "StartTime": NOW - dt.timedelta(minutes=5), "EndTime": NOW, "ScanBy": "TimestampDescending"})
    observer = EndpointObserver(aws.clients["sagemaker"], aws.clients["cloudwatch"], ENDPOINT, now=lambda: NOW)
    # WHEN observed
    with aws.stubs["sagemaker"], aws.stubs["cloudwatch"]:
        observation = observer.observe()
    # THEN each variant keeps its own counts and metrics (no data yet is None), and the total is their sum
    assert observation.instances == 3
    assert vars(observation.variants["AllTraffic"]) == {"instances": 2, "desired_instances": 2,
                                                         "invocations_per_instance": 300.0, "model_latency_ms": 2.5}
    assert vars(observation.variants["Candidate"]) == {"instances": 1, "desired_instances": 3,
                                                        "invocations_per_instance": 1200.0, "model_latency_ms": None}
