"""Serverless cold start, warm latency through the handler, and the size of the real Lambda package.

    python -m bench.serverless [--cold-runs 7] [--warm-requests 5000]

cold_start_ms   median over fresh processes of: import the handler (numpy, onnxruntime, pydantic,
                Powertools, the model loaded from a local file) + the first prediction through
                ``lambda_handler`` with an API Gateway proxy event. Interpreter start-up is reported
                separately (``cold_start_process_ms`` is the whole process, start to answer).
warm_p50_ms / warm_p99_ms   single-row ``POST /predict`` proxy events through ``lambda_handler`` in one
                warm process (logging, EMF metrics and pydantic validation included).
package_zip_mb  the real bundled package for the configured architecture (cdk.json), zipped (MiB).
upload_peak_mb  peak Python-heap memory (tracemalloc: numpy buffers included, onnxruntime's own arena not)
                while one CSV upload of ``--upload-mb`` MiB (the function's default file limit, 20 MiB) is
                read, parsed, scored and written through ``handle_s3_event`` with an in-memory S3 stand-in;
                ``upload_seconds`` is its CPU time, ``upload_rss_growth_mb`` the process's peak RSS growth.
cold_start_with_bytecode_ms   the same cold start with the package's opt-in ``.pyc`` files
                (``compile_bytecode=True``): the package ships none by default, so that its bytes do not
                depend on the build machine; the difference is what that costs at each cold start.

Where this machine can run the package (a CPython 3.12 and the same architecture), the measurements
run the bundle itself, in an isolated interpreter (``-I -S -B``: /var/task is read-only, nothing is
cached between cold starts) with the bytecode it ships, if any; otherwise the
source folder under this virtualenv's Python, as the results record. Writes bench/results/serverless.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench._stats import p50_p99

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = REPO_ROOT / "lambda_src"
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "serverless.json"
DEFAULT_COLD_RUNS = 7
DEFAULT_WARM_REQUESTS = 5000
WARMUP_REQUESTS = 200
RUN_TIMEOUT_S = 300
TARGETS = {"cold_start_ms": 300.0, "warm_p99_ms": 1.0, "package_zip_mb": 40.0, "upload_peak_mb": 160.0}
DEFAULT_UPLOAD_MB = 20.0

#: Runs in a fresh process. argv: package dir, upload size in MiB. Prints one RESULT line.
UPLOAD_PROBE = r"""
import io, json, os, resource, sys, time, tracemalloc
package, megabytes = sys.argv[1], float(sys.argv[2])
sys.path.insert(0, package)
from serverless_inference.model import load_model
from serverless_inference.uploads import UploadSettings, handle_s3_event

model = load_model(os.environ)
row = b"7,1,0,4,1,0,1,9,1,0,0,0\n"  # 24 bytes: the most rows a 20 MiB file can hold
data = row * int(megabytes * 2**20 // len(row))

class Body:
    def __init__(self, data): self.data = data
    def read(self, limit=-1): return self.data if limit < 0 else self.data[:limit]

class MemoryS3:
    # The calls the upload path makes, answered from memory; written bytes are counted, not kept.
    def __init__(self, data): self.data, self.written, self.parts = data, 0, 0
    def get_object(self, **request): return {"Body": Body(self.data)}
    def put_object(self, Body, **request): self.written += len(Body); return {}
    def copy_object(self, **request): return {}
    def create_multipart_upload(self, **request): return {"UploadId": "u-1"}
    def upload_part(self, Body, PartNumber, **request):
        self.written += len(Body); self.parts += 1; return {"ETag": '"%d"' % PartNumber}
    def complete_multipart_upload(self, **request): return {}
    def abort_multipart_upload(self, **request): return {}

s3 = MemoryS3(data)
event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-05-09T10:11:12.345Z",
                      "s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/big.csv", "size": len(data),
                                                                   "versionId": "v1", "sequencer": "1"}}}]}
settings = UploadSettings(max_file_bytes=int(megabytes * 2**20) + 1)
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu = time.process_time()
(outcome,) = handle_s3_event(event, model=model, settings=settings, s3=s3)
cpu = time.process_time() - cpu
rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
assert outcome.status == "predicted", outcome
written, parts = s3.written, s3.parts
# A second run under tracemalloc for the Python-heap peak (it slows the run, so CPU time is the first run's).
tracemalloc.start()
handle_s3_event(event, model=model, settings=settings, s3=s3)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print("RESULT " + json.dumps({"rows": outcome.rows, "input_mb": len(data) / 2**20, "output_mb": written / 2**20,
                              "parts": parts, "peak_mb": peak / 2**20, "cpu_s": cpu, "rss_growth_mb": rss_growth / 1024}))
"""

#: Runs in the measured process. argv: package dir, warm request count (0 = cold start only).
PROBE = r"""
import time
started = time.perf_counter()
import io, json, os, sys
package, warm_requests = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, package)
quiet = open(os.devnull, "w")
real_stdout, sys.stdout = sys.stdout, quiet  # EMF metrics and logs go to stdout, as in Lambda
import handler
handler.logger.registered_handler.setStream(quiet)

class Context:
    function_name, function_version, memory_limit_in_mb = "bench", "1", 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench:live"
    aws_request_id = "bench"
    def get_remaining_time_in_millis(self): return 30000

def event(row):
    return {"resource": "/predict", "path": "/predict", "httpMethod": "POST", "isBase64Encoded": False,
            "headers": {"Content-Type": "application/json"},
            "requestContext": {"requestId": "bench-request", "stage": "prod"},
            "body": json.dumps({"features": row})}

rows = json.load(open(os.path.join(os.environ["MODEL_LOCAL_PATH"], "samples", "request.json")))["instances"]
response = handler.lambda_handler(event(rows[0]), Context())
cold_ms = (time.perf_counter() - started) * 1000
assert response["statusCode"] == 200, response
latencies = []
for index in range(warm_requests):
    request = event(rows[index % len(rows)])
    begin = time.perf_counter()
    response = handler.lambda_handler(request, Context())
    latencies.append((time.perf_counter() - begin) * 1000)
    assert response["statusCode"] == 200, response
sys.stdout = real_stdout
print("RESULT " + json.dumps({"cold_ms": cold_ms, "latencies_ms": latencies,
                              "python": "%d.%d.%d" % sys.version_info[:3]}))
"""


def configured_architecture() -> str:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context["deploy"].get("serverless", {}).get("architecture", "arm64")


def build(architecture: str, into: Path, *, compile_bytecode: bool = False) -> Path:
    from ml_constructs.common.lambda_bundling import LambdaPackageSpec, build_package

    target = into / (architecture + ("-bytecode" if compile_bytecode else ""))
    target.mkdir(parents=True)
    build_package(LambdaPackageSpec(source_dir=LAMBDA_SRC, architecture=architecture,
                                    compile_bytecode=compile_bytecode), target)
    return target


def zipped_mb(folder: Path) -> float:
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())
        return handle.tell() / 2**20


def run_probe(command: list[str], package: Path, warm_requests: int | float,
              probe: str = PROBE) -> tuple[dict, float]:
    env = {"PATH": os.environ.get("PATH", ""), "MODEL_LOCAL_PATH": str(ARTIFACTS_DIR),
           "POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_METRICS_NAMESPACE": "Bench", "HOME": str(REPO_ROOT)}
    begin = time.perf_counter()
    result = subprocess.run([*command, "-c", probe, str(package), str(warm_requests)], capture_output=True,
                            text=True, env=env, timeout=RUN_TIMEOUT_S)
    process_ms = (time.perf_counter() - begin) * 1000
    if result.returncode != 0:
        raise RuntimeError(f"probe failed ({result.returncode}):\n{result.stderr[-2000:]}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), process_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-runs", type=int, default=DEFAULT_COLD_RUNS)
    parser.add_argument("--warm-requests", type=int, default=DEFAULT_WARM_REQUESTS)
    parser.add_argument("--upload-mb", type=float, default=DEFAULT_UPLOAD_MB,
                        help="size of the CSV upload whose peak memory is measured (MiB)")
    parser.add_argument("--upload-only", action="store_true", help="measure the upload only (no package build)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    if args.upload_only:
        report, _ = run_probe([sys.executable, "-I"], LAMBDA_SRC, args.upload_mb, UPLOAD_PROBE)
        print(json.dumps(report, indent=2))
        return 0
    sys.path.insert(0, str(REPO_ROOT))
    from ml_constructs.common.lambda_bundling import find_interpreter, host_architecture

    architecture = configured_architecture()
    with tempfile.TemporaryDirectory(prefix="bench-serverless-") as scratch:
        packages = {architecture: build(architecture, Path(scratch))}
        host = host_architecture()
        interpreter = find_interpreter("3.12")
        if host and interpreter:
            if host not in packages:
                packages[host] = build(host, Path(scratch))
            command, package, runtime = [interpreter, "-I", "-S", "-B"], packages[host], f"bundle ({host}) on CPython 3.12"
            with_bytecode = build(host, Path(scratch), compile_bytecode=True)
        else:
            command, package = [sys.executable, "-I"], LAMBDA_SRC
            runtime = f"lambda_src on this virtualenv's Python {platform.python_version()} (no CPython 3.12 here)"
            with_bytecode = None
        sizes = {name: zipped_mb(folder) for name, folder in packages.items()}

        cold, process = [], []
        for _ in range(args.cold_runs):
            report, process_ms = run_probe(command, package, 0)
            cold.append(report["cold_ms"])
            process.append(process_ms)
        cold_bytecode = [run_probe(command, with_bytecode, 0)[0]["cold_ms"] for _ in range(args.cold_runs)
                         ] if with_bytecode else []
        warm_report, _ = run_probe(command, package, WARMUP_REQUESTS + args.warm_requests)
        warm = warm_report["latencies_ms"][WARMUP_REQUESTS:]
        warm_p50, warm_p99 = p50_p99(warm)
        upload, _ = run_probe(command, package, args.upload_mb, UPLOAD_PROBE)

    results = {
        "cold_start_ms": round(statistics.median(cold), 1),
        "warm_p50_ms": round(warm_p50, 4),
        "warm_p99_ms": round(warm_p99, 4),
        "package_zip_mb": round(sizes[architecture], 2),
        "upload_peak_mb": round(upload["peak_mb"], 1),
    }
    document = {
        **results,
        "cold_start_min_ms": round(min(cold), 1), "cold_start_max_ms": round(max(cold), 1),
        "cold_start_process_ms": round(statistics.median(process), 1),
        "cold_start_with_bytecode_ms": round(statistics.median(cold_bytecode), 1) if cold_bytecode else None,
        "bytecode_shipped": False,
        "cold_runs": args.cold_runs, "warm_requests": len(warm),
        "package_architecture": architecture,
        "upload_mb": round(upload["input_mb"], 1), "upload_rows": upload["rows"],
        "upload_output_mb": round(upload["output_mb"], 1), "upload_parts": upload["parts"],
        "upload_seconds": round(upload["cpu_s"], 2), "upload_rss_growth_mb": round(upload["rss_growth_mb"], 1),
        **{f"package_zip_mb_{name}": round(size, 2) for name, size in sizes.items() if name != architecture},
        "runtime": runtime, "python": warm_report["python"], "machine": platform.machine(),
        "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2), "targets": TARGETS,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")

    print(f"runtime: {runtime}")
    print(f"{'measure':<18}{'value':>12}{'target':>10}")
    for key, value in results.items():
        unit = "MiB" if key.endswith("_mb") else "ms"
        target = TARGETS.get(key)
        print(f"{key:<18}{value:>9.3f} {unit:<3}{(f'<= {target:g}' if target else ''):>9}")
    print(f"{'cold min/max':<18}{min(cold):>9.1f} ms / {max(cold):.1f} ms   (process incl. start-up: "
          f"{statistics.median(process):.1f} ms)")
    if cold_bytecode:
        print(f"{'cold with .pyc':<18}{statistics.median(cold_bytecode):>9.1f} ms   (opt-in compile_bytecode=True; "
              f"the package ships none by default)")
    print(f"wrote {os.path.relpath(args.output, REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
