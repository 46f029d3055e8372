"""Lay out a model directory as SageMaker does when it unpacks model.tar.gz into /opt/ml/model."""
import shutil
import tarfile
from pathlib import Path

MODEL_FILES = ("model.joblib", "metadata.json")
CODE_DIR = "code"
ENTRY_POINT = "inference.py"


def stage_from_artifacts(*, artifacts_dir: Path, code_source: Path, destination: Path) -> Path:
    """Copy the model files and the inference code into ``destination`` (model.tar.gz's layout)."""
    missing = [name for name in MODEL_FILES if not (artifacts_dir / name).is_file()]
    if not (code_source / ENTRY_POINT).is_file():
        missing.append(str(code_source / ENTRY_POINT))
    if missing:
        raise FileNotFoundError(f"cannot stage a model package from {artifacts_dir}: missing {', '.join(missing)}")
    destination.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        shutil.copy2(artifacts_dir / name, destination / name)
    shutil.copytree(code_source, destination / CODE_DIR,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    return destination


def stage_from_tar(*, model_tar: Path, destination: Path) -> Path:
    """Unpack ``model_tar`` into ``destination``, refusing members that would escape it."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(model_tar, "r:*") as archive:
        # The "data" filter rejects absolute paths, "..", links out of the tree and device files.
        archive.extractall(destination, filter="data")
    if not (destination / CODE_DIR / ENTRY_POINT).is_file():
        raise FileNotFoundError(f"{model_tar} has no {CODE_DIR}/{ENTRY_POINT}")
    return destination
