"""``make bench``: run every benchmark in this folder (each prints a table and writes bench/results/<name>.json).

Run one with ``.venv/bin/python -m bench.<name>``; pass names to run a subset: ``python -m bench realtime edge``.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    available = sorted(info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)])
                       if not info.name.startswith("_"))
    chosen = argv or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"\n== bench.{name} ==", flush=True)
        started = time.perf_counter()
        # Each benchmark gets an empty argv: the names given to `python -m bench` are not its options.
        module.main([]) if inspect.signature(module.main).parameters else module.main()
        print(f"(bench.{name} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
