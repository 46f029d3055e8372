"""``python -m ops.monitor run-now`` against stubbed SageMaker and S3 (botocore's real API shapes)."""
from __future__ import annotations

import datetime as dt
import io
import json

import boto3
import botocore.exceptions
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from ops import monitor as ops_monitor

NOW = dt.datetime(2025, 1, 31, 14, 25, 7, tzinfo=dt.timezone.utc)
ENDPOINT = "fraud-detector-realtime"
SOURCE = "fraud-detector-realtime-dq-e1d50a5f"
ONE_TIME = "fraud-detector-realtime-dq-now-20250131142507"
REPORTS = "s3://capture-bucket/monitoring/reports/data-quality"
JOB = "model-monitoring-202501311425-abcdef0123456789abcd"
ROLE = "arn:aws:iam::123456789012:role/MonitorJobRole"
DEFINITION = {
    "JobDefinitionArn": f"arn:aws:sagemaker:eu-west-1:123456789012:data-quality-job-definition/{SOURCE}",
    "JobDefinitionName": SOURCE, "CreationTime": NOW,
    "DataQualityBaselineConfig": {
        "ConstraintsResource": {"S3Uri": "s3://capture-bucket/monitoring/baseline/data-quality/constraints.json"},
        "StatisticsResource": {"S3Uri": "s3://capture-bucket/monitoring/baseline/data-quality/statistics.json"}},
    "DataQualityAppSpecification": {"ImageUri": "468650794304.dkr.ecr.eu-west-1.amazonaws.com/"
                                                "sagemaker-model-monitor-analyzer",
                                    "RecordPreprocessorSourceUri": "s3://assets/pre.py",
                                    "Environment": {"publish_cloudwatch_metrics": "Enabled"}},
    "DataQualityJobInput": {"EndpointInput": {"EndpointName": ENDPOINT, "LocalPath": "/opt/ml/processing/input/endpoint"}},
    "DataQualityJobOutputConfig": {"MonitoringOutputs": [{"S3Output": {"S3Uri": REPORTS,
                                                                       "LocalPath": "/opt/ml/processing/output"}}],
                                   "KmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k"},
    "JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}},
    "NetworkConfig": {"EnableNetworkIsolation": True},
    "RoleArn": ROLE,
    "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
}
VIOLATIONS = {"violations": [
    {"feature_name": "amount", "constraint_check_type": "baseline_drift_check",
     "description": "Baseline drift distance: 0.31 exceeds threshold: 0.1"},
    {"feature_name": "is_foreign", "constraint_check_type": "data_type_check",
     "description": "Data type match requirement is not met."}]}


@pytest.fixture
def clients(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    s3 = boto3.client("s3", region_name="eu-west-1")
    with Stubber(sagemaker) as sm_stub, Stubber(s3) as s3_stub:
        yield sagemaker, sm_stub, s3, s3_stub
        sm_stub.assert_no_pending_responses()
        s3_stub.assert_no_pending_responses()


def run(argv, sagemaker, s3):
    out, err = io.StringIO(), io.StringIO()
    ticks = iter(range(0, 10_000, 30))
    code = ops_monitor.main(argv, sagemaker=sagemaker, s3=s3, now=NOW, sleep=lambda _: None,
                            clock=lambda: next(ticks), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def execution(status, **extra):
    return {"MonitoringScheduleName": ONE_TIME, "ScheduledTime": NOW, "CreationTime": NOW, "LastModifiedTime": NOW,
            "MonitoringExecutionStatus": status, **extra}


def expect_setup(sm_stub):
    sm_stub.add_response("list_monitoring_schedules", {"MonitoringScheduleSummaries": [{
        "MonitoringScheduleName": "fraud-detector-realtime-data-quality",
        "MonitoringScheduleArn": "arn:aws:sagemaker:eu-west-1:123456789012:monitoring-schedule/x",
        "CreationTime": NOW, "LastModifiedTime": NOW, "MonitoringScheduleStatus": "Scheduled",
        "EndpointName": ENDPOINT, "MonitoringJobDefinitionName": SOURCE, "MonitoringType": "DataQuality"}]},
        {"EndpointName": ENDPOINT, "MonitoringTypeEquals": "DataQuality", "MaxResults": 100})
    sm_stub.add_response("describe_data_quality_job_definition", DEFINITION, {"JobDefinitionName": SOURCE})
    copied = {key: value for key, value in DEFINITION.items()
              if key not in ("JobDefinitionArn", "JobDefinitionName", "CreationTime")}
    copied["DataQualityAppSpecification"] = {**DEFINITION["DataQualityAppSpecification"],
                                             "Environment": {"publish_cloudwatch_metrics": "Disabled"}}
    sm_stub.add_response("create_data_quality_job_definition", {"JobDefinitionArn": "arn:x"},
                         {"JobDefinitionName": ONE_TIME, **copied})
    sm_stub.add_response("create_monitoring_schedule", {"MonitoringScheduleArn": "arn:y"}, {
        "MonitoringScheduleName": ONE_TIME,
        "MonitoringScheduleConfig": {"ScheduleConfig": {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-PT3H",
                                                        "DataAnalysisEndTime": "-PT0H"},
                                     "MonitoringJobDefinitionName": ONE_TIME, "MonitoringType": "DataQuality"}})


def expect_list(sm_stub, *summaries):
    sm_stub.add_response("list_monitoring_executions", {"MonitoringExecutionSummaries": list(summaries)}, {
        "MonitoringScheduleName": ONE_TIME, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1})


def expect_report(sm_stub, s3_stub, body: bytes | None):
    """DescribeProcessingJob, then (unless ``s3_stub`` is None) the report's GetObject: ``body``, or NoSuchKey."""
    sm_stub.add_response("describe_processing_job", {
        "ProcessingJobName": JOB, "ProcessingJobArn": f"arn:aws:sagemaker:eu-west-1:123456789012:processing-job/{JOB}",
        "ProcessingJobStatus": "Completed", "CreationTime": NOW,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}},
        "AppSpecification": {"ImageUri": "image"},
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": f"{REPORTS}/{ENDPOINT}/{ONE_TIME}/2025/01/31/14", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]}}, {"ProcessingJobName": JOB})
    key = f"monitoring/reports/data-quality/{ENDPOINT}/{ONE_TIME}/2025/01/31/14/constraint_violations.json"
    if s3_stub is None:
        return
    if body is None:
        s3_stub.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", http_status_code=404,
                                 expected_params={"Bucket": "capture-bucket", "Key": key})
    else:
        s3_stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))},
                             {"Bucket": "capture-bucket", "Key": key})


def expect_cleanup(sm_stub):
    sm_stub.add_response("delete_monitoring_schedule", {}, {"MonitoringScheduleName": ONE_TIME})
    sm_stub.add_response("delete_data_quality_job_definition", {}, {"JobDefinitionName": ONE_TIME})


def test_run_now_prints_violations_and_cleans_up(clients):
    sagemaker, sm_stub, s3, s3_stub = clients
    # GIVEN the endpoint's hourly schedule, and a one-time run that ends with violations
    expect_setup(sm_stub)
    expect_list(sm_stub)                                                       # not listed yet
    expect_list(sm_stub, execution("Pending"))
    expect_list(sm_stub, execution("InProgress"))
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:processing-job/{JOB}"
    expect_list(sm_stub, execution("CompletedWithViolations", ProcessingJobArn=arn))
    expect_report(sm_stub, s3_stub, json.dumps(VIOLATIONS).encode())
    expect_cleanup(sm_stub)
    # WHEN run over the last three hours
    code, out, err = run(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H", "--end", "-PT0H"], sagemaker, s3)
    # THEN it waits through the states, prints every violation, exits 1, and removes the one-time schedule
    assert code == ops_monitor.EXIT_VIOLATIONS, err
    assert "Scheduling" in err and "Pending" in err and "InProgress" in err
    assert "2 violation(s) (CompletedWithViolations)" in out
    assert "amount      baseline_drift_check  Baseline drift distance: 0.31 exceeds threshold: 0.1" in out
    assert "is_foreign" in out


def test_a_clean_run_exits_zero(clients):
    sagemaker, sm_stub, s3, s3_stub = clients
    expect_setup(sm_stub)
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:processing-job/{JOB}"
    expect_list(sm_stub, execution("Completed", ProcessingJobArn=arn))
    expect_report(sm_stub, s3_stub, None)
    expect_cleanup(sm_stub)
    code, out, _ = run(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H"], sagemaker, s3)
    assert code == ops_monitor.EXIT_CLEAN and "No violations (Completed)" in out


def test_a_failed_run_reports_its_reason(clients):
    sagemaker, sm_stub, s3, _ = clients
    expect_setup(sm_stub)
    expect_list(sm_stub, execution("Failed", FailureReason="Job inputs had no data"))
    expect_cleanup(sm_stub)
    code, _, err = run(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H"], sagemaker, s3)
    assert code == ops_monitor.EXIT_FAILED and "the run ended Failed: Job inputs had no data" in err


def test_giving_up_leaves_the_run_and_says_what_to_delete(clients):
    sagemaker, sm_stub, s3, _ = clients
    expect_setup(sm_stub)
    for _ in range(2):
        expect_list(sm_stub, execution("InProgress"))
    # 30 "seconds" per clock tick: a 1-minute timeout polls at 0 s and 30 s, gives up at 60 s (no cleanup calls)
    code, _, err = run(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H", "--timeout-minutes", "1"], sagemaker, s3)
    assert code == ops_monitor.EXIT_STILL_RUNNING
    assert f"Delete schedule {ONE_TIME}" in err


def test_a_refused_schedule_removes_the_copied_definition(clients):
    sagemaker, sm_stub, s3, _ = clients
    sm_stub.add_response("list_monitoring_schedules", {"MonitoringScheduleSummaries": [{
        "MonitoringScheduleName": "fraud-detector-realtime-data-quality", "MonitoringScheduleArn": "arn:x",
        "CreationTime": NOW, "LastModifiedTime": NOW, "MonitoringScheduleStatus": "Scheduled",
        "MonitoringJobDefinitionName": SOURCE, "MonitoringType": "DataQuality"}]})
    sm_stub.add_response("describe_data_quality_job_definition", DEFINITION)
    sm_stub.add_response("create_data_quality_job_definition", {"JobDefinitionArn": "arn:x"})
    sm_stub.add_client_error("create_monitoring_schedule", "ResourceLimitExceeded", "too many schedules")
    sm_stub.add_response("delete_data_quality_job_definition", {}, {"JobDefinitionName": ONE_TIME})
    code, _, err = run(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H"], sagemaker, s3)
    assert code == ops_monitor.EXIT_AWS and "ResourceLimitExceeded: too many schedules" in err


def test_an_endpoint_without_a_schedule_is_a_user_error(clients):
    sagemaker, sm_stub, s3, _ = clients
    sm_stub.add_response("list_monitoring_schedules", {"MonitoringScheduleSummaries": []})
    code, _, err = run(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H"], sagemaker, s3)
    assert code == ops_monitor.EXIT_USAGE and "deploy.realtime.monitor.enabled=true" in err


@pytest.mark.parametrize("start, end, message", [
    ("-PT30H", "-PT0H", "spans more than 24 hours"),
    ("-PT1H", "-PT3H", "must be before"),
    ("-PT1H", "+PT2H", "in the future"),
    ("yesterday", "-PT0H", "neither an ISO 8601 offset"),
    ("-PT99999999999999H", "-PT0H", "too large an offset"),           # past timedelta's range
    ("-P" + "9" * 5000 + "D", "-PT0H", "too large an offset"),         # past int()'s digit limit
])
def test_bad_windows_are_refused_before_any_call(clients, start, end, message):
    sagemaker, _, s3, _ = clients  # no stubbed responses: any AWS call would fail the test
    code, _, err = run(["run-now", "--endpoint", ENDPOINT, "--start", start, "--end", end], sagemaker, s3)
    assert code == ops_monitor.EXIT_USAGE and message in err


def test_absolute_times_become_whole_hour_offsets():
    # GIVEN 14:25 now and a window 10:40..13:10 UTC
    window = ops_monitor.parse_window("2025-01-31T10:40Z", "2025-01-31T13:10:00+00:00", NOW)
    # THEN the window grows outward to whole hours: start 4 h back, end 1 h back
    assert (window.start_iso, window.end_iso) == ("-PT4H", "-PT1H")
    assert ops_monitor.parse_window("-P1D", "-PT0H", NOW).start_iso == "-PT24H"
    assert ops_monitor.parse_window("-PT90M", "-PT0H", NOW).start_iso == "-PT1H30M"
    # AND an unsigned offset also counts back from now
    assert ops_monitor.parse_window("PT3H", "PT1H", NOW) == ops_monitor.parse_window("-PT3H", "-PT1H", NOW)


def test_one_time_names_fit_sagemakers_limit():
    assert len(ops_monitor.one_time_name("e" * 63, NOW)) <= 63


@pytest.mark.parametrize("option, value", [
    ("--poll-seconds", "0"), ("--poll-seconds", "-5"), ("--poll-seconds", "nan"), ("--poll-seconds", "inf"),
    ("--poll-seconds", "1e300"),  # time.sleep would raise OverflowError after the schedule exists
    ("--timeout-minutes", "0"), ("--timeout-minutes", "nan"), ("--timeout-minutes", "1e308"),
])
def test_bad_numbers_are_refused_before_any_call(clients, option, value):
    sagemaker, _, s3, _ = clients  # no stubbed responses: a copied definition or schedule would fail the test
    # WHEN a numeric option is out of range  THEN exit 2 naming it, with nothing created
    code, _, err = run(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H", option, value], sagemaker, s3)
    assert code == ops_monitor.EXIT_USAGE and f"{option} " in err and "Traceback" not in err


def test_every_option_problem_is_reported_at_once(clients):
    sagemaker, _, s3, _ = clients
    code, _, err = run(["run-now", "--endpoint", "not an endpoint", "--schedule", "no/such", "--start", "soon",
                        "--end", "-P" + "9" * 40 + "D", "--poll-seconds", "0", "--timeout-minutes", "-1"],
                       sagemaker, s3)
    assert code == ops_monitor.EXIT_USAGE
    for option in ("--endpoint", "--schedule", "--start", "--end", "--poll-seconds", "--timeout-minutes"):
        assert option in err, option
    assert len(err.strip().splitlines()) == 1


@pytest.fixture
def no_aws_configuration(monkeypatch, tmp_path):
    """An environment with no region, profile or credentials (and no instance metadata to fall back on)."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a session cached by another test would carry a region


def run_for_real(argv):
    out, err = io.StringIO(), io.StringIO()
    code = ops_monitor.main(argv, now=NOW, sleep=lambda _: None, out=out, err=err)
    return code, err.getvalue()


def test_no_region_is_a_one_line_aws_configuration_error(no_aws_configuration):
    # GIVEN no region anywhere  THEN exit 3 (AWS configuration), as every ops command reports it
    code, err = run_for_real(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H"])
    assert code == ops_monitor.EXIT_AWS
    assert err == "error: no AWS region configured; pass --region or set AWS_REGION\n"


@pytest.mark.parametrize("extra, env, message", [
    (["--region", "not a region"], {}, "not a region"),
    (["--region", "eu-west-1"], {"AWS_PROFILE": "no-such-profile"}, "no-such-profile"),
])
def test_a_bad_region_or_profile_is_a_usage_error(no_aws_configuration, monkeypatch, extra, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, err = run_for_real(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H", *extra])
    assert code == ops_monitor.EXIT_USAGE and message in err and len(err.splitlines()) == 1


def test_no_credentials_fails_with_one_line(no_aws_configuration):
    code, err = run_for_real(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H", "--region", "eu-west-1"])
    assert code == ops_monitor.EXIT_AWS
    assert err == ("error: ListMonitoringSchedules for fraud-detector-realtime: no AWS credentials found "
                   "(configure a profile or the AWS_* variables)\n")


class _UnreachableS3:
    def get_object(self, **_):
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com")


def test_a_connection_error_outside_the_wrapped_calls_is_one_line_and_still_cleans_up(clients):
    sagemaker, sm_stub, _, _ = clients
    # GIVEN a run that completes, but S3 cannot be reached when the report is read
    expect_setup(sm_stub)
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:processing-job/{JOB}"
    expect_list(sm_stub, execution("Completed", ProcessingJobArn=arn))
    expect_report(sm_stub, None, None)
    expect_cleanup(sm_stub)
    code, _, err = run(["run-now", "--endpoint", ENDPOINT, "--start", "-PT3H"], sagemaker, _UnreachableS3())
    # THEN exit 3 with the reason on one line, and the one-time schedule and definition are still deleted
    assert code == ops_monitor.EXIT_AWS
    assert err.splitlines()[-1].startswith("error: could not reach AWS: Could not connect to the endpoint URL")
