"""Drift checks: the built-in engine's drift statistics on a local file, and Model Monitor's check on demand.

    python -m ops.monitor drift --model-dir artifacts/fraud-detector --input window.csv [--json]
    python -m ops.monitor run --function <the stack's drift function name> [--window-end 2025-01-31T10:00Z]
    python -m ops.monitor run-now --endpoint fraud-detector-realtime --start -PT3H --end -PT0H
                                  [--schedule NAME] [--region REGION] [--poll-seconds 30]
                                  [--timeout-minutes 60] [--keep]

``drift`` runs the built-in engine's code (the drift Lambda's, loaded from
ml_constructs/monitoring/drift_job/runtime) on a CSV whose header names the features, a SageMaker
data-capture JSONL file or serverless samples (JSON Lines ``{"inference_id", "features", "score"}``), against
the model's drift_baseline.json (built in memory from baseline.csv and model.onnx when the model has none).
Scores come from the capture's responses, a ``score`` column, or model.onnx. ``--json`` prints
``{"features": {"<name>": {"psi", "ks", "drift"}}, "prediction": {...}, "invalid_rate": ..., ...}``.

``run-now`` copies Model Monitor's hourly data-quality check. ``--start``/``--end`` are ISO 8601 offsets before now (``-PT3H``, ``-P1D``) or UTC times
(``2025-01-31T10:00Z``, rounded outward to whole hours); the window may span at most 24 hours.

SageMaker runs a monitoring schedule whose expression is ``NOW`` once, immediately, over
``DataAnalysisStartTime``..``DataAnalysisEndTime``. This command copies the job definition of the
endpoint's hourly data-quality schedule (same baseline, image, role, KMS key, network isolation; its
CloudWatch metrics switched off so an ad-hoc window never moves the drift alarms), starts a one-time
schedule on the copy, waits for the run, reads ``constraint_violations.json`` from the run's output and
prints it. The one-time schedule and the copied job definition are deleted afterwards unless ``--keep``.

Every option is checked before the first AWS call, so a mistake never leaves a schedule behind.

Exit codes (ops/cli.py's table): 0 no drift / no violations; 1 drift or violations found, the run failed, or
gave up waiting (the run goes on; clean up with --keep's names); 2 invalid arguments or input file, no (or an
invalid) AWS region or profile, or nothing to copy; 3 AWS refused, could not be reached or no credentials
were found.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

import numpy as np

from ops import cli
from ops.cli import EXIT_AWS, EXIT_FAILED, EXIT_OK, EXIT_USAGE

EXIT_CLEAN = EXIT_OK
EXIT_VIOLATIONS = EXIT_FAILED
EXIT_DRIFT = EXIT_FAILED
EXIT_STILL_RUNNING = EXIT_FAILED
DEFAULT_POLL_SECONDS = 30.0
DEFAULT_TIMEOUT_MINUTES = 60.0
#: time.sleep refuses (OverflowError) anything past about 2**63 ns; an hour between polls is already plenty.
MAX_POLL_SECONDS = 3600.0
#: A monitoring job stops after at most 86400 s (MonitoringStoppingCondition); two days covers queueing too.
MAX_TIMEOUT_MINUTES = 2 * 24 * 60.0
MAX_WINDOW = dt.timedelta(hours=24)
MAX_NAME = 63
TERMINAL = {"Completed", "CompletedWithViolations", "Failed", "Stopped"}
VIOLATIONS_FILE = "constraint_violations.json"
#: Copied from a job definition's description into CreateDataQualityJobDefinition.
JOB_DEFINITION_FIELDS = ("DataQualityBaselineConfig", "DataQualityAppSpecification", "DataQualityJobInput",
                         "DataQualityJobOutputConfig", "JobResources", "NetworkConfig", "RoleArn",
                         "StoppingCondition")
ENDPOINT_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
DURATION_PATTERN = re.compile(r"(?P<sign>[-+]?)P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?)?")


UsageError = cli.UsageError
RunFailed = cli.OperationFailed
AwsFailed = cli.AwsError


@dataclass(frozen=True)
class Window:
    """Offsets before the run, as ScheduleConfig's DataAnalysisStartTime/EndTime want them."""

    start: dt.timedelta
    end: dt.timedelta

    @staticmethod
    def iso(offset: dt.timedelta) -> str:
        minutes = int(-offset.total_seconds() // 60)
        hours, rest = divmod(minutes, 60)
        return f"-PT{hours}H" + (f"{rest}M" if rest else "")

    @property
    def start_iso(self) -> str:
        return self.iso(self.start)

    @property
    def end_iso(self) -> str:
        return self.iso(self.end)


def parse_offset(text: str, now: dt.datetime, *, round_up: bool) -> dt.timedelta:
    """``-PT3H`` (or ``PT3H``) / ``-P1D`` back from now, or a UTC time turned into whole hours before ``now``."""
    match = DURATION_PATTERN.fullmatch(text.strip())
    if match and any(match.group(part) for part in ("days", "hours", "minutes")):
        try:
            amount = dt.timedelta(days=int(match["days"] or 0), hours=int(match["hours"] or 0),
                                  minutes=int(match["minutes"] or 0))
        except (OverflowError, ValueError):  # past timedelta's 999999999 days, or past int's 4300-digit limit
            raise UsageError(f"{_echo(text)} is too large an offset; a window spans at most 24 hours") from None
        # Offsets count back from now; only an explicit "+" points into the future (and is refused later).
        return amount if match["sign"] == "+" else -amount
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{_echo(text)} is neither an ISO 8601 offset such as -PT3H nor a time such as "
                         "2025-01-31T10:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    hours = (moment - now).total_seconds() / 3600
    return dt.timedelta(hours=math.ceil(hours) if round_up else math.floor(hours))


def _echo(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")


def parse_window(start: str, end: str, now: dt.datetime) -> Window:
    """The analysis window; every problem with it in one UsageError."""
    offsets, problems = [], []
    for text, round_up in ((start, False), (end, True)):
        try:
            offsets.append(parse_offset(text, now, round_up=round_up))
        except UsageError as exc:
            problems.append(f"--{'end' if round_up else 'start'} {exc}")
    if problems:
        raise UsageError("; ".join(problems))
    window = Window(*offsets)
    if window.end > dt.timedelta(0):
        problems.append(f"--end {end} is in the future; the window must end now or earlier")
    if window.start >= window.end:
        problems.append(f"--start {start} must be before --end {end}")
    elif window.end - window.start > MAX_WINDOW:
        problems.append(f"the window {window.start_iso}..{window.end_iso} spans more than 24 hours, the most "
                        "one monitoring run analyses")
    if problems:
        raise UsageError("; ".join(problems))
    return window


def _positive_number(option: str, value: float, maximum: float) -> list[str]:
    if not math.isfinite(value) or not 0 < value <= maximum:
        return [f"{option} {value:g} must be a number above 0 and at most {maximum:g}"]
    return []


def validate(args: argparse.Namespace, now: dt.datetime) -> Window:
    """Every command-line problem at once, before any AWS call (a late one would strand the one-time schedule)."""
    problems = []
    if not ENDPOINT_PATTERN.fullmatch(args.endpoint):
        problems.append(f"--endpoint {_echo(args.endpoint)} is not an endpoint name")
    if args.schedule is not None and not ENDPOINT_PATTERN.fullmatch(args.schedule):
        problems.append(f"--schedule {_echo(args.schedule)} is not a monitoring schedule name")
    problems += _positive_number("--poll-seconds", args.poll_seconds, MAX_POLL_SECONDS)
    problems += _positive_number("--timeout-minutes", args.timeout_minutes, MAX_TIMEOUT_MINUTES)
    window = None
    try:
        window = parse_window(args.start, args.end, now)
    except UsageError as exc:
        problems.append(str(exc))
    if problems:
        raise UsageError("; ".join(problems))
    return window


def one_time_name(endpoint: str, now: dt.datetime) -> str:
    suffix = f"dq-now-{now:%Y%m%d%H%M%S}"
    return f"{endpoint[:MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}"


def _call(what: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    import botocore.exceptions

    try:
        return function(**kwargs)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsFailed(f"{what} failed: {error.get('Code')}: {error.get('Message')}") from None
    except botocore.exceptions.NoCredentialsError:
        raise AwsFailed(f"{what}: no AWS credentials found (configure a profile or the AWS_* variables)") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsFailed(f"{what}: could not reach AWS: {exc}") from None


def find_job_definition(sagemaker: Any, endpoint: str, schedule: str | None) -> str:
    """The data-quality job definition behind the endpoint's recurring schedule (or ``schedule``)."""
    if schedule:
        described = _call(f"DescribeMonitoringSchedule {schedule}", sagemaker.describe_monitoring_schedule,
                          MonitoringScheduleName=schedule)
        config = described["MonitoringScheduleConfig"]
        if config.get("MonitoringType") != "DataQuality" or not config.get("MonitoringJobDefinitionName"):
            raise UsageError(f"schedule {schedule} is not a data-quality schedule with a job definition")
        return config["MonitoringJobDefinitionName"]
    listed = _call(f"ListMonitoringSchedules for {endpoint}", sagemaker.list_monitoring_schedules,
                   EndpointName=endpoint, MonitoringTypeEquals="DataQuality", MaxResults=100)
    candidates = [summary for summary in listed.get("MonitoringScheduleSummaries", [])
                  if summary.get("MonitoringJobDefinitionName") and "-dq-now-" not in summary["MonitoringScheduleName"]]
    if not candidates:
        raise UsageError(f"endpoint {endpoint} has no data-quality monitoring schedule to copy; deploy the real-time "
                         "stack with deploy.realtime.monitor.enabled=true (or pass --schedule)")
    if len(candidates) > 1:
        names = ", ".join(summary["MonitoringScheduleName"] for summary in candidates)
        raise UsageError(f"endpoint {endpoint} has several data-quality schedules ({names}); choose one with --schedule")
    return candidates[0]["MonitoringJobDefinitionName"]


def copy_job_definition(sagemaker: Any, source: str, name: str) -> None:
    described = _call(f"DescribeDataQualityJobDefinition {source}", sagemaker.describe_data_quality_job_definition,
                      JobDefinitionName=source)
    request = {field: described[field] for field in JOB_DEFINITION_FIELDS if field in described}
    app = dict(request["DataQualityAppSpecification"])
    # An ad-hoc window must not publish into the metrics the drift alarms watch.
    app["Environment"] = {**app.get("Environment", {}), "publish_cloudwatch_metrics": "Disabled"}
    request["DataQualityAppSpecification"] = app
    _call(f"CreateDataQualityJobDefinition {name}", sagemaker.create_data_quality_job_definition,
          JobDefinitionName=name, **request)


def wait_for_execution(sagemaker: Any, schedule: str, *, poll_seconds: float, timeout_seconds: float,
                       sleep: Callable[[float], None], clock: Callable[[], float], err: TextIO) -> dict[str, Any] | None:
    """The schedule's execution once it is terminal, or None when ``timeout_seconds`` pass first."""
    deadline = clock() + timeout_seconds
    last_status = None
    while True:
        listed = _call("ListMonitoringExecutions", sagemaker.list_monitoring_executions,
                       MonitoringScheduleName=schedule, SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
        executions = listed.get("MonitoringExecutionSummaries", [])
        status = executions[0]["MonitoringExecutionStatus"] if executions else "Scheduling"
        if status != last_status:
            print(f"  {status}", file=err)
            last_status = status
        if status in TERMINAL:
            return executions[0]
        if clock() >= deadline:
            return None
        sleep(poll_seconds)


def read_violations(sagemaker: Any, s3: Any, execution: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The report location and its violations (none when the run wrote no violations file)."""
    import botocore.exceptions

    job_name = execution["ProcessingJobArn"].rsplit("/", 1)[-1]
    job = _call(f"DescribeProcessingJob {job_name}", sagemaker.describe_processing_job, ProcessingJobName=job_name)
    output_uri = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    report_uri = f"{output_uri}/{VIOLATIONS_FILE}"
    bucket, _, key = report_uri.removeprefix("s3://").partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return report_uri, []
        error = exc.response.get("Error", {})
        raise AwsFailed(f"reading {report_uri} failed: {error.get('Code')}: {error.get('Message')}") from None
    try:
        return report_uri, list(json.loads(body).get("violations", []))
    except (ValueError, AttributeError):
        raise RunFailed(f"{report_uri} is not a constraint violations report") from None


def format_violations(violations: Sequence[dict[str, Any]]) -> str:
    rows = [(str(v.get("feature_name", "")), str(v.get("constraint_check_type", "")), str(v.get("description", "")))
            for v in violations]
    widths = [max([len(header), *(len(row[index]) for row in rows)])
              for index, header in enumerate(("FEATURE", "CHECK"))]
    lines = [f"{'FEATURE':<{widths[0]}}  {'CHECK':<{widths[1]}}  DESCRIPTION"]
    lines += [f"{feature:<{widths[0]}}  {check:<{widths[1]}}  {description}" for feature, check, description in rows]
    return "\n".join(lines)


def cleanup(sagemaker: Any, schedule: str | None, job_definition: str, err: TextIO) -> None:
    """Delete the one-time schedule, then its job definition (a referenced definition cannot go first)."""
    steps = []
    if schedule:
        steps.append((f"monitoring schedule {schedule}", sagemaker.delete_monitoring_schedule,
                      {"MonitoringScheduleName": schedule}))
    steps.append((f"job definition {job_definition}", sagemaker.delete_data_quality_job_definition,
                  {"JobDefinitionName": job_definition}))
    for what, function, kwargs in steps:
        try:
            _call(f"deleting {what}", function, **kwargs)
        except cli.OpsError as exc:
            print(f"warning: {exc}; delete it yourself", file=err)


def run_now(args: argparse.Namespace, *, window: Window, sagemaker: Any, s3: Any, now: dt.datetime,
            sleep: Callable[[float], None], clock: Callable[[], float], out: TextIO, err: TextIO) -> int:
    """Copy, run once over ``window`` (already validated), report, clean up; the exit code."""
    source = find_job_definition(sagemaker, args.endpoint, args.schedule)
    name = one_time_name(args.endpoint, now)
    print(f"Checking {args.endpoint} over {window.start_iso}..{window.end_iso} (job definition {source}, "
          f"one-time schedule {name})", file=err)
    copy_job_definition(sagemaker, source, name)
    created = finished = False
    try:
        _call(f"CreateMonitoringSchedule {name}", sagemaker.create_monitoring_schedule,
              MonitoringScheduleName=name,
              MonitoringScheduleConfig={
                  "ScheduleConfig": {"ScheduleExpression": "NOW", "DataAnalysisStartTime": window.start_iso,
                                     "DataAnalysisEndTime": window.end_iso},
                  "MonitoringJobDefinitionName": name, "MonitoringType": "DataQuality"})
        created = True
        execution = wait_for_execution(sagemaker, name, poll_seconds=args.poll_seconds,
                                       timeout_seconds=args.timeout_minutes * 60, sleep=sleep, clock=clock, err=err)
        if execution is None:
            print(f"gave up after {args.timeout_minutes:g} minutes; the run goes on. Delete schedule {name} and job "
                  f"definition {name} when it ends.", file=err)
            return EXIT_STILL_RUNNING
        finished = True
        status = execution["MonitoringExecutionStatus"]
        if status in ("Failed", "Stopped"):
            raise RunFailed(f"the run ended {status}: {execution.get('FailureReason') or 'no reason given'}")
        report_uri, violations = read_violations(sagemaker, s3, execution)
        if not violations:
            print(f"No violations ({status}). Report: {report_uri}", file=out)
            return EXIT_CLEAN
        print(f"{len(violations)} violation(s) ({status}). Report: {report_uri}", file=out)
        print(format_violations(violations), file=out)
        return EXIT_VIOLATIONS
    finally:
        if not args.keep and (finished or not created):
            cleanup(sagemaker, name if created else None, name, err)


def _attach_offsets(argv: list[str]) -> list[str]:
    """``--start -PT3H`` -> ``--start=-PT3H``: argparse would read a value starting with "-" as an option."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] in ("--start", "--end") and arg.startswith("-P"):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


RUNTIME_DIR = Path(__file__).resolve().parents[1] / "ml_constructs" / "monitoring" / "drift_job" / "runtime"


def _runtime() -> tuple[Any, Any]:
    """The drift job's own modules (drift_stats, drift_readers), so the local check is the Lambda's code."""
    if str(RUNTIME_DIR) not in sys.path:
        sys.path.append(str(RUNTIME_DIR))
    import drift_readers
    import drift_stats

    return drift_stats, drift_readers


def load_model(model_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, drift baseline) of a model folder; the baseline is built from baseline.csv when absent."""
    metadata_path = model_dir / "metadata.json"
    try:
        metadata = json.loads(metadata_path.read_text())
        names = list(metadata["feature_names"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"{metadata_path} is missing or not a model's metadata.json (build one with "
                         "python -m training.build)") from None
    baseline_name = (metadata.get("monitoring") or {}).get("drift_baseline") or "drift_baseline.json"
    baseline_path = model_dir / baseline_name
    if baseline_path.is_file():
        try:
            baseline = json.loads(baseline_path.read_text())
            if list(baseline["features"]) != names:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{baseline_path} is not a drift baseline for this model's features") from None
        return metadata, baseline
    from training.drift_baseline import build_drift_baseline

    try:
        reference = np.loadtxt(model_dir / "baseline.csv", delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError):
        raise UsageError(f"{model_dir} has neither drift_baseline.json nor a readable baseline.csv") from None
    scores = score_rows(model_dir, metadata, reference)
    if scores is None:
        raise UsageError(f"{model_dir} has no drift_baseline.json, and scoring baseline.csv needs onnxruntime")
    return metadata, build_drift_baseline(reference, names, scores)


def score_rows(model_dir: Path, metadata: dict[str, Any], rows: np.ndarray) -> np.ndarray | None:
    """The positive-class score of each complete row with model.onnx (NaN for incomplete rows), or None."""
    try:
        import onnxruntime
    except ImportError:
        return None
    onnx = metadata.get("onnx") or {}
    session = onnxruntime.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    scores = np.full(rows.shape[0], np.nan)
    complete = np.isfinite(rows).all(axis=1)
    if complete.any():
        output = session.run([onnx.get("probabilities_output", "probabilities")],
                             {onnx.get("input_name", "features"): rows[complete].astype(np.float32)})[0]
        scores[complete] = np.asarray(output, dtype=np.float64)[:, int(metadata.get("positive_class", 1))]
    return scores


def drift_check(model_dir: Path, input_path: Path, *, psi_threshold: float | None = None,
                ks_threshold: float | None = None) -> dict[str, Any]:
    """The drift report of a local file against the model's baseline (the drift Lambda's computation)."""
    drift_stats, drift_readers = _runtime()
    metadata, baseline = load_model(model_dir)
    names = list(baseline["features"])
    try:
        text = input_path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {input_path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{input_path} is not UTF-8 text (expected a CSV or JSON Lines file)") from None
    window = drift_readers.WindowBuilder(len(names))
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.lstrip().startswith("{"):
        reader = drift_readers.read_capture_lines if '"captureData"' in first else drift_readers.read_sample_lines
        reader(text.splitlines(), window)
    else:
        try:
            drift_readers.read_header_csv(text, names, window)
        except ValueError as exc:
            raise UsageError(f"{input_path}: {exc}") from None
    features, scores = window.arrays()
    if features.shape[0] and not np.isfinite(scores).any():  # no captured score: score with the model itself
        scores = score_rows(model_dir, metadata, features)
        if scores is None:
            scores = np.full(features.shape[0], np.nan)
    defaults = drift_stats.Thresholds()
    thresholds = drift_stats.Thresholds(
        psi=defaults.psi if psi_threshold is None else psi_threshold,
        ks=defaults.ks if ks_threshold is None else ks_threshold,
        prediction_psi=defaults.prediction_psi if psi_threshold is None else psi_threshold,
        invalid_rate=defaults.invalid_rate)
    report = drift_stats.drift_report(features, scores, baseline, thresholds=thresholds, rows_seen=window.rows_seen,
                                      invalid=window.invalid)
    if report["status"] == "no data":
        raise UsageError(f"{input_path} holds no rows to analyse (no data)")
    return report


def format_drift(report: dict[str, Any]) -> str:
    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}"

    rows = [(name, result) for name, result in report["features"].items()] + [("(prediction)", report["prediction"])]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'FEATURE':<{width}}  {'PSI':>8}  {'KS':>8}  {'MISSING':>8}  DRIFT"]
    for name, result in rows:
        lines.append(f"{name:<{width}}  {number(result.get('psi')):>8}  {number(result.get('ks')):>8}  "
                     f"{number(result.get('missing_rate')):>8}  {'yes' if result['drift'] else 'no'}"
                     + ("" if result.get("status") == "ok" else f" ({result.get('status')})"))
    invalid = ", ".join(f"{reason} {count}" for reason, count in report["invalid"].items() if count) or "none"
    lines.append(f"{report['rows_seen']} rows, invalid rate {report['invalid_rate']:.4f} ({invalid})")
    return "\n".join(lines)


def drift_command(args: argparse.Namespace, out: TextIO) -> int:
    report = drift_check(Path(args.model_dir), Path(args.input), psi_threshold=args.psi_threshold,
                         ks_threshold=args.ks_threshold)
    if args.json:
        summary = {"features": {name: {key: result.get(key) for key in ("psi", "ks", "drift", "missing_rate")}
                                for name, result in report["features"].items()},
                   "prediction": {key: report["prediction"].get(key) for key in ("psi", "ks", "drift")},
                   "invalid_rate": report["invalid_rate"], "invalid": report["invalid"],
                   "rows_seen": report["rows_seen"], "drifted_features": report["drifted_features"],
                   "drift": report["drift"]}
        print(json.dumps(summary, indent=1), file=out)
    else:
        print(format_drift(report), file=out)
    return EXIT_DRIFT if report["drift"] or report["invalid_breach"] else EXIT_OK


def run_builtin(args: argparse.Namespace, *, lambda_client: Any, out: TextIO) -> int:
    """Invoke the built-in engine's drift Lambda now (the stack's DriftFunctionName output) and print its result."""
    if not re.fullmatch(r"[a-zA-Z0-9_:.-]{1,140}", args.function):
        raise UsageError(f"--function {_echo(args.function)} is not a Lambda function name or ARN")
    event = {"window_minutes": args.window_minutes}
    if args.window_end:
        try:
            dt.datetime.fromisoformat(args.window_end.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--window-end {_echo(args.window_end)} is not a time such as 2025-01-31T10:00Z") from None
        event["window_end"] = args.window_end
    if lambda_client is None:
        lambda_client = _client("lambda", args.region)
    response = _call(f"Invoke {args.function}", lambda_client.invoke, FunctionName=args.function,
                     InvocationType="RequestResponse", Payload=json.dumps(event).encode())
    body = response["Payload"].read()
    if response.get("FunctionError"):
        raise RunFailed(f"the drift job failed: {body.decode('utf-8', 'replace')[:500]}")
    try:
        result = json.loads(body)
    except ValueError:
        raise RunFailed("the drift job returned something other than JSON") from None
    print(json.dumps(result, indent=1), file=out)
    return EXIT_DRIFT if result.get("drift") else EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = cli.Parser(prog="python -m ops.monitor", description=__doc__.split("\n\n")[0],
                        epilog="example:\n  python -m ops.monitor drift --model-dir artifacts/fraud-detector "
                               "--input window.csv --json")
    commands = parser.add_subparsers(dest="command", required=True)
    drift = commands.add_parser("drift", help="drift statistics of a local CSV or data-capture file",
                                epilog="example:\n  python -m ops.monitor drift --model-dir artifacts/fraud-detector "
                                       "--input capture.jsonl --json")
    drift.add_argument("--model-dir", required=True, help="the model folder (metadata.json, drift_baseline.json)")
    drift.add_argument("--input", required=True, help="CSV with a header naming the features, or capture JSONL")
    drift.add_argument("--json", action="store_true", help="print the result as JSON")
    drift.add_argument("--psi-threshold", type=cli.positive_number("PSI", described="a PSI"), help="flag PSI at or above this (default 0.2)")
    drift.add_argument("--ks-threshold", type=cli.positive_number("KS", described="a KS statistic"), help="flag KS at or above this (default 0.2)")
    builtin = commands.add_parser("run", help="run the built-in engine's drift job now (invokes its Lambda)",
                                  epilog="example:\n  python -m ops.monitor run --function <DriftFunctionName output>")
    builtin.add_argument("--function", required=True, help="the drift Lambda's name (the stack's output)")
    builtin.add_argument("--window-end", help="UTC time the window ends (default: now)")
    builtin.add_argument("--window-minutes", type=int, default=60)
    builtin.add_argument("--region", help="AWS region (default: the CLI's)")
    run = commands.add_parser("run-now", help="Model Monitor engine: run the data-quality check over a window now")
    run.add_argument("--endpoint", required=True)
    run.add_argument("--start", required=True, help="window start: -PT3H, -P1D or 2025-01-31T10:00Z")
    run.add_argument("--end", default="-PT0H", help="window end (default -PT0H, now)")
    run.add_argument("--schedule", help="the recurring data-quality schedule to copy (default: the endpoint's)")
    run.add_argument("--region", help="AWS region (default: the CLI's)")
    run.add_argument("--poll-seconds", type=float, default=DEFAULT_POLL_SECONDS)
    run.add_argument("--timeout-minutes", type=float, default=DEFAULT_TIMEOUT_MINUTES)
    run.add_argument("--keep", action="store_true", help="keep the one-time schedule and job definition")
    return parser


def main(argv: Sequence[str] | None = None, *, sagemaker: Any = None, s3: Any = None, lambda_client: Any = None,
         now: dt.datetime | None = None, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    def command() -> int:
        import botocore.exceptions

        args = _parser().parse_args(_attach_offsets(sys.argv[1:] if argv is None else list(argv)))
        if args.command == "drift":
            return drift_command(args, out)
        try:
            if args.command == "run":
                return run_builtin(args, lambda_client=lambda_client, out=out)
            moment = now or dt.datetime.now(dt.timezone.utc)
            window = validate(args, moment)
            sm, storage = sagemaker, s3
            if sm is None or storage is None:
                sm, storage = _clients(args.region, sm, storage)
            return run_now(args, window=window, sagemaker=sm, s3=storage, now=moment, sleep=sleep, clock=clock,
                           out=out, err=err)
        except botocore.exceptions.NoCredentialsError:  # outside _call, e.g. while reading the report's body
            raise AwsFailed("no AWS credentials found (configure a profile or the AWS_* variables)") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsFailed(f"could not reach AWS: {exc}") from None

    return cli.run(command, err=err)


def _client(service: str, region: str | None) -> Any:
    import boto3
    import botocore.exceptions

    try:
        return boto3.client(service, region_name=region)
    except botocore.exceptions.NoRegionError:
        raise AwsFailed("no AWS region configured; pass --region or set AWS_REGION") from None
    except (botocore.exceptions.InvalidRegionError, botocore.exceptions.ProfileNotFound) as exc:
        raise UsageError(str(exc)) from None


def _clients(region: str | None, sagemaker: Any, s3: Any) -> tuple[Any, Any]:
    """SageMaker and S3 clients; no region is an AWS configuration error (exit 3, as in every ops command), a
    malformed region or an unknown profile a usage error (exit 2)."""
    import boto3
    import botocore.exceptions

    try:
        return (sagemaker or boto3.client("sagemaker", region_name=region),
                s3 or boto3.client("s3", region_name=region))
    except botocore.exceptions.NoRegionError:
        raise AwsFailed("no AWS region configured; pass --region or set AWS_REGION") from None
    except (botocore.exceptions.InvalidRegionError, botocore.exceptions.ProfileNotFound) as exc:
        raise UsageError(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
