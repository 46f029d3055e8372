"""Whole-command wall times: what a developer waits for (set-up, synth, one-stack commands, the test suite).

    python -m bench.commands [--runs 3] [--only cdk_ls,make_synth] [--skip-slow]

Each command runs ``--warmup`` times (default 1) unmeasured (warm-up: caches filled, ``make`` stamps up to date, ``cdk.out`` staged),
then ``--runs`` times; the table gives the median and the spread of the wall time, start to exit, as a
shell user would see it (``/usr/bin/time`` reports the same figure), and the CPU seconds (user + system) of
every process it waited for: on a busy machine the wall time grows, the CPU time much less.

cdk_ls              ``cdk ls``: the CLI asks for no bundling at all
cdk_synth_one       ``cdk synth -e FraudDetector-Realtime``: only that stack is bundled (it has no Lambda)
cdk_synth_one_all   ``cdk synth FraudDetector-Realtime``: without ``-e`` the CLI asks for every stack's
                    assets; warm, the Lambda package is already staged in cdk.out and is not rebuilt
make_synth          ``make synth`` with everything installed and built (the second ``make synth``)
make_test           ``make test`` with everything installed and built: the whole suite
clone_to_templates  ``git clone`` of this commit into a scratch folder, then ``make synth`` there: a new
                    .venv, node_modules, model and Lambda package, from warm package caches (uv, npm,
                    pip); its own warm-up is the first clone (which fills those caches)

Writes bench/results/commands.json (median, min, max seconds per command, and the conditions).
Run it where ``make`` may install: the repository's own .venv is (re)built by ``make`` when it is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "commands.json"
CDK = "node_modules/.bin/cdk"
CDK_FLAGS = ["--no-notices", "--quiet"]
DEFAULT_RUNS = 3
TIMEOUT_S = 1800
#: Targets from the "any machine" issue: a fresh clone to templates and a warm test suite on 2 cores.
TARGETS_S = {"clone_to_templates": 60.0, "make_test": 90.0}
SLOW = ("make_test", "clone_to_templates")
ENV = {"CDK_DISABLE_CLI_TELEMETRY": "true", "CDK_DISABLE_VERSION_CHECK": "1",
       "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


def commands() -> dict[str, list[str]]:
    return {
        "cdk_ls": [CDK, "ls", *CDK_FLAGS],
        "cdk_synth_one": [CDK, "synth", "-e", "FraudDetector-Realtime", *CDK_FLAGS],
        "cdk_synth_one_all": [CDK, "synth", "FraudDetector-Realtime", *CDK_FLAGS],
        "make_synth": ["make", "--no-print-directory", "synth"],
        "make_test": ["make", "--no-print-directory", "test"],
        "clone_to_templates": [sys.executable, "-c", CLONE_AND_SYNTH, str(REPO_ROOT)],
    }


#: Runs in the timed process: clone HEAD into a scratch folder, make synth there, remove the folder.
CLONE_AND_SYNTH = r"""
import shutil, subprocess, sys, tempfile
scratch = tempfile.mkdtemp(prefix="bench-clone-")
try:
    subprocess.run(["git", "clone", "--quiet", sys.argv[1], scratch], check=True)
    subprocess.run(["make", "--no-print-directory", "synth"], cwd=scratch, check=True,
                   stdout=subprocess.DEVNULL)
finally:
    shutil.rmtree(scratch, ignore_errors=True)
"""


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, every process the command waited for) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    begin = time.perf_counter()
    result = subprocess.run(argv, cwd=REPO_ROOT, env={**os.environ, **ENV}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, timeout=TIMEOUT_S, check=False)
    elapsed = time.perf_counter() - begin
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (0: the caller warmed up)")
    parser.add_argument("--only", default="", help="comma-separated names (default: all)")
    parser.add_argument("--skip-slow", action="store_true", help=f"leave out {', '.join(SLOW)}")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    table = commands()
    chosen = [name for name in (args.only.split(",") if args.only else table) if name]
    unknown = sorted(set(chosen) - set(table))
    if unknown:
        parser.error(f"unknown command(s): {', '.join(unknown)}; known: {', '.join(table)}")
    if args.skip_slow:
        chosen = [name for name in chosen if name not in SLOW]
    if shutil.which("make") is None or not (REPO_ROOT / CDK).exists():
        print("error: run `make synth` once first (it installs the CDK CLI this benchmark times)", file=sys.stderr)
        return 2

    previous = json.loads(args.output.read_text()).get("commands", {}) if args.output.is_file() else {}
    results = dict(previous)
    print(f"{'command':<20}{'median s':>10}{'min s':>8}{'max s':>8}{'cpu s':>8}{'target':>9}")
    for name in chosen:
        for _ in range(args.warmup):
            timed(table[name])  # not counted
        runs = [timed(table[name]) for _ in range(args.runs)]
        samples, cpu = [wall for wall, _ in runs], [seconds for _, seconds in runs]
        shown = "git clone + make synth" if name == "clone_to_templates" else " ".join(table[name])
        results[name] = {"command": shown, "median_s": round(statistics.median(samples), 2), "min_s": round(min(samples), 2),
                         "max_s": round(max(samples), 2), "cpu_median_s": round(statistics.median(cpu), 2),
                         "runs": len(samples), "warmup_runs": args.warmup,
                         "load_average_1m": round(os.getloadavg()[0], 2)}
        target = TARGETS_S.get(name)
        print(f"{name:<20}{statistics.median(samples):>10.1f}{min(samples):>8.1f}{max(samples):>8.1f}"
              f"{statistics.median(cpu):>8.1f}"
              f"{(f'<= {target:g}' if target else ''):>9}", flush=True)
    document = {"commands": results, "targets_s": TARGETS_S, "python": platform.python_version(),
                "machine": platform.machine(), "cpus": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 2)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {os.path.relpath(args.output, REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
