"""Reads ``metadata.json`` through the model contract (``training/contract.py``) for the CDK app."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from training import contract


class ModelArtifactsError(ValueError):
    """The training artifacts are missing or inconsistent; the message says how to fix it."""


@dataclass(frozen=True, kw_only=True)
class ModelMetadata:
    """What deployment needs to know about a trained model (a validated ``metadata.json``)."""

    artifacts_dir: Path
    model_name: str
    model_version: str
    feature_names: tuple[str, ...]
    library_versions: dict[str, str]
    raw: dict[str, Any]
    schema_version: int
    decision_threshold: float
    label_name: Optional[str]
    onnx_input_name: str
    onnx_probabilities_output: str
    drift_baseline_path: Optional[Path]
    """``drift_baseline.json`` beside the model, when the package has one."""

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @classmethod
    def load(cls, artifacts_dir: Path | str) -> "ModelMetadata":
        folder = Path(artifacts_dir)
        path = folder / contract.METADATA_FILE
        if not path.is_file():
            raise ModelArtifactsError(
                f"{path} not found: build the demo model with `make model`, or package your own with "
                "`python -m training.package` and point deploy.model.artifacts_dir at its folder")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelArtifactsError(f"{path} is not a valid model metadata file: {exc}") from None
        try:
            model = contract.parse(raw, source=str(path))
        except contract.ContractError as exc:
            raise ModelArtifactsError(str(exc)) from None
        drift = model.monitoring.drift_baseline
        return cls(artifacts_dir=folder, model_name=model.model_name, model_version=model.model_version,
                   feature_names=tuple(model.feature_names), library_versions=dict(model.library_versions),
                   raw=raw, schema_version=model.schema_version, decision_threshold=model.decision_threshold,
                   label_name=model.label_name, onnx_input_name=model.onnx.input_name,
                   onnx_probabilities_output=model.onnx.probabilities_output,
                   drift_baseline_path=folder / drift if drift else None)

    def require_file(self, name: str) -> Path:
        path = self.artifacts_dir / name
        if not path.is_file():
            raise ModelArtifactsError(f"{path} not found: re-package the model (`python -m training.package`, "
                                      "or `make model` for the demo)")
        return path
