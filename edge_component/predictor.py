"""The component's inference logic: one message in, one result out. No IPC, no I/O, never raises on input.

A message is a JSON object ``{"features": [f1, ..., fN], "id": <optional str or int>}``. The result is
``{"prediction": 0|1, "confidence": p, "model_version": ..., "latency_ms": ...}`` (plus ``id`` when the
message had one); a message that cannot be scored gives ``{"error": ..., "model_version": ...}`` instead.

The ONNX contract: one float32 input named ``features`` shaped ``[batch, N]`` and an output named
``probabilities`` shaped ``[batch, 2]`` (class 0, class 1) or ``[batch, 1]`` (class 1 only).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnxruntime as ort

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
DEFAULT_THRESHOLD = 0.5
#: The model contract (training/contract.py) ``metadata.json`` must follow; any other version is refused.
SCHEMA_VERSION = 2
#: Greengrass local pub/sub messages are small; refusing big ones early bounds the work a bad sender causes.
MAX_MESSAGE_BYTES = 64 * 1024
MAX_ID_LENGTH = 128
_NUMBER_TYPES = (int, float)
_FLOAT32_MAX = float(np.finfo(np.float32).max)

LOGGER = logging.getLogger("edge.predictor")


class ModelContractError(RuntimeError):
    """The ONNX file does not have the input/output names and shapes this program expects."""


class MessageError(ValueError):
    """The message cannot be scored; the text is safe to send back to the sender."""


@dataclass(frozen=True)
class Outcome:
    """What to publish: ``body`` goes to the output topic when ``ok``, else to the error topic."""

    ok: bool
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    """The fields of ``metadata.json`` the edge program uses."""

    model_version: str
    threshold: float
    feature_names: tuple


def read_metadata(path: Path | str) -> ModelInfo:
    """Read the model's ``metadata.json``; raises ModelContractError on another schema version or missing fields."""
    path = Path(path)
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelContractError(f"cannot read {path}: {exc}") from None
    found = metadata.get("schema_version") if isinstance(metadata, dict) else None
    if found != SCHEMA_VERSION:
        raise ModelContractError(f"{path} has schema_version {found!r}; this program reads schema_version "
                                 f"{SCHEMA_VERSION}: re-package the model with `python -m training.package`")
    try:
        onnx_names = metadata["onnx"]
        info = ModelInfo(model_version=str(metadata["model_version"]),
                         threshold=float(metadata["decision_threshold"]),
                         feature_names=tuple(str(name) for name in metadata["feature_names"]))
        names = (onnx_names["input_name"], onnx_names["probabilities_output"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelContractError(f"{path} lacks a valid {exc} field") from None
    if names != (INPUT_NAME, OUTPUT_NAME):
        raise ModelContractError(f"{path}: the ONNX names are {names}, this program needs {(INPUT_NAME, OUTPUT_NAME)}")
    return info


def model_file_version(path: Path) -> str:
    """A version for a model that comes without one: ``sha256:`` and 12 hex digits of the file."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class FraudPredictor:
    """An ONNX binary classifier scoring one row per message with a decision threshold."""

    def __init__(self, model_path: Path | str, *, model_version: str | None = None,
                 threshold: float = DEFAULT_THRESHOLD, intra_op_threads: int = 1) -> None:
        path = Path(model_path)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        options = ort.SessionOptions()
        # One thread: a single row is ~6 µs of math, and thread pools only add tail latency.
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.n_features, self._positive_column = _check_contract(self.session, path)
        self.model_version = model_version or model_file_version(path)
        self.threshold = threshold
        self._outputs = [OUTPUT_NAME]

    def positive_probability(self, rows: np.ndarray) -> np.ndarray:
        """P(class 1) for float32 rows shaped ``[batch, n_features]`` (the model-only path)."""
        probabilities = self.session.run(self._outputs, {INPUT_NAME: rows})[0]
        return probabilities[:, self._positive_column]

    def handle(self, message: bytes | str | Mapping[str, Any]) -> Outcome:
        """Score one message (raw JSON bytes/text or an already decoded object); never raises."""
        started = time.perf_counter()
        message_id = None
        try:
            payload = _decode(message)
            message_id = _message_id(payload)
            row = self._row(payload)
            score = float(self.positive_probability(row)[0])
            # Finite but extreme float32 features (e.g. 3e38 everywhere) overflow inside the model and give NaN.
            if not math.isfinite(score):
                raise MessageError(f"the model returned a non-finite score ({score}) for these features; "
                                   "values this extreme are outside what it can score")
        except MessageError as exc:
            return self._error(str(exc), message_id)
        except Exception:  # a bug or a runtime failure must not stop the component; log it with its trace
            LOGGER.exception("unexpected failure while scoring a message")
            return self._error("internal error while scoring the message", message_id)
        prediction = int(score >= self.threshold)
        body: dict[str, Any] = {
            "prediction": prediction,
            "confidence": score if prediction else 1.0 - score,
            "model_version": self.model_version,
            "latency_ms": round((time.perf_counter() - started) * 1000.0, 4),
        }
        if message_id is not None:
            body["id"] = message_id
        return Outcome(ok=True, body=body)

    def _row(self, payload: Mapping[str, Any]) -> np.ndarray:
        features = payload.get("features")
        if not isinstance(features, list):
            raise MessageError(f'"features" must be a list of {self.n_features} numbers')
        if len(features) != self.n_features:
            raise MessageError(f'"features" has {len(features)} values, the model expects {self.n_features}')
        for index, value in enumerate(features):
            # bool is an int subclass, and numpy would happily turn "1.5" into a float: accept numbers only.
            if type(value) not in _NUMBER_TYPES:
                raise MessageError(f'"features"[{index}] is {type(value).__name__}, expected a number')
            # json.loads accepts NaN and Infinity; the comparison is False for NaN too.
            if not -_FLOAT32_MAX <= value <= _FLOAT32_MAX:
                raise MessageError(f'"features"[{index}] is not a finite float32 number')
        return np.asarray(features, dtype=np.float32).reshape(1, self.n_features)

    def _error(self, reason: str, message_id: Any) -> Outcome:
        body: dict[str, Any] = {"error": reason, "model_version": self.model_version}
        if message_id is not None:
            body["id"] = message_id
        return Outcome(ok=False, body=body)


def _decode(message: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(message, Mapping):
        return message
    if isinstance(message, (bytes, bytearray, memoryview)):
        message = bytes(message)
        if len(message) > MAX_MESSAGE_BYTES:
            raise MessageError(f"message is {len(message)} bytes, the limit is {MAX_MESSAGE_BYTES}")
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise MessageError("message is not UTF-8 text") from None
    if not isinstance(message, str):
        raise MessageError(f"message must be a JSON object, got {type(message).__name__}")
    if len(message) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message is {len(message)} characters, the limit is {MAX_MESSAGE_BYTES}")
    try:
        payload = json.loads(message)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and also Python's refusal of integers over 4300 digits.
        raise MessageError(f"message is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MessageError(f"message must be a JSON object, got {type(payload).__name__}")
    return payload


def _message_id(payload: Mapping[str, Any]) -> str | int | None:
    """The sender's correlation id, echoed back; anything else in that field is dropped, not trusted."""
    value = payload.get("id")
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _check_contract(session: ort.InferenceSession, path: Path) -> tuple[int, int]:
    """(n_features, column of P(class 1)); raises ModelContractError naming what is wrong."""
    problems = []
    inputs = {node.name: node for node in session.get_inputs()}
    outputs = {node.name: node for node in session.get_outputs()}
    n_features = positive_column = None
    if INPUT_NAME not in inputs:
        problems.append(f"no input named {INPUT_NAME!r} (inputs: {', '.join(inputs) or 'none'})")
    else:
        node = inputs[INPUT_NAME]
        if node.type != "tensor(float)":
            problems.append(f"input {INPUT_NAME!r} is {node.type}, expected tensor(float)")
        if len(node.shape) != 2 or not isinstance(node.shape[1], int):
            problems.append(f"input {INPUT_NAME!r} has shape {node.shape}, expected [batch, n_features]")
        else:
            n_features = node.shape[1]
    if OUTPUT_NAME not in outputs:
        problems.append(f"no output named {OUTPUT_NAME!r} (outputs: {', '.join(outputs) or 'none'})")
    else:
        shape = outputs[OUTPUT_NAME].shape
        if len(shape) != 2 or shape[1] not in (1, 2):
            problems.append(f"output {OUTPUT_NAME!r} has shape {shape}, expected [batch, 2] or [batch, 1]")
        else:
            positive_column = shape[1] - 1
    if problems:
        raise ModelContractError(f"{path}: " + "; ".join(problems))
    return n_features, positive_column
