"""Fixtures for the edge component: its modules loaded by file path, the real ONNX model and samples."""
from __future__ import annotations

import csv
import importlib.util
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PROGRAM_DIR = REPO_ROOT / "edge_component"
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
MODEL_PATH = ARTIFACTS_DIR / "model.onnx"
PARITY_ROWS = 2000


def load_program_module(name: str):
    """edge_component/<name>.py imported by path under a unique name (runtime code is not a package)."""
    spec = importlib.util.spec_from_file_location(f"edge_{name}_{uuid.uuid4().hex}", PROGRAM_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def predictor_module():
    return load_program_module("predictor")


@pytest.fixture(scope="session")
def ipc_module():
    return load_program_module("ipc_bridge")


@pytest.fixture(scope="session")
def standalone_module():
    return load_program_module("standalone")


@pytest.fixture(scope="session")
def predictor(predictor_module):
    return predictor_module.FraudPredictor(MODEL_PATH, model_version="v1-test")


@pytest.fixture(scope="session")
def feature_rows() -> np.ndarray:
    """Rows of the training baseline (12 features, no label) for parity checks."""
    with (ARTIFACTS_DIR / "baseline.csv").open() as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = [next(reader) for _ in range(PARITY_ROWS)]
    return np.asarray(rows, dtype=np.float64)


@pytest.fixture(scope="session")
def sklearn_model():
    import joblib

    return joblib.load(ARTIFACTS_DIR / "model.joblib")
