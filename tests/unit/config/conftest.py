"""Fixtures for configuration tests: copies of the demo model under other names, features and thresholds."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS_DIR


def packaged_copy(folder: Path, **metadata_changes) -> Path:
    """The demo model's artifacts in ``folder`` with metadata.json changed (another name, threshold, features)."""
    shutil.copytree(ARTIFACTS_DIR, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata.update(metadata_changes)
    if "feature_names" in metadata_changes and "features" not in metadata_changes:
        # the contract lists every feature twice (names, and names with types): keep them in step
        dtype = metadata["features"][0]["dtype"]
        metadata["features"] = [{"name": name, "dtype": dtype} for name in metadata["feature_names"]]
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return folder


@pytest.fixture(scope="session")
def other_model(tmp_path_factory) -> Path:
    """A model the user packaged themselves: its own name and a decision threshold of 0.3."""
    return packaged_copy(tmp_path_factory.mktemp("user") / "churn-scorer", model_name="churn-scorer",
                         decision_threshold=0.3)
