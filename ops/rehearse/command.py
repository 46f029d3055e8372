"""Drive load at a request rate and report what the endpoint did: rehearse autoscaling before you need it.

    python -m ops.rehearse --url http://127.0.0.1:8080/invocations --rps 40 --duration 8 --json r.json
    python -m ops.rehearse --endpoint fraud-detector-realtime --rps-start 5 --rps-end 200 --ramp-seconds 600 \\
        --duration 1200 --concurrency 64 --target-instances 4 --json r.json --plot r.png

Requests are sent open-loop: each when it is due, whether or not earlier ones returned, by at most
--concurrency senders; latency counts from the due time, so queueing shows up. Bodies are the rows of
<model dir>/samples/request.csv (one row per request, in turn) unless --payload gives one body.
Every --interval seconds: achieved rate, p50/p99, errors and, for an endpoint, each variant's instance
count (DescribeEndpoint) and the latest InvocationsPerInstance/ModelLatency minute (CloudWatch).
Refuses an endpoint that does not exist or is not InService. Ctrl-C stops sending, waits briefly for
requests in flight and still writes --json/--plot.

Hard caps: --duration at most 3600 s, rates at most 1000 req/s, --max-requests (default 100000).

Exit codes: 0 ran to the end (errors are reported, not fatal); 1 interrupted; 2 bad options or files,
unknown or not-InService endpoint; 3 AWS, credentials or network.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

from ops.cli import EXIT_FAILED, EXIT_OK, Parser, UsageError, run
from ops.rehearse import report
from ops.rehearse.observe import EndpointObserver
from ops.rehearse.runner import Rehearsal, RunOptions
from ops.rehearse.schedule import LoadProfile
from ops.rehearse.targets import DEFAULT_TIMEOUT_S, EndpointTarget, HttpTarget, check_endpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_FILE = Path("samples") / "request.csv"
MAX_DURATION_S = 3600.0
MAX_RPS = 1000.0
DEFAULT_MAX_REQUESTS = 100_000
MAX_CONCURRENCY = 256
DEFAULT_CONCURRENCY = 16
DEFAULT_INTERVAL_S = 10.0
DEFAULT_DURATION_S = 60.0
CONTENT_TYPES = {".csv": "text/csv", ".json": "application/json", ".jsonl": "application/jsonlines"}


def default_model_dir(cdk_json: Path = REPO_ROOT / "cdk.json") -> Path:
    """The deployed model's artifacts directory, as cdk.json names it."""
    try:
        relative = json.loads(cdk_json.read_text())["context"]["deploy"]["model"]["artifacts_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        from stacks.config.common import DEFAULT_ARTIFACTS_DIR

        relative = DEFAULT_ARTIFACTS_DIR
    return REPO_ROOT / relative


def build_parser() -> Parser:
    parser = Parser(prog="python -m ops.rehearse", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint", help="SageMaker endpoint name (InvokeEndpoint)")
    where.add_argument("--url", help="URL speaking the container contract, e.g. http://127.0.0.1:8080/invocations")
    parser.add_argument("--region", help="AWS region for --endpoint (default: the AWS CLI/SDK configuration)")
    parser.add_argument("--rps", type=float, help="constant request rate (requests/s)")
    parser.add_argument("--rps-start", type=float, help="ramp: rate at the start")
    parser.add_argument("--rps-end", type=float, help="ramp: rate at the end of the ramp, held until --duration")
    parser.add_argument("--ramp-seconds", type=float, help="ramp: seconds from --rps-start to --rps-end")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S,
                        help=f"seconds of load (default {DEFAULT_DURATION_S:g}, at most {MAX_DURATION_S:g})")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help=f"most requests in flight at once (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--max-requests", type=int, default=DEFAULT_MAX_REQUESTS,
                        help=f"hard cap on requests sent (default {DEFAULT_MAX_REQUESTS})")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S,
                        help=f"seconds per reported interval (default {DEFAULT_INTERVAL_S:g})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"per-request timeout, and how long to wait for stragglers at the end "
                             f"(default {DEFAULT_TIMEOUT_S:g})")
    bodies = parser.add_mutually_exclusive_group()
    bodies.add_argument("--model-dir", type=Path, help="model artifacts whose samples/request.csv rows are the "
                                                       "bodies (default: the model in cdk.json)")
    bodies.add_argument("--payload", type=Path, help="one request body, sent as is")
    parser.add_argument("--content-type", help="default: text/csv, or from --payload's extension")
    parser.add_argument("--target-instances", type=int,
                        help="instance count whose arrival the summary times (default: the most seen)")
    parser.add_argument("--json", type=Path, help="write the series and the summary to this file")
    parser.add_argument("--plot", type=Path, help="write latency and instance count over time to this PNG")
    return parser


def load_profile(args: Any) -> LoadProfile:
    ramp = [args.rps_start, args.rps_end, args.ramp_seconds]
    if args.rps is not None and any(value is not None for value in ramp):
        raise UsageError("give --rps or a ramp (--rps-start, --rps-end, --ramp-seconds), not both")
    if not 0 < args.duration <= MAX_DURATION_S:
        raise UsageError(f"--duration must be above 0 and at most {MAX_DURATION_S:g} seconds, got {args.duration:g}")
    if args.rps is not None:
        if not 0 < args.rps <= MAX_RPS:
            raise UsageError(f"--rps must be above 0 and at most {MAX_RPS:g}, got {args.rps:g}")
        return LoadProfile.constant(args.rps, args.duration)
    if any(value is None for value in ramp):
        raise UsageError("give --rps N, or all of --rps-start, --rps-end and --ramp-seconds")
    problems = []
    if not 0 <= args.rps_start <= MAX_RPS:
        problems.append(f"--rps-start must be between 0 and {MAX_RPS:g}")
    if not 0 < args.rps_end <= MAX_RPS:
        problems.append(f"--rps-end must be above 0 and at most {MAX_RPS:g}")
    if not 0 < args.ramp_seconds <= args.duration:
        problems.append("--ramp-seconds must be above 0 and at most --duration")
    if problems:
        raise UsageError("; ".join(problems))
    return LoadProfile(rps_start=args.rps_start, rps_end=args.rps_end, ramp_s=args.ramp_seconds,
                       duration_s=args.duration)


def check_numbers(args: Any) -> None:
    problems = []
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        problems.append(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
    if args.max_requests < 1:
        problems.append("--max-requests must be at least 1")
    if not 1 <= args.interval <= MAX_DURATION_S:
        problems.append("--interval must be between 1 and 3600 seconds")
    if not 0 < args.timeout <= 300:
        problems.append("--timeout must be above 0 and at most 300 seconds")
    if args.target_instances is not None and args.target_instances < 1:
        problems.append("--target-instances must be at least 1")
    if problems:
        raise UsageError("; ".join(problems))


def request_bodies(args: Any) -> tuple[list[bytes], str]:
    """The bodies to send in turn, and their content type."""
    if args.payload:
        try:
            body = args.payload.read_bytes()
        except OSError as error:
            raise UsageError(f"cannot read --payload {args.payload}: {error.strerror or error}") from None
        if not body:
            raise UsageError(f"--payload {args.payload} is empty")
        return [body], args.content_type or CONTENT_TYPES.get(args.payload.suffix.lower(), "text/csv")
    samples = (args.model_dir or default_model_dir()) / SAMPLES_FILE
    try:
        lines = samples.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read sample requests {samples}: {getattr(error, 'strerror', None) or error}; "
                         "build the model (python -m training.build) or pass --payload") from None
    bodies = [line.encode() + b"\n" for line in lines if line.strip()]
    if not bodies:
        raise UsageError(f"{samples} has no rows; pass --payload")
    return bodies, args.content_type or "text/csv"


def _default_clients(region: str | None, timeout_s: float) -> Callable[[str], Any]:
    import boto3
    from botocore.config import Config

    from ops.cli import AwsError

    session = boto3.session.Session(region_name=region)
    if session.region_name is None:
        raise AwsError("no AWS region configured: pass --region or set AWS_REGION")
    # Enough pooled connections for every sender; SDK retries off, so throttling is counted, not hidden.
    # --timeout bounds every call, so the end of a run waits at most that long for stragglers.
    config = Config(max_pool_connections=MAX_CONCURRENCY, retries={"max_attempts": 1, "mode": "standard"},
                    connect_timeout=timeout_s, read_timeout=timeout_s)
    return lambda service: session.client(service, config=config)


def rehearse(args: Any, clients: Callable[[str], Any] | None, progress: TextIO, out: TextIO) -> int:
    check_numbers(args)
    profile = load_profile(args)
    bodies, content_type = request_bodies(args)
    for path in (args.json, args.plot):
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"cannot write {path}: {path.parent} is not a directory")
    observe = None
    if args.endpoint:
        clients = clients or _default_clients(args.region, args.timeout)
        sagemaker = clients("sagemaker")
        check_endpoint(sagemaker, args.endpoint)
        target = EndpointTarget(clients("sagemaker-runtime"), args.endpoint, content_type=content_type)
        observe = EndpointObserver(sagemaker, clients("cloudwatch"), args.endpoint).observe
    else:
        target = HttpTarget(args.url, content_type=content_type, timeout_s=args.timeout)
        target.check()
    expected = profile.expected_requests()
    if expected > args.max_requests:
        print(f"note: the schedule holds {expected} requests; --max-requests stops at {args.max_requests}",
              file=progress)
    options = RunOptions(profile=profile, concurrency=args.concurrency, max_requests=args.max_requests,
                         interval_s=args.interval, drain_s=args.timeout, target_instances=args.target_instances)
    rehearsal = Rehearsal(target=target, bodies=bodies, options=options, observe=observe, progress=progress)
    summary = rehearsal.run()
    document = {
        "target": {"kind": "endpoint" if args.endpoint else "url", "description": target.description},
        "load": {"rps_start": profile.rps_start, "rps_end": profile.rps_end, "ramp_seconds": profile.ramp_s,
                 "duration_s": profile.duration_s, "concurrency": args.concurrency,
                 "max_requests": args.max_requests, "interval_s": args.interval, "bodies": len(bodies),
                 "content_type": content_type},
        "series": rehearsal.series,
        "summary": summary,
    }
    if args.json:
        report.write_json(args.json, document)
    if args.plot:
        report.plot(args.plot, document)
    print(summary_text(summary), file=out)
    return EXIT_FAILED if summary["stopped"] == "interrupted" else EXIT_OK


def summary_text(summary: dict[str, Any]) -> str:
    def value(key: str, unit: str = "") -> str:
        return "-" if summary[key] is None else f"{summary[key]}{unit}"

    return (f"{summary['stopped']}: sent {summary['requests_sent']} in {summary['elapsed_s']} s "
            f"({value('achieved_rps', ' req/s')}), errors {summary['errors']}, p50 {value('p50_ms', ' ms')}, "
            f"p99 {value('p99_ms', ' ms')}, worst interval p99 {value('worst_p99_ms', ' ms')}, "
            f"instances {value('initial_instances')} -> {value('max_instances')}, "
            f"first scale-out {value('time_to_first_scale_out_s', ' s')}, "
            f"target reached {value('time_to_target_s', ' s')}")


def main(argv: list[str] | None = None, *, clients: Callable[[str], Any] | None = None,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``clients(service)`` makes boto3 clients (tests pass stubbed ones)."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        return run(lambda: rehearse(build_parser().parse_args(argv), clients, err, out), err=err)
    except KeyboardInterrupt:  # before the load started (during the checks) or while writing the outputs
        print("error: interrupted", file=err)
        return EXIT_FAILED
