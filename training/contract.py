"""The model contract: what ``metadata.json`` holds, versioned, in one pydantic model.

Every reader uses these fields: the CDK app through ``ml_constructs.common.model_metadata`` (which imports
this module), and the runtimes that cannot import the app (``inference/inference.py``, the Lambda's
``serverless_inference/model.py``, the edge program) read the same keys with ``json`` and refuse a
``schema_version`` other than :data:`SCHEMA_VERSION`. The published JSON Schema is
``docs/model-contract.schema.json`` (``python -m training.contract`` prints it).

Imports only pydantic and the standard library, so the app can import it without the training stack.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 2
METADATA_FILE = "metadata.json"
BASELINE_CSV = "baseline.csv"
DRIFT_BASELINE = "drift_baseline.json"
TASK = "binary_classification"
#: Model names become resource names (endpoint, job prefix, topics): lower-case, digits and hyphens.
MODEL_NAME_PATTERN = r"^[a-z][a-z0-9-]*[a-z0-9]$"
MAX_MODEL_NAME = 63
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "model-contract.schema.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Strict):
    """One model input column, in the order the model takes them."""

    name: str = Field(min_length=1)
    dtype: Literal["float64"] = "float64"


class OnnxSection(_Strict):
    """Names inside model.onnx: a float32 ``[batch, n_features]`` input, a ``[batch, 2]`` output."""

    input_name: str = Field(min_length=1)
    probabilities_output: str = Field(min_length=1)
    opset: int = Field(ge=1)


class MonitoringSection(_Strict):
    """Files next to the model that monitoring reads (paths relative to the model folder)."""

    baseline_csv: str = BASELINE_CSV
    drift_baseline: Optional[str] = None


class ModelContract(_Strict):
    """metadata.json, schema version 2."""

    schema_version: Literal[2] = Field(description="Readers refuse any other value.")
    model_name: str = Field(min_length=1, max_length=MAX_MODEL_NAME, pattern=MODEL_NAME_PATTERN)
    model_version: str = Field(min_length=1, description="<line>-<first 12 hex of sha256(model.joblib)>")
    task: Literal["binary_classification"] = TASK
    framework: Literal["sklearn"]
    framework_version: str = Field(description="SageMaker scikit-learn container version, e.g. 1.2-1")
    library_versions: dict[str, str]
    feature_names: list[str] = Field(min_length=1)
    n_features: int = Field(ge=1)
    features: list[Feature] = Field(min_length=1)
    label_name: Optional[str] = None
    positive_class: Literal[1] = Field(description="Class whose probability is the score (classes are 0 and 1).")
    decision_threshold: float = Field(ge=0.0, le=1.0, description="Score at or above which the prediction is 1.")
    onnx: OnnxSection
    files: dict[str, str] = Field(description="sha256 of every file in the folder but metadata.json")
    monitoring: MonitoringSection
    metrics: Optional[dict[str, float]] = None

    @model_validator(mode="after")
    def _consistent(self) -> "ModelContract":
        problems = []
        if len(set(self.feature_names)) != len(self.feature_names):
            problems.append("feature_names has duplicates")
        if self.n_features != len(self.feature_names):
            problems.append(f"n_features is {self.n_features} but feature_names has {len(self.feature_names)}")
        if [feature.name for feature in self.features] != self.feature_names:
            problems.append("features does not list feature_names in the same order")
        if self.label_name is not None and self.label_name in self.feature_names:
            problems.append(f"label {self.label_name!r} is also a feature")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ContractError(ValueError):
    """metadata.json does not follow the contract; the message is one line."""


def parse(document: dict, *, source: str = METADATA_FILE) -> ModelContract:
    """Validate a decoded metadata.json; every problem in one line with its key path."""
    if isinstance(document, dict) and document.get("schema_version") != SCHEMA_VERSION:
        raise ContractError(unsupported_schema_message(document.get("schema_version"), source))
    try:
        return ModelContract.model_validate(document)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ContractError(f"{source} does not follow the model contract: {details}") from None


def load(folder: Path | str) -> ModelContract:
    """Read and validate ``<folder>/metadata.json``."""
    path = Path(folder) / METADATA_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ContractError(f"cannot read {path}: {exc}") from None
    return parse(document, source=str(path))


def unsupported_schema_message(found: object, source: str) -> str:
    """The one refusal text every reader gives for another schema version."""
    return (f"{source} has schema_version {found!r}; this code reads schema_version {SCHEMA_VERSION}: "
            "re-package the model with `python -m training.package` (or `make model` for the demo)")


def json_schema() -> dict:
    """The published JSON Schema of metadata.json."""
    schema = ModelContract.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "model-contract.schema.json"
    return schema


def json_schema_text() -> str:
    """The schema as written to docs/model-contract.schema.json."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m training.contract [--write]
    if sys.argv[1:] == ["--write"]:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_PATH.write_text(json_schema_text(), encoding="utf-8")
    else:
        sys.stdout.write(json_schema_text())
