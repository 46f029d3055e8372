"""The edge program's inference logic with the real ONNX model: parity with scikit-learn, bad input answered."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.runtime.edge.conftest import ARTIFACTS_DIR, MODEL_PATH

PARITY_ATOL = 1e-5
GOOD_FEATURES = [7.54, 14.0, 0.0692, 4.767, 1.49, 0.5424, 1.0, 1194.0, 1.0, 0.0, 0.0, 0.0]


def test_scores_match_scikit_learn(predictor, feature_rows, sklearn_model):
    # GIVEN 2000 baseline rows sent one by one as JSON messages, and the scikit-learn model they came from
    expected = sklearn_model.predict_proba(feature_rows)[:, 1]
    # WHEN the program scores each message
    outcomes = [predictor.handle(json.dumps({"features": row.tolist()})) for row in feature_rows]
    # THEN every message is scored, P(fraud) matches predict_proba and the labels match predict()
    assert all(outcome.ok for outcome in outcomes)
    predictions = np.array([outcome.body["prediction"] for outcome in outcomes])
    confidence = np.array([outcome.body["confidence"] for outcome in outcomes])
    scores = np.where(predictions == 1, confidence, 1.0 - confidence)
    np.testing.assert_allclose(scores, expected, atol=PARITY_ATOL)
    np.testing.assert_array_equal(predictions, sklearn_model.predict(feature_rows))
    assert predictions.sum() > 0, "the sample should contain predicted fraud, or the label check proves little"


def test_labeled_sample_rows_score_like_scikit_learn(predictor, sklearn_model):
    # GIVEN the labeled sample file (id + 12 features + label)
    lines = (ARTIFACTS_DIR / "samples" / "labeled.csv").read_text().splitlines()[1:]
    for line in lines:
        row_id, *values, _label = line.split(",")
        features = [float(value) for value in values]
        # WHEN each row is sent with its id
        outcome = predictor.handle({"id": row_id, "features": features})
        # THEN the id comes back and the score matches scikit-learn
        expected = sklearn_model.predict_proba(np.array([features]))[0]
        assert outcome.ok and outcome.body["id"] == row_id
        assert outcome.body["confidence"] == pytest.approx(expected.max(), abs=PARITY_ATOL)


def test_result_has_the_published_fields(predictor):
    # GIVEN a good message as bytes (what a binary pub/sub message carries)
    outcome = predictor.handle(json.dumps({"features": GOOD_FEATURES}).encode())
    # THEN the result has exactly the documented fields, JSON-serializable, with plausible values
    assert outcome.ok
    assert set(outcome.body) == {"prediction", "confidence", "model_version", "latency_ms"}
    assert outcome.body["prediction"] in (0, 1) and 0.5 <= outcome.body["confidence"] <= 1.0
    assert outcome.body["model_version"] == "v1-test"
    assert 0.0 <= outcome.body["latency_ms"] < 1000.0
    json.dumps(outcome.body, allow_nan=False)


BAD_MESSAGES = {
    "not utf-8": (b"\xff\xfe{", "UTF-8"),
    "not json": ("transaction please", "not valid JSON"),
    "json array": ("[1, 2, 3]", "JSON object"),
    "json number": ("42", "JSON object"),
    "decoded non-object": (["features"], "JSON object"),
    "no features": ('{"amount": 3}', '"features" must be a list'),
    "features as text": ('{"features": "1,2,3"}', '"features" must be a list'),
    "too few features": ('{"features": [1, 2]}', "has 2 values, the model expects 12"),
    "numeric string": (json.dumps({"features": ["1.5"] + GOOD_FEATURES[1:]}), '"features"[0] is str'),
    "boolean": (json.dumps({"features": GOOD_FEATURES[:3] + [True] + GOOD_FEATURES[4:]}), '"features"[3] is bool'),
    "null": (json.dumps({"features": GOOD_FEATURES[:11] + [None]}), '"features"[11] is NoneType'),
    "NaN literal": ('{"features": [NaN' + ", 1" * 11 + "]}", '"features"[0] is not a finite'),
    "float32 overflow": ('{"features": [1' + ", 1" * 10 + ", 1e39]}", '"features"[11] is not a finite'),
    "finite extremes the model turns into NaN": (json.dumps({"features": [3e38] * 12}), "non-finite score (nan)"),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "limit is"),
    "oversized": (json.dumps({"features": GOOD_FEATURES, "pad": "x" * 70_000}), "limit is"),
    "deep nesting under the size limit": ('{"features": ' + "[" * 30_000 + "]" * 30_000 + "}", "not valid JSON"),
    # Python refuses to convert integers of more than 4300 digits (ValueError, not JSONDecodeError)
    "5000-digit integer": ('{"features": [' + "9" * 5000 + ", 1" * 11 + "]}", "not valid JSON"),
}


@pytest.mark.parametrize("message, reason", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_bad_message_is_answered_not_raised(predictor, message, reason):
    # GIVEN a message the model cannot score
    # WHEN the program handles it
    outcome = predictor.handle(message)
    # THEN it returns an error result naming the problem (no exception), and keeps scoring good messages
    assert not outcome.ok
    assert reason in outcome.body["error"]
    assert outcome.body["model_version"] == "v1-test"
    assert predictor.handle({"features": GOOD_FEATURES}).ok


def test_error_echoes_a_valid_id_only(predictor):
    # GIVEN bad messages, one with a usable id and one whose id is an object
    with_id = predictor.handle({"id": "txn-9", "features": [1]})
    with_object_id = predictor.handle({"id": {"nested": 1}, "features": [1]})
    # THEN the id is echoed when it is a string or an integer, and dropped otherwise
    assert with_id.body["id"] == "txn-9"
    assert "id" not in with_object_id.body


def test_threshold_decides_the_label(predictor_module):
    # GIVEN the same model with the threshold at 0 and at 1
    always = predictor_module.FraudPredictor(MODEL_PATH, threshold=0.0)
    never = predictor_module.FraudPredictor(MODEL_PATH, threshold=1.0)
    # WHEN both score the same legitimate-looking transaction
    yes, no = always.handle({"features": GOOD_FEATURES}), never.handle({"features": GOOD_FEATURES})
    # THEN the label follows the threshold and confidence is the probability of the predicted label
    assert (yes.body["prediction"], no.body["prediction"]) == (1, 0)
    assert yes.body["confidence"] + no.body["confidence"] == pytest.approx(1.0)
    # AND without a configured version the file hash is reported
    assert always.model_version.startswith("sha256:") and len(always.model_version) == len("sha256:") + 12


def test_unexpected_runtime_failure_is_answered(predictor_module):
    # GIVEN a predictor whose ONNX session fails at run time
    broken = predictor_module.FraudPredictor(MODEL_PATH, model_version="v1")

    class FailingSession:
        def run(self, *args, **kwargs):
            raise RuntimeError("device out of memory")

    broken.session = FailingSession()
    # WHEN a good message arrives  THEN an internal-error result is returned instead of an exception
    outcome = broken.handle({"id": 7, "features": GOOD_FEATURES})
    assert not outcome.ok and outcome.body == {"error": "internal error while scoring the message",
                                               "model_version": "v1", "id": 7}


@pytest.mark.parametrize("score", [float("nan"), float("inf")])
def test_non_finite_score_is_an_error(predictor_module, score):
    # GIVEN a predictor whose session returns a non-finite probability, whatever the input
    odd = predictor_module.FraudPredictor(MODEL_PATH, model_version="v1")

    class NonFiniteSession:
        def run(self, *args, **kwargs):
            return [np.array([[score, score]], dtype=np.float32)]

    odd.session = NonFiniteSession()
    # WHEN a good message arrives  THEN it is answered on the error path, naming the problem, never as a result
    outcome = odd.handle({"id": 3, "features": GOOD_FEATURES})
    assert not outcome.ok and outcome.body == {
        "error": f"the model returned a non-finite score ({score}) for these features; "
                 "values this extreme are outside what it can score",
        "model_version": "v1", "id": 3}


def _linear_model(path, *, input_name="features", output_name="probabilities", outputs=1, n_features=3):
    weights = helper.make_tensor("W", TensorProto.FLOAT, [n_features, outputs], [1.0] * (n_features * outputs))
    graph = helper.make_graph(
        [helper.make_node("MatMul", [input_name, "W"], ["logits"]), helper.make_node("Sigmoid", ["logits"], [output_name])],
        "linear", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, outputs])], initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_single_probability_output_is_class_one(predictor_module, tmp_path):
    # GIVEN a PyTorch-style model with one sigmoid output column: P(class 1) = sigmoid(sum of features)
    model = predictor_module.FraudPredictor(_linear_model(tmp_path / "sigmoid.onnx"), model_version="torch-1")
    # WHEN it scores a row whose sum is 2 (sigmoid 0.881)
    outcome = model.handle({"features": [1.0, 0.5, 0.5]})
    # THEN that column is read as the positive class
    assert outcome.body["prediction"] == 1
    assert outcome.body["confidence"] == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_name": "input"}, "no input named 'features'"),
    ({"output_name": "output"}, "no output named 'probabilities'"),
    ({"outputs": 3}, "expected [batch, 2] or [batch, 1]"),
])
def test_model_with_other_names_is_refused_at_load(predictor_module, tmp_path, kwargs, message):
    # GIVEN an ONNX model that does not follow the program's input/output contract
    path = _linear_model(tmp_path / "other.onnx", **kwargs)
    # WHEN the program loads it  THEN it refuses with a message naming the mismatch
    with pytest.raises(predictor_module.ModelContractError, match=message.replace("[", r"\[").replace("]", r"\]")):
        predictor_module.FraudPredictor(path)
