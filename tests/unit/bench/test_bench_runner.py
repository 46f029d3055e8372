"""`make bench` runs `python -m bench`: it must find every benchmark and refuse unknown names."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_unknown_benchmark_is_refused_with_the_list_of_known_ones():
    # GIVEN a name that is not a benchmark  WHEN the runner is asked for it
    result = subprocess.run([sys.executable, "-m", "bench", "no-such-bench"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    # THEN it exits 2 and lists what exists (every pattern's benchmark)
    assert result.returncode == 2
    assert "unknown benchmark(s): no-such-bench" in result.stderr
    for name in ("batch", "edge", "realtime", "serverless"):
        assert name in result.stderr.split("available:")[1]
