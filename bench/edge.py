"""Edge latency: the component's inference path, model-only and per message, in process.

    python -m bench.edge [--model-dir artifacts/fraud-detector] [--iterations 20000]

Three timings per message, each over the same sample rows from ``baseline.csv``:
  model    predictor.positive_probability() on a ready float32 row (onnxruntime, 1 thread)
  message  JSON bytes in -> predictor.handle() -> JSON bytes out (what standalone mode does per line)
  ipc      a SubscriptionResponseMessage through IpcBridge.on_message to a publish_to_topic call on a
           client that returns at once (the IPC layer's own cost, no nucleus)
Writes bench/results/edge.json with model_p50_ms, model_p99_ms, message_p50_ms, message_p99_ms, ipc_p50_ms,
ipc_p99_ms, the targets (model p99 <= 0.05 ms, message p99 <= 0.5 ms) and the conditions measured under.
"""
from __future__ import annotations

import argparse
import csv
import gc
import importlib.util
import json
import os
import platform
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from bench._stats import p50_p99

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAM_DIR = REPO_ROOT / "edge_component"
DEFAULT_MODEL_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "edge.json"
DEFAULT_ITERATIONS = 20_000
WARMUP = 2_000
SAMPLE_ROWS = 1_000
TARGETS_MS = {"model_p99_ms": 0.05, "message_p99_ms": 0.5}


def load_program_module(name: str):
    """edge_component/<name>.py by file path, as the device runs it (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"edge_{name}_{uuid.uuid4().hex}", PROGRAM_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def sample_rows(model_dir: Path, count: int) -> list[list[float]]:
    with (model_dir / "baseline.csv").open() as handle:
        reader = csv.reader(handle)
        next(reader)
        return [[float(value) for value in row] for _, row in zip(range(count), reader)]


def time_calls(call, inputs: list, iterations: int) -> np.ndarray:
    """Per-call wall time in ms; warm-up first, garbage collector paused while timing."""
    for index in range(WARMUP):
        call(inputs[index % len(inputs)])
    timings = np.empty(iterations, dtype=np.float64)
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for index in range(iterations):
            item = inputs[index % len(inputs)]
            started = clock()
            call(item)
            timings[index] = clock() - started
    finally:
        gc.enable()
    return timings / 1e6


class _NullClient:
    """Accepts publishes instantly, so the timing is the bridge's own work."""

    def publish_to_topic(self, *, topic=None, publish_message=None):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)

    predictor_module = load_program_module("predictor")
    ipc_module = load_program_module("ipc_bridge")
    from awsiot.greengrasscoreipc import model as ipc_model

    metadata = json.loads((args.model_dir / "metadata.json").read_text())
    predictor = predictor_module.FraudPredictor(args.model_dir / "model.onnx", model_version=metadata["model_version"])
    rows = sample_rows(args.model_dir, SAMPLE_ROWS)
    load_before = os.getloadavg()[0]

    arrays = [np.asarray([row], dtype=np.float32) for row in rows]
    model_ms = time_calls(predictor.positive_probability, arrays, args.iterations)

    messages = [json.dumps({"id": f"txn-{index}", "features": row}).encode() for index, row in enumerate(rows)]

    def message_path(raw: bytes) -> bytes:
        return json.dumps(predictor.handle(raw).body, separators=(",", ":")).encode()

    message_ms = time_calls(message_path, messages, args.iterations)
    answers = [json.loads(message_path(raw)) for raw in messages[:50]]
    if any("error" in answer for answer in answers):
        raise RuntimeError(f"the sample messages were rejected: {answers[:3]}")

    bridge = ipc_module.IpcBridge(_NullClient(), predictor.handle, topics=ipc_module.Topics(
        input="bench/in", output="bench/out", error="bench/err"))
    events = [ipc_model.SubscriptionResponseMessage(json_message=ipc_model.JsonMessage(
        message={"id": f"txn-{index}", "features": row})) for index, row in enumerate(rows)]
    ipc_ms = time_calls(bridge.on_message, events, args.iterations)
    if bridge.counts["rejected"] or bridge.counts["publish_failures"]:
        raise RuntimeError(f"the IPC path rejected messages: {bridge.counts}")

    results = {}
    for name, timings in (("model", model_ms), ("message", message_ms), ("ipc", ipc_ms)):
        p50, p99 = p50_p99(timings)
        results[f"{name}_p50_ms"], results[f"{name}_p99_ms"] = round(p50, 4), round(p99, 4)
    met = {key: results[key] <= limit for key, limit in TARGETS_MS.items()}
    document = {
        **results,
        "targets_ms": TARGETS_MS,
        "targets_met": met,
        "conditions": {
            "iterations": args.iterations, "warmup": WARMUP, "distinct_rows": len(rows),
            "model_version": predictor.model_version, "intra_op_num_threads": predictor.session.get_session_options().intra_op_num_threads,
            "python": platform.python_version(), "onnxruntime": predictor_module.ort.__version__,
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "load_average_1m_before": round(load_before, 2), "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")

    print(f"{'path':<10}{'p50 ms':>10}{'p99 ms':>10}{'target p99':>12}{'met':>6}")
    for name in ("model", "message", "ipc"):
        target = TARGETS_MS.get(f"{name}_p99_ms")
        print(f"{name:<10}{results[f'{name}_p50_ms']:>10.4f}{results[f'{name}_p99_ms']:>10.4f}"
              f"{(f'{target:.2f}' if target else '-'):>12}{('yes' if met.get(f'{name}_p99_ms') else 'NO') if target else '-':>6}")
    print(f"{args.iterations} timed calls each, load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}; "
          f"wrote {os.path.relpath(args.output, REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
