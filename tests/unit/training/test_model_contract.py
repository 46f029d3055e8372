"""The model contract: one schema for metadata.json, published, and read the same way by every reader."""
import copy
import json

import pytest

from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata
from training import contract


def test_published_json_schema_is_current():
    # THEN docs/model-contract.schema.json is what the pydantic model generates (regenerate with
    # `python -m training.contract --write`)
    assert contract.SCHEMA_PATH.read_text() == contract.json_schema_text()


def test_built_metadata_follows_the_contract(model_folder, model_metadata):
    # WHEN the app loads a built folder
    loaded = ModelMetadata.load(model_folder)
    # THEN every contract field is available with the values written
    assert loaded.schema_version == contract.SCHEMA_VERSION == model_metadata["schema_version"]
    assert loaded.decision_threshold == model_metadata["decision_threshold"] == 0.5
    assert loaded.feature_names == tuple(model_metadata["feature_names"]) and loaded.n_features == 12
    assert loaded.label_name == "is_fraud"
    assert (loaded.onnx_input_name, loaded.onnx_probabilities_output) == ("features", "probabilities")
    assert loaded.drift_baseline_path == model_folder / "drift_baseline.json"
    assert [f["name"] for f in model_metadata["features"]] == model_metadata["feature_names"]
    assert model_metadata["task"] == "binary_classification"
    assert model_metadata["monitoring"] == {"baseline_csv": "baseline.csv", "drift_baseline": "drift_baseline.json"}


def _broken(model_folder, tmp_path, change):
    document = json.loads((model_folder / "metadata.json").read_text())
    change(document)
    (tmp_path / "metadata.json").write_text(json.dumps(document))
    return tmp_path


@pytest.mark.parametrize("change, says", [
    (lambda d: d.update(schema_version=1), "reads schema_version 2"),
    (lambda d: d.pop("schema_version"), "reads schema_version 2"),
    (lambda d: d.update(n_features=5), "n_features is 5 but feature_names has 12"),
    (lambda d: d.pop("decision_threshold"), "decision_threshold: Field required"),
    (lambda d: d.update(decision_threshold=1.5), "decision_threshold: Input should be less than or equal to 1"),
    (lambda d: d["features"].reverse(), "features does not list feature_names in the same order"),
    (lambda d: d.update(task="regression"), "task: Input should be 'binary_classification'"),
    (lambda d: d.update(colour="red"), "colour: Extra inputs are not permitted"),
])
def test_app_refuses_metadata_outside_the_contract_in_one_line(model_folder, tmp_path, change, says):
    folder = _broken(model_folder, tmp_path, change)
    with pytest.raises(ModelArtifactsError) as caught:
        ModelMetadata.load(folder)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_every_problem_is_reported_at_once(model_folder, tmp_path):
    def two_problems(document):
        document.pop("label_name")  # optional: not a problem
        document.update(decision_threshold=-1, framework="xgboost")
    with pytest.raises(ModelArtifactsError) as caught:
        ModelMetadata.load(_broken(model_folder, tmp_path, two_problems))
    assert "decision_threshold" in str(caught.value) and "framework" in str(caught.value)


def test_contract_imports_neither_numpy_nor_sklearn():
    # The CDK app imports it; it must stay light (pydantic and the standard library only).
    import subprocess
    import sys
    code = "import sys, training.contract; print(sorted(m for m in ('numpy', 'sklearn') if m in sys.modules))"
    from tests.unit.training.conftest import REPO_ROOT
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO_ROOT).stdout
    assert out.strip() == "[]"


def test_parse_does_not_change_the_document(model_metadata):
    before = copy.deepcopy(model_metadata)
    contract.parse(model_metadata)
    assert model_metadata == before
