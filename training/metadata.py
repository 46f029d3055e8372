"""metadata.json: the contract between training and deployment.

Constructs read the model's name, content-hash version, feature order and the
library versions from here; nothing downstream guesses them.
"""

import hashlib
import json
import platform
from pathlib import Path

import joblib
import numpy
import onnx
import scipy
import skl2onnx
import sklearn

from training import contract

METADATA_FILE = contract.METADATA_FILE
FRAMEWORK = "sklearn"
# The SageMaker scikit-learn container this model is built for, and the library
# versions inside it: a pickle from another scikit-learn, or from numpy 2.x,
# does not load there.
FRAMEWORK_VERSION = "1.2-1"
SERVING_LIBRARY_VERSIONS = {"scikit_learn": "1.2.1", "numpy": "1.24.1"}
# SageMaker scikit-learn framework versions and the scikit-learn release inside each container.
# This project deploys FRAMEWORK_VERSION only; the others are named so a refusal can say where a
# model saved with them would run.
SAGEMAKER_SKLEARN_VERSIONS = {"0.20.0": "0.20.0", "0.23-1": "0.23.2", "1.0-1": "1.0.2", "1.2-1": "1.2.1",
                              "1.4-2": "1.4.2"}
HASH_PREFIX_LENGTH = 12
METRIC_DIGITS = 6


def library_versions() -> dict[str, str]:
    """Versions of everything that shaped the artifacts' bytes."""
    return {
        "python": platform.python_version(),
        "scikit_learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
    }


def check_serving_compatibility(versions: dict[str, str]) -> None:
    """Refuse to build a model the serving container could not load (every mismatch at once)."""
    errors = [
        f"{name} is {versions[name]}, the {FRAMEWORK_VERSION} container needs {wanted}"
        for name, wanted in SERVING_LIBRARY_VERSIONS.items()
        if versions[name] != wanted
    ]
    if errors:
        raise RuntimeError(
            "cannot build a servable model: " + "; ".join(errors)
            + " (install requirements-dev.txt)"
        )


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_version(version_label: str, joblib_path: Path) -> str:
    """``<label>-<first 12 hex of sha256(model.joblib)>``: a changed model gets a new version."""
    return f"{version_label}-{sha256_file(joblib_path)[:HASH_PREFIX_LENGTH]}"


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in the folder (POSIX relative paths), metadata.json aside."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() != METADATA_FILE
    }


def write_metadata(folder: Path, metadata: dict) -> Path:
    """Write metadata.json with sorted keys, two-space indent and a trailing newline."""
    path = folder / METADATA_FILE
    path.write_text(json.dumps(metadata, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    return path


def round_metric(value: float) -> float:
    """Metrics rounded so the JSON text is short and stable."""
    return round(float(value), METRIC_DIGITS)
