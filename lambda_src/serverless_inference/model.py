"""Loads the ONNX model and its ``metadata.json`` (from S3 at cold start, or a local path) and scores rows.

The deployed model is one zip object in S3 (``model.onnx`` + ``metadata.json``, uploaded by CDK as an
asset) named by ``MODEL_S3_BUCKET``/``MODEL_S3_KEY``; ``MODEL_VERSION`` is the version the stack was
built with, checked against the metadata so a mismatched object fails the init instead of serving.
``MODEL_LOCAL_PATH`` (a folder with both files, or the zip) replaces S3 for local tests and benchmarks.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnxruntime

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
BUCKET_ENV = "MODEL_S3_BUCKET"
KEY_ENV = "MODEL_S3_KEY"
VERSION_ENV = "MODEL_VERSION"
LOCAL_PATH_ENV = "MODEL_LOCAL_PATH"
#: The model contract (training/contract.py) this reader follows; any other version is refused at init.
SCHEMA_VERSION = 2
CONFIDENCE_DIGITS = 6
#: Largest magnitude a float32 input can hold; larger JSON numbers would turn into inf in the tensor.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class ModelLoadError(RuntimeError):
    """The model could not be loaded: the function must not start serving."""


class ScoreError(ValueError):
    """Rows whose score is not a finite probability (inputs too extreme for the model's arithmetic)."""

    def __init__(self, rows: list[int]) -> None:
        self.rows = rows
        shown = ", ".join(str(row) for row in rows[:10])
        super().__init__(f"the model cannot score the row(s) at index {shown}: feature values are too extreme "
                         "(the score is not a finite probability)")


class OnnxModel:
    """A binary classifier exported to ONNX, with the metadata that governs its inputs and outputs."""

    def __init__(self, onnx_bytes: bytes, metadata: Mapping[str, Any]) -> None:
        check_schema_version(metadata)
        self.metadata = dict(metadata)
        self.model_name = str(metadata["model_name"])
        self.model_version = str(metadata["model_version"])
        self.feature_names = tuple(str(name) for name in metadata["feature_names"])
        self.n_features = len(self.feature_names)
        self.threshold = float(metadata["decision_threshold"])
        positive_class = int(metadata["positive_class"])
        onnx_names = metadata["onnx"]
        options = onnxruntime.SessionOptions()
        # One thread: pools only add tail latency to single rows, and a Lambda at 512 MB has a fraction of a vCPU.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(onnx_bytes, sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        inputs = {item.name: item for item in self._session.get_inputs()}
        outputs = {item.name for item in self._session.get_outputs()}
        self._input_name = str(onnx_names["input_name"])
        self._output_name = str(onnx_names["probabilities_output"])
        problems = []
        if self._input_name not in inputs:
            problems.append(f"the ONNX graph has no input {self._input_name!r} (inputs: {sorted(inputs)})")
        elif isinstance(width := inputs[self._input_name].shape[-1], int) and width != self.n_features:
            problems.append(f"the ONNX input takes {width} features, metadata lists {self.n_features}")
        if self._output_name not in outputs:
            problems.append(f"the ONNX graph has no output {self._output_name!r} (outputs: {sorted(outputs)})")
        if positive_class not in (0, 1):
            problems.append(f"positive_class must be 0 or 1, got {positive_class}")
        if problems:
            raise ModelLoadError("; ".join(problems))
        self._positive_column = positive_class
        self._positive_label, self._negative_label = positive_class, 1 - positive_class

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Probability of the positive class for each row of a float32 ``(n, n_features)`` array."""
        scores = self._session.run([self._output_name], {self._input_name: rows})[0]
        return np.asarray(scores, dtype=np.float64)[:, self._positive_column]

    def predict(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """One ``{"prediction", "confidence", "model_version"}`` per row; :class:`ScoreError` if a score is not finite."""
        probability = self.probabilities(rows)
        finite = np.isfinite(probability)
        if not finite.all():
            raise ScoreError(np.flatnonzero(~finite).tolist())
        version = self.model_version
        return [{"prediction": label, "confidence": confidence, "model_version": version}
                for label, confidence in self.decisions(probability)]

    def decisions(self, probability: np.ndarray) -> list[tuple[int, float]]:
        """``(prediction, confidence)`` per finite probability of the positive class (the threshold applied)."""
        positive = probability >= self.threshold
        confidence = np.where(positive, probability, 1.0 - probability)
        labels = (self._negative_label, self._positive_label)
        return [(labels[flag], round(value, CONFIDENCE_DIGITS))
                for flag, value in zip(positive.tolist(), confidence.tolist())]


def check_schema_version(metadata: Mapping[str, Any]) -> None:
    """Refuse metadata written for another version of the model contract, naming the one this code reads."""
    found = metadata.get("schema_version") if isinstance(metadata, Mapping) else None
    if found != SCHEMA_VERSION:
        raise ModelLoadError(f"{METADATA_FILE} has schema_version {found!r}; this function reads schema_version "
                             f"{SCHEMA_VERSION}: re-package the model with `python -m training.package`")


def load_model(environ: Mapping[str, str], *, s3_client: Any = None) -> OnnxModel:
    """The model named by the environment; raises :class:`ModelLoadError` saying what is wrong and where."""
    local_path = environ.get(LOCAL_PATH_ENV)
    bucket, key = environ.get(BUCKET_ENV), environ.get(KEY_ENV)
    if local_path:
        source = local_path
    elif bucket and key:
        source = f"s3://{bucket}/{key}"
    else:
        raise ModelLoadError(f"no model configured: set {BUCKET_ENV} and {KEY_ENV} (or {LOCAL_PATH_ENV})")
    try:
        files = _read_local(Path(local_path)) if local_path else _read_s3(bucket, key, s3_client)
        missing = [name for name in (MODEL_FILE, METADATA_FILE) if name not in files]
        if missing:
            raise ModelLoadError(f"{', '.join(missing)} missing")
        metadata = json.loads(files[METADATA_FILE])
        model = OnnxModel(files[MODEL_FILE], metadata)
    except Exception as exc:  # any failure here is a model that cannot serve: say which and why, once
        detail = str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
        raise ModelLoadError(f"cannot load the model from {source}: {detail}") from exc
    expected = environ.get(VERSION_ENV)
    if expected and expected != model.model_version:
        raise ModelLoadError(f"cannot load the model from {source}: its metadata says version "
                             f"{model.model_version!r}, the function was deployed for {expected!r}")
    return model


def _read_local(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {name: (path / name).read_bytes() for name in (MODEL_FILE, METADATA_FILE) if (path / name).is_file()}
    return _read_zip(path.read_bytes())


def _read_s3(bucket: str, key: str, s3_client: Any) -> dict[str, bytes]:
    if s3_client is None:
        import boto3  # from the Lambda runtime; imported only on this path, it costs ~200 ms

        s3_client = boto3.client("s3")
    return _read_zip(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def _read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name in (MODEL_FILE, METADATA_FILE)}


def is_representable(value: float) -> bool:
    """A finite number that fits in float32 (what the ONNX graph takes)."""
    return math.isfinite(value) and abs(value) <= FLOAT32_MAX
