"""``python -m ops.cost``: the table, --json, --seed, --plot and the refusals, on the default app's templates."""
from __future__ import annotations

import io
import json

import pytest

from ops.cost.command import main
from ops.cost.model import Assumptions, estimate
from ops.cost.prices import load_price_book
from ops.cost.templates import read_deployment
from tests.unit.ops.conftest import price_list_product, write_assembly

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def json_report(cdk_out, *argv: str) -> dict:
    code, out, err = run("--cdk-out", str(cdk_out), "--json", *argv)
    assert code == 0, err
    return json.loads(out)


def test_json_has_the_four_patterns_assumptions_and_price_provenance(default_cdk_out):
    report = json_report(default_cdk_out, "--requests-per-day", "100000")
    assert set(report["patterns"]) == {"realtime", "batch", "serverless", "edge"}
    for pattern in report["patterns"].values():
        assert pattern["monthly_usd"] == pytest.approx(sum(item["monthly_usd"] for item in pattern["items"]), abs=0.01)
        assert {item["scales"] for item in pattern["items"]} <= {"fixed", "traffic"}
    assert report["assumptions"]["requests_per_day"] == 100000
    assert report["prices"]["source"] and report["prices"]["date"]
    assert all({"key", "price", "unit", "region", "date", "source"} <= set(p) for p in report["prices"]["used"])


def test_realtime_is_always_on_instance_hours_times_price_plus_the_listed_extras(default_cdk_out):
    # GIVEN the default endpoint: 2 variants × min 2 × ml.m5.large at $0.115/h, 100,000 requests/day
    realtime = json_report(default_cdk_out, "--requests-per-day", "100000")["patterns"]["realtime"]
    compute = [item for item in realtime["items"] if item["category"] == "compute" and item["scales"] == "fixed"]
    # THEN the always-on compute is 4 × 730 h × $0.115 = $335.80
    assert sum(item["quantity"] for item in compute) == pytest.approx(4 * 730)
    assert sum(item["monthly_usd"] for item in compute) == pytest.approx(4 * 730 * 0.115, abs=0.01)
    # AND the total is that plus every other listed item (monitoring, alarms, dashboard, key, data, capture)
    extras = sum(item["monthly_usd"] for item in realtime["items"] if item not in compute)
    assert realtime["monthly_usd"] == pytest.approx(4 * 730 * 0.115 + extras, abs=0.01)
    categories = {item["category"] for item in realtime["items"]}
    assert {"compute", "monitoring", "alarms", "keys", "data processed", "storage"} <= categories
    # AND the built-in drift job (the default engine) runs hourly: 730 runs × 60 s × 3008 MB of arm64 Lambda
    (drift,) = [item for item in realtime["items"]
                if item["price_key"] == "lambda.duration:arm64" and "Drift" in item["name"]]
    assert drift["category"] == "monitoring" and drift["quantity"] == pytest.approx(730 * 60 * 3008 / 1024)


def test_traffic_moves_only_traffic_items(default_cdk_out):
    quiet = json_report(default_cdk_out, "--requests-per-day", "1000")["patterns"]
    busy = json_report(default_cdk_out, "--requests-per-day", "1000000")["patterns"]
    assert quiet["serverless"]["fixed_usd"] == busy["serverless"]["fixed_usd"]
    assert busy["serverless"]["traffic_usd"] == pytest.approx(1000 * quiet["serverless"]["traffic_usd"], rel=0.01)
    # 1M requests/day: API Gateway REST $3.50/M × 30.4M
    (api,) = [i for i in busy["serverless"]["items"] if i["name"].startswith("API Gateway REST")]
    assert api["monthly_usd"] == pytest.approx(1_000_000 * 730 / 24 * 3.5 / 1e6, rel=1e-6)


def test_batch_pays_start_up_plus_scoring_time_at_the_measured_rate(default_cdk_out):
    # GIVEN 4 × ml.m5.xlarge at $0.23/h, 30.4 nightly runs, 6 min start-up, 1M rows at 1M rows/s/instance
    batch = json_report(default_cdk_out, "--batch-rows-per-night", "1000000",
                        "--rows-per-second-per-instance", "1000000")["patterns"]["batch"]
    compute = sum(item["monthly_usd"] for item in batch["items"] if item["category"] == "compute")
    runs = 730 / 24
    assert compute == pytest.approx(runs * 4 * (6 / 60 + 0.25 / 3600) * 0.23, abs=1e-3)


def test_edge_pays_per_device(default_cdk_out):
    edge = json_report(default_cdk_out, "--devices", "100")["patterns"]["edge"]
    (devices,) = [item for item in edge["items"] if item["category"] == "compute"]
    assert devices["monthly_usd"] == pytest.approx(16.0)


def test_the_table_marks_fixed_and_traffic_items_and_low_confidence_prices(default_cdk_out):
    code, out, _ = run("--cdk-out", str(default_cdk_out), "--requests-per-day", "100000")
    assert code == 0
    assert "fixed (idle)" in out and "with traffic" in out
    assert "variant v1: 2 × ml.m5.large always on" in out
    assert "* low-confidence price" in out


def test_seed_prints_four_rows_recomputed_with_one_line_reasons(default_cdk_out):
    code, out, _ = run("--cdk-out", str(default_cdk_out), "--seed")
    assert code == 0
    assert "2 × ml.m5.large is $167.90/month at $0.115/h × 730 h, not $150" in out
    assert "4 × ml.m5.xlarge × 20 min × 30.4 nights is $9.33" in out
    for pattern in ("realtime", "batch", "serverless", "edge"):
        assert f"{pattern}: seed → recomputed:" in out and f"{pattern}: recomputed → this project:" in out


def test_plot_writes_a_png_and_reports_the_break_even_points(default_cdk_out, tmp_path):
    picture = tmp_path / "cost.png"
    code, out, err = run("--cdk-out", str(default_cdk_out), "--plot", str(picture))
    assert code == 0, err
    assert picture.read_bytes()[:8] == PNG_SIGNATURE and picture.stat().st_size > 20_000
    assert f"wrote {picture}" in out and "batch = serverless at" in out


# -- refusals --------------------------------------------------------------------------------------------------
def test_missing_cdk_out_exits_2_with_one_line(tmp_path):
    code, out, err = run("--cdk-out", str(tmp_path / "missing"))
    assert code == 2 and out == ""
    assert err.startswith("error: no synthesized app in") and err.count("\n") == 1


def test_an_unknown_instance_type_exits_2_naming_the_price_to_add(templates, tmp_path):
    (config,) = [resource for resource in templates["realtime"]["Resources"].values()
                 if resource["Type"] == "AWS::SageMaker::EndpointConfig"]
    config["Properties"]["ProductionVariants"][0]["InstanceType"] = "ml.inf9.huge"
    code, out, err = run("--cdk-out", str(write_assembly(tmp_path / "out", templates)))
    assert code == 2 and out == ""
    assert "no price for SageMaker real-time hosting ml.inf9.huge in us-east-1" in err
    assert '"key": "sagemaker.hosting:ml.inf9.huge"' in err and err.count("\n") == 1


def test_an_unknown_region_exits_2(default_cdk_out):
    code, _, err = run("--cdk-out", str(default_cdk_out), "--region", "ap-east-2")
    assert code == 2 and "in ap-east-2 (the book has prices for us-east-1 only;" in err


def test_bad_options_exit_2(default_cdk_out, tmp_path):
    assert run("--cdk-out", str(default_cdk_out), "--requests-per-day", "-5")[0] == 2
    assert run("--cdk-out", str(default_cdk_out), "--plot", str(tmp_path / "cost.svg"))[0] == 2


def test_live_prices_without_credentials_exit_3(default_cdk_out):
    # GIVEN no credentials (tests/conftest.py removes them) WHEN asking the Price List API THEN exit 3, one line
    code, _, err = run("--cdk-out", str(default_cdk_out), "--prices", "live")
    assert code == 3 and err.startswith("error: ") and err.count("\n") == 1


# -- non-default modes priced ----------------------------------------------------------------------------------
def endpoint_config(templates: dict) -> dict:
    (config,) = [resource for resource in templates["realtime"]["Resources"].values()
                 if resource["Type"] == "AWS::SageMaker::EndpointConfig"]
    return config["Properties"]


def realtime_cost(templates: dict, **assumptions):
    costs, _ = estimate(read_deployment({"realtime": templates["realtime"]}), Assumptions(**assumptions),
                        load_price_book())
    return costs["realtime"]


def test_serverless_inference_costs_nothing_idle(templates):
    endpoint_config(templates)["ProductionVariants"] = [{
        "VariantName": "v1", "ModelName": "m", "InitialVariantWeight": 1,
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}]
    cost = realtime_cost(templates, requests_per_day=100_000, duration_ms=10)
    (compute,) = [item for item in cost.items if item.category == "compute"]
    assert compute.scales == "traffic"
    # 100,000 × 30.42 requests × 10 ms × 2 GB × $0.00002/GB-s
    assert compute.monthly_usd == pytest.approx(100_000 * 730 / 24 * 0.01 * 2 * 0.00002)


def test_serverless_provisioned_concurrency_without_a_price_is_refused(templates):
    from ops.cli import UsageError

    endpoint_config(templates)["ProductionVariants"] = [{
        "VariantName": "v1", "ModelName": "m", "InitialVariantWeight": 1,
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5, "ProvisionedConcurrency": 2}}]
    with pytest.raises(UsageError, match="sagemaker.serverless.provisioned"):
        realtime_cost(templates)


def test_async_scaled_to_zero_has_no_fixed_compute(templates):
    endpoint_config(templates)["AsyncInferenceConfig"] = {"OutputConfig": {"S3OutputPath": "s3://b/async/"}}
    for resource in templates["realtime"]["Resources"].values():
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget":
            resource["Properties"]["MinCapacity"] = 0
    cost = realtime_cost(templates, requests_per_day=10)
    compute = [item for item in cost.items if item.category == "compute"]
    assert compute and all(item.scales == "traffic" for item in compute)


def test_a_shadow_variant_adds_its_always_on_fleet(templates):
    before = realtime_cost(templates).monthly_usd
    endpoint_config(templates)["ShadowProductionVariants"] = [{
        "VariantName": "shadow", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.xlarge",
        "InitialVariantWeight": 1}]
    after = realtime_cost(templates)
    assert after.monthly_usd - before == pytest.approx(730 * 0.23)
    assert any(item.name.startswith("shadow variant shadow") for item in after.items)


def test_the_drift_job_is_priced_as_monitoring(templates):
    resources = templates["realtime"]["Resources"]
    resources["DriftFunction"] = {"Type": "AWS::Lambda::Function", "Properties": {
        "Architectures": ["arm64"], "MemorySize": 1024, "Timeout": 30, "Runtime": "python3.12",
        "Handler": "index.handler", "Role": "arn:aws:iam::123456789012:role/r", "Code": {"ZipFile": "x"}}}
    resources["DriftSchedule"] = {"Type": "AWS::Scheduler::Schedule", "Properties": {
        "ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": {"Fn::GetAtt": ["DriftFunction", "Arn"]}, "RoleArn": "arn:aws:iam::123456789012:role/s"}}}
    items = [item for item in realtime_cost(templates).items if "function DriftFunction:" in item.name]
    duration = [item for item in items if item.price_key == "lambda.duration:arm64"][0]
    assert duration.category == "monitoring" and duration.scales == "fixed"
    assert duration.quantity == pytest.approx(730 * 30 * 1.0)  # runs × min(60 s, 30 s timeout) × 1 GB


def test_snapstart_adds_a_fixed_cache_and_traffic_restores(templates):
    resources = templates["serverless"]["Resources"]
    (function_id,) = [key for key, value in resources.items() if value["Type"] == "AWS::Lambda::Function"
                      and value["Properties"].get("MemorySize") == 512]
    resources[function_id]["Properties"]["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    costs, _ = estimate(read_deployment({"serverless": templates["serverless"]}), Assumptions(), load_price_book())
    snap = {item.price_key: item for item in costs["serverless"].items if "SnapStart" in item.name}
    assert snap["lambda.snapstart.cache"].scales == "fixed"
    assert snap["lambda.snapstart.cache"].quantity == pytest.approx(0.5 * 730 * 3600)
    assert snap["lambda.snapstart.restore"].scales == "traffic" and snap["lambda.snapstart.restore"].low_confidence


def test_provisioned_concurrency_is_fixed_at_the_arm64_rate(templates):
    (alias,) = [r for r in templates["serverless"]["Resources"].values() if r["Type"] == "AWS::Lambda::Alias"]
    alias["Properties"]["ProvisionedConcurrencyConfig"] = {"ProvisionedConcurrentExecutions": 1}
    costs, _ = estimate(read_deployment({"serverless": templates["serverless"]}), Assumptions(), load_price_book())
    (provisioned,) = [i for i in costs["serverless"].items if i.price_key == "lambda.provisioned:arm64"]
    # 0.5 GB × 2,628,000 s × $0.0000033333 ≈ $4.38 (the README's "$4.3 per environment")
    assert provisioned.monthly_usd == pytest.approx(4.38, abs=0.01) and provisioned.scales == "fixed"


def test_stacks_bound_to_a_region_are_priced_there(default_json, tmp_path):
    # GIVEN an app synthesized for eu-west-1 (target.region set) and a book with us-east-1 prices only
    cdk_out = write_assembly(tmp_path / "out", default_json)
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    for artifact in manifest["artifacts"].values():
        artifact["environment"] = "aws://123456789012/eu-west-1"
    (cdk_out / "manifest.json").write_text(json.dumps(manifest))
    # WHEN it is priced without --region THEN it is refused rather than priced at us-east-1 rates
    code, _, err = run("--cdk-out", str(cdk_out))
    assert code == 2 and "in eu-west-1" in err
    # AND --region us-east-1 prices it at us-east-1 list prices, on request
    assert run("--cdk-out", str(cdk_out), "--region", "us-east-1")[0] == 0


def test_live_prices_flow_into_the_figures(default_cdk_out, monkeypatch):
    # GIVEN the Price List API quotes every instance price of the default app 10 % above the book
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("pricing", region_name="us-east-1")
    # (one call per price, in the order of the price keys: hosting, transform; the default built-in drift engine
    # runs no processing job)
    quotes = [("USE1-Host:ml.m5.large", "0.1265"), ("USE1-Tsform:ml.m5.xlarge", "0.253")]
    with Stubber(client) as stub:
        for usage_type, usd in quotes:
            answer = {"FormatVersion": "aws_v1", "PriceList": [price_list_product(usage_type, usd)]}
            stub.add_response("get_products", answer, {
                "ServiceCode": "AmazonSageMaker", "FormatVersion": "aws_v1", "MaxResults": 10, "Filters": [
                    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
                    {"Type": "TERM_MATCH", "Field": "usagetype", "Value": usage_type}]})
        out, err = io.StringIO(), io.StringIO()
        code = main(["--cdk-out", str(default_cdk_out), "--json", "--prices", "live"], out=out, err=err,
                    pricing_client=client)
        stub.assert_no_pending_responses()
    assert code == 0, err.getvalue()
    report = json.loads(out.getvalue())
    # THEN the always-on compute uses the live hosting price and the source says where it came from
    compute = [i for i in report["patterns"]["realtime"]["items"] if i["price_key"] == "sagemaker.hosting:ml.m5.large"]
    assert sum(i["monthly_usd"] for i in compute) == pytest.approx(4 * 730 * 0.1265, abs=0.01)
    assert "Price List API" in report["prices"]["source"]


@pytest.mark.parametrize("argv, code, message", [
    (["--help"], 0, ""),
    (["--cdk-out", "does-not-exist"], 2, "error: no synthesized app in does-not-exist"),
    (["--payload-kb", "many"], 2, "'many' is not a number"),
])
def test_the_module_runs_and_fails_with_a_message_not_a_traceback(argv, code, message):
    # WHEN run as `python -m ops.cost ...` from the repository root
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    result = subprocess.run([sys.executable, "-m", "ops.cost", *argv], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    # THEN the exit code follows ops/cli.py and an error is one message
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    if code == 0:
        assert "python -m ops.cost --requests-per-day 100000" in result.stdout
