"""Real-time latency: in-process transform_fn, HTTP through the local server, and a warm synth.

    python -m bench.realtime [--model-dir artifacts/fraud-detector] [--requests 3000] [--duration 20]

Writes bench/results/realtime.json with inproc_p50_ms, inproc_p99_ms, http_c1_p50_ms, http_c1_p99_ms,
http_c8_p50_ms, http_c8_p99_ms and synth_s (null when the Makefile has no synth target or it fails),
plus the conditions the figures were measured under. Everything runs on 127.0.0.1 and is bounded in
request count and wall time.
"""
import argparse
import asyncio
import http.client
import importlib.util
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._stats import p50_p99

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
INFERENCE_PATH = REPO_ROOT / "inference" / "inference.py"
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "realtime.json"
DEFAULT_INPROC_ITERATIONS = 5000
DEFAULT_REQUESTS = 10000
DEFAULT_DURATION_S = 20.0
WARMUP_REQUESTS = 200
SERVER_START_TIMEOUT_S = 60.0
SYNTH_TIMEOUT_S = 600
CONCURRENCY_LEVELS = (1, 8)
# The load generator runs on the same CPUs as the server. One worker per CPU (the container's
# default) plus the client oversubscribes the machine, and the scheduler's time slices (~4 ms)
# then dominate the tail; leave the client a CPU of its own, as a separate client host would have.
DEFAULT_SERVER_WORKERS = max(1, (os.cpu_count() or 2) - 1)


@dataclass
class LoadResult:
    """Latencies (seconds) of the successful requests of one load level, and what went wrong."""
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def percentiles_ms(samples_s: list[float]) -> tuple[float, float]:
    """p50 and p99 in ms of latencies measured in seconds."""
    return p50_p99(sample * 1000.0 for sample in samples_s)


def load_inference_module():
    spec = importlib.util.spec_from_file_location("inference_bench", INFERENCE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_row(model_dir: Path) -> str:
    return (model_dir / "samples" / "request.csv").read_text().splitlines()[0].strip()


def bench_inproc(model_dir: Path, row: str, iterations: int) -> list[float]:
    """model_fn once, then transform_fn on one CSV row, timed per call."""
    module = load_inference_module()
    model = module.model_fn(str(model_dir))
    for _ in range(WARMUP_REQUESTS):
        module.transform_fn(model, row, "text/csv", "text/csv")
    timings = []
    for _ in range(iterations):
        started = time.perf_counter()
        response = module.transform_fn(model, row, "text/csv", "text/csv")
        timings.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"transform_fn answered {response.status_code}: {response.get_data()!r}")
    return timings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_dir: Path, port: int, workers: int) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {process.stderr.read()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                connection.close()
                return process
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise RuntimeError(f"the server did not answer /ping within {SERVER_START_TIMEOUT_S} s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _run_load(port: int, body: bytes, concurrency: int, total: int, duration_s: float, warmup: int) -> LoadResult:
    request = (b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
               b"Accept: text/csv\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    result = LoadResult()
    # asyncio sets TCP_NODELAY on its sockets, as urllib3 (hence boto3) does.
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]
    for reader, writer in connections:
        for _ in range(max(1, warmup // concurrency)):
            await _exchange(reader, writer, request)
    issued = 0
    began = time.perf_counter()
    deadline = began + duration_s

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal issued
        while issued < total and time.perf_counter() < deadline:
            issued += 1
            started = time.perf_counter()
            status, payload = await _exchange(reader, writer, request)
            if status == 200:
                result.latencies.append(time.perf_counter() - started)
            else:
                result.failures.append(f"{status}: {payload[:200]!r}")

    await asyncio.gather(*(client(reader, writer) for reader, writer in connections))
    result.wall_s = time.perf_counter() - began
    for _, writer in connections:
        writer.close()
    return result


def run_load(port: int, body: bytes, concurrency: int, total: int, duration_s: float, warmup: int) -> LoadResult:
    """``concurrency`` keep-alive connections, driven by one asyncio loop, send one-row requests
    back to back until ``total`` requests or ``duration_s`` (a thread per client costs the 2 CPUs
    more than the server does, and the GIL would add its switching delays to every latency)."""
    return asyncio.run(_run_load(port, body, concurrency, total, duration_s, warmup))


def has_make_target(target: str) -> bool:
    makefile = REPO_ROOT / "Makefile"
    if not makefile.is_file():
        return False
    return re.search(rf"^{re.escape(target)}\s*:", makefile.read_text(), flags=re.MULTILINE) is not None


def bench_synth() -> tuple[float | None, str]:
    """Seconds of a warm ``make synth`` (the second of two runs), or None and why."""
    if not has_make_target("synth"):
        return None, "no Makefile with a synth target"
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        try:
            completed = subprocess.run(["make", "synth"], cwd=REPO_ROOT, capture_output=True, text=True,
                                       timeout=SYNTH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, f"make synth took over {SYNTH_TIMEOUT_S} s"
        if completed.returncode != 0:
            return None, f"make synth failed ({completed.returncode}): {(completed.stderr or completed.stdout)[-500:]}"
        timings.append(time.perf_counter() - started)
    return timings[-1], f"second of two runs (first {timings[0]:.1f} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realtime", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--inproc-iterations", type=int, default=DEFAULT_INPROC_ITERATIONS)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="per concurrency level")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, help="seconds per concurrency level")
    parser.add_argument("--server-workers", type=int, default=DEFAULT_SERVER_WORKERS,
                        help="server worker processes (default: one CPU fewer than the machine, min 1)")
    parser.add_argument("--skip-synth", action="store_true", help="record synth_s as null")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)

    row = sample_row(args.model_dir)
    results: dict[str, object] = {}
    # Other work on the machine shows in every tail latency: record how busy it was.
    notes: dict[str, object] = {"load_average_1m_at_start": round(os.getloadavg()[0], 2)}

    inproc = bench_inproc(args.model_dir, row, args.inproc_iterations)
    results["inproc_p50_ms"], results["inproc_p99_ms"] = percentiles_ms(inproc)
    notes["inproc_iterations"] = len(inproc)

    port = free_port()
    server = start_server(args.model_dir, port, args.server_workers)
    try:
        for concurrency in CONCURRENCY_LEVELS:
            load = run_load(port, row.encode() + b"\n", concurrency, args.requests, args.duration, WARMUP_REQUESTS)
            if load.failures:
                raise RuntimeError(f"{len(load.failures)} failed requests at concurrency {concurrency}: {load.failures[:3]}")
            results[f"http_c{concurrency}_p50_ms"], results[f"http_c{concurrency}_p99_ms"] = percentiles_ms(load.latencies)
            notes[f"http_c{concurrency}_requests"] = len(load.latencies)
            notes[f"http_c{concurrency}_rps"] = round(len(load.latencies) / load.wall_s, 1)
    finally:
        stop_server(server)

    notes["load_average_1m_after_http"] = round(os.getloadavg()[0], 2)
    if args.skip_synth:
        results["synth_s"], notes["synth"] = None, "skipped (--skip-synth)"
    else:
        results["synth_s"], notes["synth"] = bench_synth()

    document = {**{key: (round(value, 4) if isinstance(value, float) else value) for key, value in results.items()},
                "conditions": {**notes, "cpus": os.cpu_count(), "python": platform.python_version(),
                               "server": "python -m serve (gunicorn + uvicorn workers, OMP_NUM_THREADS=1)",
                               "server_workers": args.server_workers,
                               "client": "asyncio keep-alive connections in one process on the same machine",
                               "request": "one CSV row, Accept text/csv",
                               "model_dir": os.path.relpath(args.model_dir, REPO_ROOT)}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")

    print(f"{'measure':<16}{'p50 ms':>10}{'p99 ms':>10}{'count':>8}{'req/s':>10}")
    print(f"{'in-process':<16}{results['inproc_p50_ms']:>10.3f}{results['inproc_p99_ms']:>10.3f}{len(inproc):>8}{'':>10}")
    for concurrency in CONCURRENCY_LEVELS:
        print(f"{f'http c={concurrency}':<16}{results[f'http_c{concurrency}_p50_ms']:>10.3f}"
              f"{results[f'http_c{concurrency}_p99_ms']:>10.3f}{notes[f'http_c{concurrency}_requests']:>8}"
              f"{notes[f'http_c{concurrency}_rps']:>10}")
    synth = results["synth_s"]
    print(f"{'make synth':<16}{(f'{synth:.2f} s' if synth is not None else 'null'):>10}  ({notes['synth']})")
    print(f"wrote {os.path.relpath(args.output, REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
