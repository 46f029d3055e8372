"""``python -m training.build`` refuses impossible arguments with argparse's one-line message and exit 2."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "argument --seed: must be 0 or more, got -1"),
    (["--seed", "1.5"], "argument --seed: not a whole number: '1.5'"),
    (["--out", "README.md"], "argument --out: README.md exists and is not a directory"),
])
def test_bad_arguments_are_refused_before_building(args, message):
    # WHEN the build is run with a negative or fractional seed, or a file as its output directory
    result = subprocess.run([sys.executable, "-m", "training.build", *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    # THEN argparse explains the mistake on stderr and exits 2, without a traceback or any output
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
