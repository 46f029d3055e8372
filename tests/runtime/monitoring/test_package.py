"""What ships in the drift Lambda: numpy and the standard library (boto3 from the runtime), nothing heavier."""
from __future__ import annotations

import ast
import sys

from tests.unit.monitoring.demo import RUNTIME_DIR

ALLOWED = {"numpy", "boto3"} | {f"drift_{name}" for name in ("stats", "readers", "quality", "emf")}


def test_runtime_imports_only_numpy_boto3_and_the_standard_library():
    imported = set()
    for path in RUNTIME_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported - ALLOWED - set(sys.stdlib_module_names) == set()


def test_requirements_pin_numpy_only():
    pins = [line.strip() for line in (RUNTIME_DIR / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert len(pins) == 1 and pins[0].startswith("numpy==")
