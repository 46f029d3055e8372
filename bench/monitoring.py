"""Drift-job throughput: 1,000,000 captured rows read, compared with the baseline and reported, in one process.

    python -m bench.monitoring [--rows 1000000] [--model-dir artifacts/fraud-detector]

What one run of the built-in engine's Lambda does with a window, minus S3: the captured objects' bytes are
already in memory (S3 GETs stream at ~90+ MB/s per connection and are not measured here), then

* ``read``: SageMaker data-capture JSON Lines, one request of one CSV row per line with its CSV response
  (the real-time pattern's common case and the most expensive format per row: one JSON document per row),
  parsed by ``drift_readers.read_capture_lines``; serverless samples and a batch input/output pair too;
* ``compare``: PSI and KS for 12 features and the score against drift_baseline.json (``drift_stats.drift_report``);
* ``emf``: the metric lines.

The rows are sampled from the model's baseline.csv with their model scores, so the result must report no
drift (checked). ``WINDOW MB`` is the growth of the process's resident set while the window is held (rows as flat doubles,
their numpy copies, scores and ids).

Writes bench/results/monitoring.json: rows, seconds per stage, rows_per_s, peak memory and the window the
Lambda (15 minutes, the construct's 3008 MB) handles at this rate, with a 2x margin for the slower arm64 core
and S3 reads.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = REPO_ROOT / "ml_constructs" / "monitoring" / "drift_job" / "runtime"
DEFAULT_MODEL_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "monitoring.json"
DEFAULT_ROWS = 1_000_000
LAMBDA_TIMEOUT_S = 900
LAMBDA_MEMORY_MB = 3008
#: The projection divides this machine's rate by this: arm64 Lambda cores are slower, and S3 reads take time.
SAFETY_FACTOR = 2.0
SEED = 20240601


def _runtime():
    sys.path.insert(0, str(RUNTIME_DIR))
    import drift_emf
    import drift_readers
    import drift_stats

    return drift_readers, drift_stats, drift_emf


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _rss_mb() -> float:
    """The current resident set (Linux /proc), to measure what a held window costs."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_capture(rows: np.ndarray, scores: np.ndarray) -> bytes:
    """One data-capture record per row: a text/csv request of one line and its one-line CSV response."""
    template = ('{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"%s",'
                '"encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT",'
                '"data":"%r\\n","encoding":"CSV"}},"eventMetadata":{"eventId":"%08d","inferenceId":"%08d",'
                '"inferenceTime":"2026-01-01T00:00:00Z"},"eventVersion":"0"}')
    lines = [template % (",".join(f"{value:g}" for value in row), float(score), index, index)
             for index, (row, score) in enumerate(zip(rows, scores))]
    return ("\n".join(lines) + "\n").encode()


def make_samples(rows: np.ndarray, scores: np.ndarray) -> bytes:
    return "".join(json.dumps({"inference_id": f"{index:08d}", "features": row.tolist(), "score": float(score)},
                              separators=(",", ":")) + "\n"
                   for index, (row, score) in enumerate(zip(rows, scores))).encode()


def make_batch(rows: np.ndarray, scores: np.ndarray) -> tuple[str, str]:
    inputs = "".join(f"{index},{','.join(f'{value:g}' for value in row)}\n" for index, row in enumerate(rows))
    outputs = "".join(f"{index},{score!r}\n" for index, score in enumerate(scores.tolist()))
    return inputs, outputs


def measure(name: str, data, reader, model: dict, modules) -> dict:
    drift_readers, drift_stats, drift_emf = modules
    rss_before = _rss_mb()
    started = time.perf_counter()
    window = drift_readers.WindowBuilder(len(model["baseline"]["features"]))
    reader(data, window)
    read_s = time.perf_counter() - started
    features, scores = window.arrays()
    held_mb = _rss_mb() - rss_before
    compare_started = time.perf_counter()
    report = drift_stats.drift_report(features, scores, model["baseline"], thresholds=drift_stats.Thresholds(),
                                      rows_seen=window.rows_seen, invalid=window.invalid)
    compare_s = time.perf_counter() - compare_started
    emf_started = time.perf_counter()
    lines = drift_emf.lines(report, namespace="MLDrift/bench", timestamp_ms=0)
    emf_s = time.perf_counter() - emf_started
    total = read_s + compare_s + emf_s
    if report["drift"] or report["rows_valid"] != len(model["rows"]) or not np.isfinite(scores).all():
        raise SystemExit(f"{name}: rows drawn from the baseline must all be read and show no drift: "
                         f"{report['drifted_features']} {report['prediction']}")
    return {"format": name, "rows": int(window.rows_seen), "read_s": round(read_s, 3), "compare_s": round(compare_s, 3),
            "emf_s": round(emf_s, 4), "seconds": round(total, 3), "rows_per_s": int(window.rows_seen / total),
            "emf_lines": len(lines), "window_rss_mb": round(held_mb, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.monitoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    modules = _runtime()
    sys.path.insert(0, str(REPO_ROOT))
    from ops.monitor import load_model, score_rows

    metadata, baseline = load_model(args.model_dir)
    reference = np.loadtxt(args.model_dir / "baseline.csv", delimiter=",", skiprows=1, ndmin=2)
    rows = reference[np.random.default_rng(SEED).integers(0, reference.shape[0], args.rows)]
    scores = score_rows(args.model_dir, metadata, rows)
    model = {"baseline": baseline, "rows": rows}
    drift_readers = modules[0]
    results = []
    rss_start = _max_rss_mb()
    capture = make_capture(rows, scores)
    results.append(measure("capture (1 CSV row per record)", capture.splitlines(), drift_readers.read_capture_lines,
                           model, modules))
    capture_mb = len(capture) / 2**20
    del capture
    samples = make_samples(rows, scores)
    results.append(measure("serverless samples", samples.splitlines(), drift_readers.read_sample_lines, model, modules))
    del samples
    inputs, outputs = make_batch(rows, scores)
    results.append(measure("batch input + output", (inputs, outputs),
                           lambda data, window: drift_readers.read_batch(data[0], data[1], window), model, modules))
    del inputs, outputs
    headline = results[0]
    projected_rows = int(headline["rows_per_s"] / SAFETY_FACTOR * LAMBDA_TIMEOUT_S)
    bytes_per_row = capture_mb * 2**20 / args.rows
    # Memory: the measured resident growth of a held capture window per row (flat doubles, copies for numpy,
    # ids), with 40% of the function's memory left for the runtime, boto3 and one object's bytes at a time.
    window_bytes_per_row = max(headline["window_rss_mb"] * 2**20 / args.rows, 8 * 13)
    memory_rows = int(LAMBDA_MEMORY_MB * 2**20 * 0.6 / window_bytes_per_row)
    summary = {
        "rows": args.rows, "seconds": headline["seconds"], "rows_per_s": headline["rows_per_s"],
        "results": results, "capture_mb_per_million_rows": round(capture_mb * 1e6 / args.rows, 1),
        "capture_bytes_per_row": round(bytes_per_row),
        "lambda_window_rows_by_time": projected_rows, "lambda_window_rows_by_memory": memory_rows,
        "lambda_window_rows": min(projected_rows, memory_rows),
        "process_peak_rss_mb": round(_max_rss_mb(), 1), "rss_at_start_mb": round(rss_start, 1),
        "conditions": {"process": "one process, one thread, objects already in memory (S3 not measured)",
                       "lambda": f"{LAMBDA_MEMORY_MB} MB, {LAMBDA_TIMEOUT_S} s, safety factor {SAFETY_FACTOR}",
                       "machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
                       "model_version": metadata.get("model_version")},
    }
    width = max(len(result["format"]) for result in results)
    print(f"{'FORMAT':<{width}}  {'ROWS':>9}  {'READ s':>7}  {'COMPARE s':>9}  {'TOTAL s':>7}  {'ROWS/s':>9}  WINDOW MB")
    for result in results:
        print(f"{result['format']:<{width}}  {result['rows']:>9}  {result['read_s']:>7.2f}  {result['compare_s']:>9.2f}  "
              f"{result['seconds']:>7.2f}  {result['rows_per_s']:>9}  {result['window_rss_mb']:>9}")
    print(f"capture: {summary['capture_mb_per_million_rows']} MB per million rows; one Lambda run "
          f"({LAMBDA_MEMORY_MB} MB, {LAMBDA_TIMEOUT_S} s, /{SAFETY_FACTOR:g} margin) handles about "
          f"{summary['lambda_window_rows']:,} captured rows per window")
    RESULTS_PATH.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {RESULTS_PATH.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
