"""Every runtime reader refuses metadata.json of another contract version, naming the one it reads."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import uuid

import pytest

from tests.runtime.second_model.test_second_model_runtimes import EDGE_DIR, LAMBDA_SRC


@pytest.fixture
def old_package(second_model_dir, tmp_path):
    """The packaged folder with metadata.json claiming schema_version 1."""
    folder = tmp_path / "old"
    shutil.copytree(second_model_dir, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["schema_version"] = 1
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def _load(path, name):
    spec = importlib.util.spec_from_file_location(f"{name}_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_inference_refuses_another_schema_version(inference, old_package):
    with pytest.raises(ValueError, match=r"schema_version 1; this inference.py reads schema_version 2"):
        inference.model_fn(str(old_package))


def test_lambda_refuses_another_schema_version(old_package):
    sys.path.insert(0, str(LAMBDA_SRC))
    try:
        model = _load(LAMBDA_SRC / "serverless_inference" / "model.py", "lambda_model")
    finally:
        sys.path.remove(str(LAMBDA_SRC))
    with pytest.raises(model.ModelLoadError, match=r"schema_version 1; this function reads schema_version 2"):
        model.load_model({"MODEL_LOCAL_PATH": str(old_package)})


def test_edge_program_refuses_another_schema_version(old_package):
    predictor = _load(EDGE_DIR / "predictor.py", "edge_predictor")
    with pytest.raises(predictor.ModelContractError, match=r"schema_version 1; this program reads schema_version 2"):
        predictor.read_metadata(old_package / "metadata.json")
