"""A second, different model packaged by ``python -m training.package``: a seeded random forest on 5
differently named features with a 0.3 decision threshold, so every runtime is shown to take the model's
width, names, version and threshold from its metadata.json instead of the demo's."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

REPO_ROOT = Path(__file__).resolve().parents[3]
FEATURES = ("temperature_c", "vibration_rms", "pressure_kpa", "spindle_rpm", "humidity_pct")
LABEL = "failed"
NAME = "pump-failure"
THRESHOLD = 0.3
ROWS = 600
SEED = 11


def training_data(seed: int = SEED, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = np.column_stack([
        np.round(rng.normal(60.0, 8.0, rows), 2),
        np.round(rng.gamma(2.0, 0.4, rows), 4),
        np.round(rng.normal(300.0, 25.0, rows), 1),
        np.round(rng.uniform(800.0, 3600.0, rows)),
        np.round(rng.uniform(20.0, 90.0, rows), 1),
    ])
    logit = 0.15 * (features[:, 0] - 60.0) + 1.5 * (features[:, 1] - 0.8) - 0.6 + rng.normal(0.0, 0.5, rows)
    return features, (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)


def write_csv(path: Path, features: np.ndarray, labels: np.ndarray | None, names=FEATURES, label=LABEL) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, label] if labels is not None else list(names))
        for index, row in enumerate(features):
            values = [repr(float(value)) for value in row]
            writer.writerow([*values, int(labels[index])] if labels is not None else values)
    return path


def run_package(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    """``python -m training.package ...`` as a user runs it (caller's PYTHONHASHSEED unset)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONHASHSEED"}
    return subprocess.run([sys.executable, "-m", "training.package", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="session")
def second_model_source(tmp_path_factory) -> tuple[Path, Path]:
    """(model.joblib, data.csv) as a user would have them: a forest saved with joblib, a labeled sample."""
    folder = tmp_path_factory.mktemp("second-model-source")
    features, labels = training_data()
    forest = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=SEED).fit(features, labels)
    joblib.dump(forest, folder / "forest.joblib")
    return folder / "forest.joblib", write_csv(folder / "sample.csv", features, labels)


@pytest.fixture(scope="session")
def second_model_dir(second_model_source, tmp_path_factory) -> Path:
    model, data = second_model_source
    out = tmp_path_factory.mktemp("second-model") / NAME
    completed = run_package("--model", str(model), "--data", str(data), "--label", LABEL, "--name", NAME,
                            "--out", str(out), "--threshold", str(THRESHOLD))
    assert completed.returncode == 0, completed.stderr
    return out


@pytest.fixture(scope="session")
def second_metadata(second_model_dir) -> dict:
    return json.loads((second_model_dir / "metadata.json").read_text())


@pytest.fixture(scope="session")
def second_estimator(second_model_dir):
    return joblib.load(second_model_dir / "model.joblib")


@pytest.fixture(scope="session")
def second_rows() -> np.ndarray:
    """Rows the model never saw (another seed), 5 wide."""
    return training_data(seed=SEED + 1, rows=40)[0]
