"""Shadow testing operations: side-by-side health from real API shapes (Stubber), and promotion by a deploy."""
from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ops.cli import OperationFailed, UsageError
from ops.shadow import VariantHealth, promote, promotion_problems, render_report, shadow_report

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def session():
    return boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _describe(shadow: bool) -> dict:
    description = {
        "EndpointName": "probe", "EndpointArn": "arn:aws:sagemaker:us-east-1:111122223333:endpoint/probe",
        "EndpointConfigName": "cfg", "EndpointStatus": "InService", "CreationTime": NOW, "LastModifiedTime": NOW,
        "ProductionVariants": [{"VariantName": "v1", "CurrentInstanceCount": 2, "CurrentWeight": 1.0}]}
    if shadow:
        description["ShadowProductionVariants"] = [{"VariantName": "shadow", "CurrentInstanceCount": 1,
                                                    "CurrentWeight": 0.5}]
    return description


def _metric_results(values: dict[str, dict[str, list[float]]]) -> list[dict]:
    results = []
    for index, name in enumerate(("v1", "shadow")):
        for query, points in values[name].items():
            results.append({"Id": f"m{index}_{query}", "Values": points, "Timestamps": [NOW] * len(points),
                            "StatusCode": "Complete"})
    return results


def test_report_puts_production_and_shadow_side_by_side(session):
    sagemaker, cloudwatch = session.client("sagemaker"), session.client("cloudwatch")
    with Stubber(sagemaker) as sm, Stubber(cloudwatch) as cw:
        sm.add_response("describe_endpoint", _describe(shadow=True), {"EndpointName": "probe"})
        cw.add_response("get_metric_data", {"MetricDataResults": _metric_results({
            "v1": {"modellatency_p50": [4000.0], "modellatency_p99": [9000.0], "invocations_sum": [600.0, 400.0],
                   "invocation5xxerrors_sum": [1.0], "invocation4xxerrors_sum": [3.0]},
            "shadow": {"modellatency_p50": [5000.0], "modellatency_p99": [30000.0], "invocations_sum": [500.0],
                       "invocation5xxerrors_sum": [0.0], "invocation4xxerrors_sum": [2.0]}})},
            {"MetricDataQueries": ANY, "StartTime": NOW - dt.timedelta(hours=1), "EndTime": NOW})
        report = shadow_report(sagemaker=sagemaker, cloudwatch=cloudwatch, endpoint="probe",
                               window=dt.timedelta(hours=1), now=NOW)
        sm.assert_no_pending_responses()
    production, shadow = report
    # THEN sums add up per variant, latency is converted from microseconds, roles come from DescribeEndpoint
    assert (production.role, production.invocations, production.errors_5xx, production.latency_p99_ms) == (
        "production", 1000.0, 1.0, 9.0)
    assert (shadow.role, shadow.instances, shadow.latency_p99_ms) == ("shadow", 1, 30.0)
    assert "shadow" in render_report(report)
    # AND a 3.3x slower shadow is not promoted
    assert any("p99 30 ms is more than 1.2x" in problem for problem in promotion_problems(report))


def test_an_endpoint_without_a_shadow_is_refused(session):
    sagemaker, cloudwatch = session.client("sagemaker"), session.client("cloudwatch")
    with Stubber(sagemaker) as sm:
        sm.add_response("describe_endpoint", _describe(shadow=False), {"EndpointName": "probe"})
        with pytest.raises(UsageError, match="has no shadow variant"):
            shadow_report(sagemaker=sagemaker, cloudwatch=cloudwatch, endpoint="probe",
                          window=dt.timedelta(hours=1), now=NOW)


def _health(role: str, name: str, invocations: float, errors: float, p99: float) -> VariantHealth:
    return VariantHealth(name=name, role=role, instances=1, invocations=invocations, errors_5xx=errors,
                         errors_4xx=0, latency_p50_ms=p99 / 2, latency_p99_ms=p99)


def test_a_healthy_shadow_is_promoted_by_a_deploy_that_makes_it_production():
    report = [_health("production", "v1", 1000, 2, 10), _health("shadow", "shadow", 500, 0, 11)]
    calls = []
    command = promote(report, stack="FraudDetector-Realtime", candidate_dir="artifacts/fraud-detector-v2",
                      force=False, run=True, runner=lambda cmd: calls.append(cmd) or type("R", (), {"returncode": 0}))
    assert command == ("npx cdk deploy FraudDetector-Realtime -c deploy.model.artifacts_dir=artifacts/fraud-detector-v2"
                       " -c deploy.model.candidate_dir=null -c deploy.realtime.rollout=canary")
    assert calls and calls[0][:4] == ["npx", "cdk", "deploy", "FraudDetector-Realtime"]


def test_a_shadow_with_more_errors_or_no_traffic_is_not_promoted():
    worse = [_health("production", "v1", 1000, 1, 10), _health("shadow", "shadow", 1000, 5, 10)]
    with pytest.raises(OperationFailed, match="5XX rate 0.5000% is above production"):
        promote(worse, stack="S", candidate_dir="c", force=False, run=False)
    idle = [_health("production", "v1", 1000, 1, 10), _health("shadow", "shadow", 0, 0, 10)]
    with pytest.raises(OperationFailed, match="received no requests"):
        promote(idle, stack="S", candidate_dir="c", force=False, run=False)
    # AND --force still prints the command without running anything
    assert promote(worse, stack="S", candidate_dir="c", force=True, run=False).startswith("npx cdk deploy S")


# -- through `python -m ops.traffic` ------------------------------------------------------------------------------
def _traffic(session, argv, *, stub):
    import io

    from ops import traffic

    sagemaker, cloudwatch = session.client("sagemaker"), session.client("cloudwatch")
    out, err = io.StringIO(), io.StringIO()
    with Stubber(sagemaker) as sm, Stubber(cloudwatch) as cw:
        stub(sm, cw)
        code = traffic.main(argv, clients=(sagemaker, cloudwatch), now=lambda: NOW, out=out, err=err)
        sm.assert_no_pending_responses()
    return code, out.getvalue(), err.getvalue()


def _healthy_shadow(sm, cw):
    sm.add_response("describe_endpoint", _describe(shadow=True), {"EndpointName": "probe"})
    cw.add_response("get_metric_data", {"MetricDataResults": _metric_results({
        "v1": {"modellatency_p99": [9000.0], "invocations_sum": [1000.0], "invocation5xxerrors_sum": [2.0]},
        "shadow": {"modellatency_p99": [9500.0], "invocations_sum": [500.0], "invocation5xxerrors_sum": [0.0]}})},
        {"MetricDataQueries": ANY, "StartTime": NOW - dt.timedelta(minutes=30), "EndTime": NOW})


def test_shadow_report_command_prints_json_with_both_variants(session):
    code, out, _ = _traffic(session, ["shadow-report", "--endpoint", "probe", "--window-minutes", "30", "--json"],
                            stub=_healthy_shadow)
    import json

    report = json.loads(out)
    assert code == 0 and [v["role"] for v in report["variants"]] == ["production", "shadow"]
    assert report["promotion_problems"] == []


def test_promote_shadow_command_prints_the_deploy_for_a_healthy_shadow(session, tmp_path):
    (tmp_path / "metadata.json").write_text("{}")
    code, out, _ = _traffic(session, ["promote-shadow", "--endpoint", "probe", "--window-minutes", "30", "--stack",
                                      "FraudDetector-Realtime", "--candidate-dir", str(tmp_path)],
                            stub=_healthy_shadow)
    assert code == 0 and f"deploy.model.artifacts_dir={tmp_path}" in out


def test_promote_shadow_refuses_a_folder_without_a_packaged_model_before_any_aws_call(session, tmp_path):
    code, _, err = _traffic(session, ["promote-shadow", "--endpoint", "probe", "--stack", "S", "--candidate-dir",
                                      str(tmp_path / "nope")], stub=lambda sm, cw: None)
    assert code == 2 and "has no metadata.json" in err
