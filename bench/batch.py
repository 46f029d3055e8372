"""Batch throughput: 1,000,000 CSV rows through inference.py's handler chain in 6 MB MultiRecord payloads.

    python -m bench.batch [--rows 1000000] [--payload-mb 6] [--model-dir artifacts/fraud-detector]

What a Batch Transform instance does per request, in one worker process: the rows (12 features; the
ID column is already removed by InputFilter) are packed into requests of whole lines of at most
MaxPayloadInMB (taken as MiB), each request body is decoded to text as the container's Flask layer does
for text/csv, and ``transform_fn(model, body, "text/csv", "text/csv")`` parses, predicts and formats
it. Timed: decoding, parsing, prediction and formatting of every payload. Not timed: making the rows.
Every payload's answer must have one line per input line (JoinSource=Input depends on it), and a
sample of probabilities must match scikit-learn's own predict_proba.

Writes bench/results/batch.json with rows, seconds and rows_per_s (plus the conditions and a breakdown).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import joblib
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
INFERENCE_PATH = REPO_ROOT / "inference" / "inference.py"
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "batch.json"
DEFAULT_ROWS = 1_000_000
DEFAULT_PAYLOAD_MB = 6
BYTES_PER_MB = 1024 * 1024
TARGET_SECONDS = 10.0
CHECKED_ROWS = 2000
SEED = 20240501
CSV = "text/csv"


class RecordTooLarge(ValueError):
    """One line is bigger than MaxPayloadInMB: Batch Transform fails the job on such a record."""


def split_payloads(data: bytes, max_bytes: int) -> list[bytes]:
    """Pack whole lines into requests of at most ``max_bytes`` (SplitType=Line, BatchStrategy=MultiRecord).

    Every payload ends at a line boundary and keeps its newline; the last line needs none.
    """
    payloads: list[bytes] = []
    start, size = 0, len(data)
    while start < size:
        end = start + max_bytes
        if end >= size:
            payloads.append(data[start:])
            break
        cut = data.rfind(b"\n", start, end)
        if cut < 0:
            line_end = data.find(b"\n", start)
            length = (line_end if line_end >= 0 else size) - start
            raise RecordTooLarge(f"a {length}-byte line at offset {start} exceeds the {max_bytes}-byte payload limit")
        payloads.append(data[start:cut + 1])
        start = cut + 1
    return payloads


def load_inference():
    spec = importlib.util.spec_from_file_location("inference_batch_bench", INFERENCE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_rows(model_dir: Path, rows: int, seed: int = SEED) -> bytes:
    """``rows`` lines sampled (with replacement) from the model's baseline rows, formatted as training wrote them."""
    lines = (model_dir / "baseline.csv").read_text().splitlines()[1:]  # the header names the features
    picks = np.random.default_rng(seed).integers(0, len(lines), size=rows)
    return ("\n".join(lines[index] for index in picks) + "\n").encode("ascii")


def count_lines(body: bytes) -> int:
    return body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)


def run(model_dir: Path, rows: int, payload_mb: int) -> dict:
    os.environ.pop("INFERENCE_MAX_PAYLOAD_MB", None)  # the handler's default accepts Batch Transform's 100 MB
    inference = load_inference()
    model = inference.model_fn(str(model_dir))
    data = make_rows(model_dir, rows)
    payloads = split_payloads(data, payload_mb * BYTES_PER_MB)
    inference.transform_fn(model, payloads[0][:4096].rsplit(b"\n", 1)[0].decode(), CSV, CSV)  # warm-up

    outputs: list[bytes] = []
    started = time.perf_counter()
    for payload in payloads:
        response = inference.transform_fn(model, payload.decode("utf-8"), CSV, CSV)
        if response.status_code != 200:
            raise RuntimeError(f"transform_fn answered {response.status_code}: {response.get_data()[:300]!r}")
        outputs.append(response.get_data())
    seconds = time.perf_counter() - started

    mismatched = [index for index, (payload, output) in enumerate(zip(payloads, outputs))
                  if count_lines(payload) != count_lines(output)]
    if mismatched:
        raise RuntimeError(f"payloads {mismatched[:5]} answered a different number of lines than they sent")
    answered = sum(count_lines(output) for output in outputs)
    if answered != rows:
        raise RuntimeError(f"sent {rows} rows, got {answered} predictions")
    checked = [line.decode() for line in payloads[0].split(b"\n", CHECKED_ROWS)[:CHECKED_ROWS]]
    reference = joblib.load(model_dir / "model.joblib")  # scikit-learn directly, not through inference.py
    expected = reference.predict_proba(np.loadtxt(checked, delimiter=","))[:, 1]
    got = np.array([float(line) for line in outputs[0].decode().splitlines()[:CHECKED_ROWS]])
    if not np.allclose(got, expected, rtol=0, atol=1e-12):
        raise RuntimeError("probabilities differ from scikit-learn's predict_proba")

    breakdown = _breakdown(inference, model, payloads[0])
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "target_seconds": TARGET_SECONDS,
        "meets_target": seconds <= TARGET_SECONDS,
        "payloads": len(payloads),
        "payload_limit_bytes": payload_mb * BYTES_PER_MB,
        "largest_payload_bytes": max(len(payload) for payload in payloads),
        "input_bytes": len(data),
        "first_payload_breakdown_s": breakdown,
        "conditions": {
            "process": "one worker, one thread (the container runs one such worker per vCPU)",
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "model_version": model.model_version,
        },
    }


def _breakdown(inference, model, payload: bytes) -> dict | None:
    """Where one payload's time goes, using inference.py's own stages when it exposes them."""
    stages = ("parse_csv", "predict", "format_csv")
    if not all(hasattr(inference, stage) for stage in stages):
        return None
    started = time.perf_counter()
    text = payload.decode("utf-8")
    decoded = time.perf_counter()
    features = inference.parse_csv(text.encode("utf-8"), model.n_features)
    parsed = time.perf_counter()
    probabilities = inference.predict(model, features)
    predicted = time.perf_counter()
    inference.format_csv(probabilities)
    formatted = time.perf_counter()
    return {"rows": len(features), "decode": round(decoded - started, 4), "parse": round(parsed - decoded, 4),
            "predict": round(predicted - parsed, 4), "format": round(formatted - predicted, 4)}


def print_table(result: dict) -> None:
    print(f"{'rows':>10} {'payloads':>9} {'seconds':>8} {'rows/s':>10} {'target':>8}")
    print(f"{result['rows']:>10,} {result['payloads']:>9} {result['seconds']:>8.2f} {result['rows_per_s']:>10,} "
          f"{'<= ' + format(result['target_seconds'], 'g') + ' s':>8} {'ok' if result['meets_target'] else 'MISSED'}")
    breakdown = result.get("first_payload_breakdown_s")
    if breakdown:
        print(f"one {breakdown['rows']:,}-row payload: decode {breakdown['decode']*1000:.0f} ms, parse "
              f"{breakdown['parse']*1000:.0f} ms, predict {breakdown['predict']*1000:.0f} ms, format "
              f"{breakdown['format']*1000:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--payload-mb", type=int, default=DEFAULT_PAYLOAD_MB)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    if args.rows < 1 or not 1 <= args.payload_mb <= 100:
        parser.error("--rows must be positive and --payload-mb within 1..100")
    result = run(args.model_dir, args.rows, args.payload_mb)
    print_table(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output.relative_to(REPO_ROOT) if args.output.is_relative_to(REPO_ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
