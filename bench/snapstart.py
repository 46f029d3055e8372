"""What Lambda SnapStart would skip: the function's init, split into its phases, in fresh processes.

    python -m bench.snapstart [--runs 7]

With SnapStart (``deploy.serverless.warm=snapstart``) a new execution environment resumes from a snapshot
taken after init, so these phases are not paid on a cold start; a restore is paid instead (its time is set
by Lambda and cannot be measured on this machine). Phases, each a median over fresh interpreter processes
running ``lambda_src`` under this virtualenv's Python with the model read from local files:

interpreter_ms   interpreter start-up until the probe's first line runs
imports_ms       numpy, onnxruntime, pydantic and Powertools imported
init_ms          ``import handler``: the function's own init, including reading and loading the ONNX model
first_call_ms    the first ``POST /predict`` through ``lambda_handler`` after init (not skipped by SnapStart)

Writes bench/results/snapstart.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = REPO_ROOT / "lambda_src"
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "snapstart.json"
DEFAULT_RUNS = 7

PROBE = r"""
import time
t0 = time.perf_counter()
import io, json, os, sys
sys.path.insert(0, sys.argv[1])
real_stdout, sys.stdout = sys.stdout, open(os.devnull, "w")
import numpy, onnxruntime, pydantic, aws_lambda_powertools
t1 = time.perf_counter()
import handler
t2 = time.perf_counter()
handler.logger.registered_handler.setStream(sys.stdout)

class Context:
    function_name, function_version, memory_limit_in_mb = "bench", "1", 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench:live"
    aws_request_id = "bench"
    def get_remaining_time_in_millis(self): return 30000

rows = json.load(open(os.path.join(os.environ["MODEL_LOCAL_PATH"], "samples", "request.json")))["instances"]
event = {"resource": "/predict", "path": "/predict", "httpMethod": "POST", "isBase64Encoded": False,
         "headers": {"Content-Type": "application/json"}, "requestContext": {"requestId": "b", "stage": "prod"},
         "body": json.dumps({"features": rows[0]})}
response = handler.lambda_handler(event, Context())
t3 = time.perf_counter()
assert response["statusCode"] == 200, response
sys.stdout = real_stdout
print("RESULT " + json.dumps({"started": t0, "imports_ms": (t1 - t0) * 1000, "init_ms": (t2 - t1) * 1000,
                              "first_call_ms": (t3 - t2) * 1000}))
"""


def run_once() -> dict[str, float]:
    environment = {**os.environ, "MODEL_LOCAL_PATH": str(ARTIFACTS_DIR), "POWERTOOLS_SERVICE_NAME": "bench",
                   "POWERTOOLS_METRICS_NAMESPACE": "bench", "OMP_NUM_THREADS": "1"}
    launched = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PROBE, str(LAMBDA_SRC)], capture_output=True, text=True,
                            env=environment, timeout=300, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    phases = json.loads(line[len("RESULT "):])
    # perf_counter is system-wide monotonic on Linux, so the child's start can be compared with the launch.
    phases["interpreter_ms"] = (phases.pop("started") - launched) * 1000
    return phases


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.snapstart")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    args = parser.parse_args(argv)
    runs = [run_once() for _ in range(args.runs)]
    phases = ("interpreter_ms", "imports_ms", "init_ms", "first_call_ms")
    medians = {phase: round(statistics.median(run[phase] for run in runs), 1) for phase in phases}
    skipped = round(medians["imports_ms"] + medians["init_ms"], 1)
    results = {**medians, "skipped_by_snapshot_ms": skipped, "runs": args.runs,
               "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
               "load_average_1m": round(os.getloadavg()[0], 2)}
    print("| phase | median ms | skipped with SnapStart |\n|---|---|---|")
    for phase in phases:
        skipped_phase = "yes" if phase in ("imports_ms", "init_ms") else "no"
        print(f"| {phase} | {medians[phase]} | {skipped_phase} |")
    print(f"\ninit a snapshot would skip: {skipped} ms (median of {args.runs} fresh processes)")
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
