"""model.onnx answers like model.joblib, through the interface metadata.json names."""

import sys

import joblib
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from training import export
from training.data import generate
from training.model import VERSIONS, fit


def _session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_onnx_interface_matches_metadata(model_folder, model_metadata):
    session = _session(model_folder / "model.onnx")
    (features,) = session.get_inputs()
    # THEN the input is float32 [None, n] under the advertised name
    assert features.name == model_metadata["onnx"]["input_name"] == "features"
    assert features.type == "tensor(float)"
    assert features.shape[1] == model_metadata["n_features"]
    assert not isinstance(features.shape[0], int)  # a symbolic batch dimension
    # AND the outputs are a label and a plain [None, 2] float tensor (no ZipMap)
    outputs = {o.name: o for o in session.get_outputs()}
    assert list(outputs) == ["label", model_metadata["onnx"]["probabilities_output"]]
    assert outputs["probabilities"].type == "tensor(float)"
    assert outputs["probabilities"].shape[1] == 2
    # AND the opset is the one recorded
    opsets = {o.domain: o.version for o in onnx.load(model_folder / "model.onnx").opset_import}
    assert opsets[""] == model_metadata["onnx"]["opset"]


def test_onnx_probabilities_equal_sklearn_on_10000_rows(model_folder, model_metadata):
    # GIVEN 10,000 fresh rows the model never saw
    rows = generate(seed=98765, n_rows=10_000).features
    sklearn_model = joblib.load(model_folder / "model.joblib")
    # WHEN both runtimes score them (ONNX in float32, as Lambda and the edge feed it)
    expected = sklearn_model.predict_proba(rows)
    labels, probabilities = _session(model_folder / "model.onnx").run(
        ["label", "probabilities"], {"features": rows.astype(np.float32)})
    # THEN every probability agrees within 1e-5, and so does every clear-cut label
    assert probabilities.shape == (10_000, 2)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-5)
    clear = np.abs(expected[:, 1] - 0.5) > 1e-5
    assert np.array_equal(labels[clear], sklearn_model.predict(rows)[clear])


@pytest.mark.skipif(
    sys.flags.hash_randomization == 0, reason="this interpreter already has PYTHONHASHSEED=0"
)
def test_conversion_refuses_an_unpinned_hash_seed():
    # GIVEN an interpreter with randomized string hashing (pytest's default)
    data = generate(seed=1, n_rows=500)
    model = fit(VERSIONS[0], data.features, data.labels)
    # WHEN converting in-process THEN it refuses rather than write unreproducible bytes
    with pytest.raises(RuntimeError, match="PYTHONHASHSEED"):
        export.to_onnx(model, data.features.shape[1], "fraud-detector")
