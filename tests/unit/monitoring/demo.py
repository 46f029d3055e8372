"""The demo model's drift baseline, built the way packaging will build it (baseline.csv + model.onnx scores)."""
from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np

from training.drift_baseline import build_drift_baseline

REPO_ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
RUNTIME_DIR = REPO_ROOT / "ml_constructs" / "monitoring" / "drift_job" / "runtime"


def feature_names() -> list[str]:
    return list(json.loads((ARTIFACTS_DIR / "metadata.json").read_text())["feature_names"])


@lru_cache(maxsize=1)
def reference_rows() -> np.ndarray:
    return np.loadtxt(ARTIFACTS_DIR / "baseline.csv", delimiter=",", skiprows=1, ndmin=2)


def model_scores(rows: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(ARTIFACTS_DIR / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"features": rows.astype(np.float32)})[0][:, 1].astype(np.float64)


@lru_cache(maxsize=1)
def _baseline_json() -> str:
    rows = reference_rows()
    return json.dumps(build_drift_baseline(rows, feature_names(), model_scores(rows)))


def demo_baseline() -> dict:
    return json.loads(_baseline_json())


def write_model_dir(target: Path) -> Path:
    """A copy of the demo model's metadata.json and baseline.csv plus drift_baseline.json (and model.onnx)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("metadata.json", "baseline.csv", "model.onnx"):
        shutil.copyfile(ARTIFACTS_DIR / name, target / name)
    (target / "drift_baseline.json").write_text(_baseline_json())
    return target
