"""Reads ``metadata.json``, the contract between training and deployment."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ModelArtifactsError(ValueError):
    """The training artifacts are missing or inconsistent; the message says how to fix it."""


@dataclass(frozen=True, kw_only=True)
class ModelMetadata:
    """What deployment needs to know about a trained model."""

    artifacts_dir: Path
    model_name: str
    model_version: str
    feature_names: tuple[str, ...]
    library_versions: dict[str, str]
    raw: dict[str, Any]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @classmethod
    def load(cls, artifacts_dir: Path | str) -> "ModelMetadata":
        folder = Path(artifacts_dir)
        path = folder / "metadata.json"
        if not path.is_file():
            raise ModelArtifactsError(
                f"{path} not found: build the model artifacts first with `make model` "
                "(or point the model's artifacts_dir at a folder that has metadata.json)")
        try:
            raw = json.loads(path.read_text())
            return cls(artifacts_dir=folder, model_name=raw["model_name"], model_version=raw["model_version"],
                       feature_names=tuple(raw["feature_names"]), library_versions=dict(raw["library_versions"]),
                       raw=raw)
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelArtifactsError(f"{path} is not a valid model metadata file: {exc!r}") from None

    def require_file(self, name: str) -> Path:
        path = self.artifacts_dir / name
        if not path.is_file():
            raise ModelArtifactsError(f"{path} not found: rebuild the model artifacts with `make model`")
        return path
