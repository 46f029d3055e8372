"""Lay out a model directory as SageMaker does when it unpacks model.tar.gz into /opt/ml/model."""
import shutil
import tarfile
from pathlib import Path

MODEL_FILES = ("model.joblib", "metadata.json")
CODE_DIR = "code"
ENTRY_POINT = "inference.py"


class StagingError(Exception):
    """The given artifacts or tar cannot make a model directory: a mistake in the input, not a crash."""


def stage_from_artifacts(*, artifacts_dir: Path, code_source: Path, destination: Path) -> Path:
    """Copy the model files and the inference code into ``destination`` (model.tar.gz's layout)."""
    if not artifacts_dir.is_dir():
        raise StagingError(f"model directory {artifacts_dir} does not exist (build it with `make model`)")
    missing = [name for name in MODEL_FILES if not (artifacts_dir / name).is_file()]
    if not (code_source / ENTRY_POINT).is_file():
        missing.append(str(code_source / ENTRY_POINT))
    if missing:
        raise StagingError(f"cannot stage a model package from {artifacts_dir}: missing {', '.join(missing)}")
    destination.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        shutil.copy2(artifacts_dir / name, destination / name)
    shutil.copytree(code_source, destination / CODE_DIR,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    return destination


def stage_from_tar(*, model_tar: Path, destination: Path) -> Path:
    """Unpack ``model_tar`` into ``destination``, refusing members that would escape it."""
    if not model_tar.is_file():
        raise StagingError(f"model tar {model_tar} does not exist or is not a file")
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(model_tar, "r:*") as archive:
            # The "data" filter rejects absolute paths, "..", links out of the tree and device files.
            archive.extractall(destination, filter="data")
    except tarfile.TarError as exc:
        raise StagingError(f"cannot unpack {model_tar}: {exc}") from exc
    if not (destination / CODE_DIR / ENTRY_POINT).is_file():
        raise StagingError(f"{model_tar} has no {CODE_DIR}/{ENTRY_POINT}")
    return destination
