"""What sampled request capture costs on the serverless request path.

    python -m bench.capture [--requests 4000]

offer_unsampled_us   ``RequestCapture.offer`` for a request that is not sampled (one random draw)
offer_sampled_us     ``offer`` for a sampled single-row request: re-parse the validated body and the answer,
                     build one JSON Lines record, append it to the buffer
flush_500_ms         building the 500-record object and handing it to an S3 client that does nothing (the
                     network PUT itself cannot be measured here: no AWS; it is paid once per batch)
handler_p50/p99      single-row ``POST /predict`` through ``lambda_handler`` (real model, Powertools), capture
                     off, at 5% and at 100% (batches of 500, no-op S3 client): the end-to-end difference

Writes bench/results/capture.json. Figures are from one shared x86 core; arm64 Lambda is slower per op.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

from bench._stats import p50_p99

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = REPO_ROOT / "lambda_src"
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "capture.json"
ROW = [7.54, 14.0, 0.0692, 4.767, 1.49, 0.5424, 1.0, 1194.0, 1.0, 0.0, 0.0, 0.0]
BATCH = 500


class NullS3:
    def __init__(self) -> None:
        self.bytes = 0

    def put_object(self, **kwargs) -> None:
        self.bytes += len(kwargs["Body"])


class Context:
    function_name, function_version, memory_limit_in_mb = "bench", "1", 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench:live"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _event(index: int) -> dict:
    return {"resource": "/predict", "path": "/predict", "httpMethod": "POST", "headers": {},
            "requestContext": {"requestId": f"req-{index}"}, "body": json.dumps({"features": ROW}),
            "isBase64Encoded": False}


def _load_handler():
    metadata = json.loads((ARTIFACTS_DIR / "metadata.json").read_text())
    os.environ.update({"MODEL_LOCAL_PATH": str(ARTIFACTS_DIR), "MODEL_VERSION": metadata["model_version"],
                       "POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_METRICS_NAMESPACE": "Bench",
                       "POWERTOOLS_TRACE_DISABLED": "true"})
    sys.path.insert(0, str(LAMBDA_SRC))
    spec = importlib.util.spec_from_file_location("bench_capture_handler", LAMBDA_SRC / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.logger.registered_handler.setStream(io.StringIO())
    return module, sys.modules["serverless_inference.capture"]


def _per_call_us(function, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        function(index)
    return (time.perf_counter() - started) / count * 1e6


def measure(requests: int) -> dict:
    handler, capture = _load_handler()
    handler.logger.setLevel("WARNING")
    answer = handler._predict_api(_event(0))

    def build(percent: float, client: NullS3) -> capture.RequestCapture:
        settings = capture.CaptureSettings(bucket="bench", prefix="capture/", percent=percent, max_records=BATCH)
        return capture.RequestCapture(settings, s3_client_factory=lambda: client, rng=random.Random(1))

    unsampled = build(0.0001, NullS3())
    sampled = build(100.0, NullS3())
    sampled.settings = capture.CaptureSettings(bucket="bench", prefix="capture/", percent=100.0,
                                               max_records=10 ** 9)
    events = [_event(index) for index in range(requests)]  # built beforehand: only offer() is timed
    offer_unsampled = _per_call_us(lambda i: unsampled.offer(events[i % requests], answer), requests * 10)
    offer_sampled = _per_call_us(lambda i: sampled.offer(events[i], answer), requests)
    flush_ms = []
    for _ in range(20):
        client = NullS3()
        batch = build(100.0, client)
        for index in range(BATCH):
            batch.offer(events[index % requests], answer)
        started = time.perf_counter()
        batch.flush_if_due(Context())
        flush_ms.append((time.perf_counter() - started) * 1000)
    object_kb = client.bytes / 1024

    stdout, sys.stdout = sys.stdout, io.StringIO()  # EMF metrics go to stdout, as in Lambda
    try:
        handler_runs = {}
        for label, percent in (("off", 0.0), ("5%", 5.0), ("100%", 100.0)):
            handler.CAPTURE = build(percent, NullS3()) if percent else capture.RequestCapture(capture.CaptureSettings())
            for index in range(200):
                handler.lambda_handler(_event(index), Context())
            samples = []
            for index in range(requests):
                event = events[index]
                started = time.perf_counter()
                handler.lambda_handler(event, Context())
                samples.append((time.perf_counter() - started) * 1000)
                sys.stdout.seek(0)
                sys.stdout.truncate()
            p50, p99 = p50_p99(samples)
            handler_runs[label] = {"p50_ms": round(p50, 4), "p99_ms": round(p99, 4),
                                   "mean_ms": round(statistics.fmean(samples), 4)}
    finally:
        sys.stdout = stdout
    return {"requests": requests, "batch_records": BATCH,
            "offer_unsampled_us": round(offer_unsampled, 3), "offer_sampled_us": round(offer_sampled, 2),
            "flush_500_ms": round(statistics.median(flush_ms), 3), "object_kb_per_500": round(object_kb, 1),
            "handler": handler_runs,
            "machine": f"{os.cpu_count()} shared x86 cores, CPython {sys.version.split()[0]}",
            "not_measured": "the S3 PUT round trip (no AWS here): one per batch of 500 sampled records"}


def table(result: dict) -> str:
    lines = ["| measure | value |", "|---|---|",
             f"| offer, request not sampled | {result['offer_unsampled_us']} µs |",
             f"| offer, sampled single-row request | {result['offer_sampled_us']} µs |",
             f"| flush of {result['batch_records']} records (build object, no network) | {result['flush_500_ms']} ms "
             f"({result['object_kb_per_500']} KB) |"]
    for label, run in result["handler"].items():
        lines.append(f"| handler, capture {label} | p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, "
                     f"mean {run['mean_ms']} ms |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capture", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args(argv)
    result = measure(args.requests)
    RESULTS_PATH.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
