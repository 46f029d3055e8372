"""inference/inference.py, called as the container calls it: model_fn once, then transform_fn."""
from __future__ import annotations

import ast
import json
import shutil
import sys

import joblib
import numpy as np
import pytest

from tests.runtime.conftest import ARTIFACTS_DIR, INFERENCE_PATH, expected_probabilities, load_inference

#: What the 1.2-1 container can import besides the standard library.
CONTAINER_PACKAGES = {"joblib", "numpy", "sklearn", "flask", "pyarrow", "threadpoolctl", "pandas"}


def call(inference, model, body, content_type="text/csv", accept="application/json"):
    response = inference.transform_fn(model, body, content_type, accept)
    return response.status_code, response.mimetype, response.get_data()


def test_source_is_python_39_and_imports_only_what_the_container_has():
    # GIVEN the file that ships as code/inference.py
    source = INFERENCE_PATH.read_text()
    # WHEN it is parsed with Python 3.9's grammar
    tree = ast.parse(source, feature_version=(3, 9))
    # THEN it has no runtime `X | Y` unions, and imports only the stdlib and the container's packages
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) <= CONTAINER_PACKAGES
    annotations = [node.annotation for node in ast.walk(tree) if isinstance(node, (ast.arg, ast.AnnAssign))]
    annotations += [node.returns for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    unions = [ann for ann in annotations if ann is not None
              and any(isinstance(part, ast.BinOp) and isinstance(part.op, ast.BitOr) for part in ast.walk(ann))]
    assert unions == [], "Python 3.9 evaluates annotations: `X | Y` raises TypeError at import"


def test_model_fn_reads_version_and_features_from_metadata(loaded_model):
    # GIVEN the real artifacts; WHEN model_fn loads them
    metadata = json.loads((ARTIFACTS_DIR / "metadata.json").read_text())
    # THEN the version and feature order are metadata's
    assert loaded_model.model_version == metadata["model_version"]
    assert loaded_model.feature_names == metadata["feature_names"]
    assert loaded_model.n_features == 12


def test_model_fn_refuses_a_package_whose_metadata_disagrees_with_the_model(inference, tmp_path):
    # GIVEN a package whose metadata claims 13 features and a positive class 2 for a 12-feature 0/1 model
    shutil.copy(ARTIFACTS_DIR / "model.joblib", tmp_path / "model.joblib")
    metadata = json.loads((ARTIFACTS_DIR / "metadata.json").read_text())
    metadata.update(n_features=13, positive_class=2)
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    # WHEN model_fn loads it THEN it refuses, naming every problem at once
    with pytest.raises(ValueError, match="feature_names has 12 names, n_features is 13.*fitted on 12 features"
                                         ".*positive_class 2 is not among"):
        inference.model_fn(str(tmp_path))


def test_one_csv_row_gets_the_models_probability(inference, loaded_model, reference_estimator, sample_rows):
    # GIVEN one CSV row; WHEN it is sent with Accept text/csv
    status, mimetype, body = call(inference, loaded_model, sample_rows[0], accept="text/csv")
    # THEN the answer is predict_proba's positive-class probability, exactly, on one line
    assert (status, mimetype) == (200, "text/csv")
    assert body.decode().splitlines() == [repr(expected_probabilities(reference_estimator, sample_rows[:1])[0])]


@pytest.mark.parametrize("rows", ["samples", "many"])
def test_multi_row_csv_keeps_one_output_line_per_input_line(inference, loaded_model, reference_estimator,
                                                            sample_rows, many_rows, rows):
    # GIVEN 5 rows (exact parser) or 3000 rows (pyarrow path), with a trailing newline
    lines = sample_rows if rows == "samples" else many_rows
    # WHEN they are sent as CSV for CSV
    status, _, body = call(inference, loaded_model, "\n".join(lines) + "\n", accept="text/csv")
    # THEN line i of the output is row i's probability (what Batch Transform's JoinSource=Input relies on)
    assert status == 200
    output = [float(line) for line in body.decode().splitlines()]
    assert output == expected_probabilities(reference_estimator, lines)


def test_json_answer_carries_probability_prediction_and_version(inference, loaded_model, reference_estimator,
                                                                sample_rows):
    # GIVEN the sample JSON request (instances)
    body = (ARTIFACTS_DIR / "samples" / "request.json").read_bytes()
    # WHEN it is sent as JSON for JSON
    status, mimetype, payload = call(inference, loaded_model, body, content_type="application/json")
    # THEN each instance gets its probability and the 0.5-threshold decision, plus the model version
    document = json.loads(payload)
    expected = expected_probabilities(reference_estimator, sample_rows)
    assert (status, mimetype) == (200, "application/json")
    assert document["model_version"] == loaded_model.model_version
    assert [p["probability"] for p in document["predictions"]] == expected
    assert [p["prediction"] for p in document["predictions"]] == [int(p >= 0.5) for p in expected]


@pytest.mark.parametrize("shape", ["instances", "bare_rows", "flat_row"])
def test_json_request_shapes_are_equivalent(inference, loaded_model, reference_estimator, sample_rows, shape):
    # GIVEN the first sample row in each accepted JSON shape
    row = [float(value) for value in sample_rows[0].split(",")]
    document = {"instances": [row], "bare_rows": [row], "flat_row": row}[shape]
    # WHEN it is sent THEN the probability is the model's
    status, _, payload = call(inference, loaded_model, json.dumps(document), content_type="application/json",
                              accept="text/csv")
    assert status == 200
    assert float(payload) == expected_probabilities(reference_estimator, sample_rows[:1])[0]


@pytest.mark.parametrize("content_type, accept, expected", [
    ("text/csv", "*/*", "text/csv"),
    ("application/json", "*/*", "application/json"),
    ("text/csv", None, "text/csv"),
    ("text/csv", "application/json; charset=utf-8", "application/json"),
    ("application/json", "text/html, text/csv;q=0.9", "text/csv"),
    ("text/csv; charset=utf-8", "text/csv", "text/csv"),
    # media ranges and q-values (RFC 9110 12.5.1): a range matches its types, q=0 means "not this one"
    ("application/json", "text/*", "text/csv"),
    ("text/csv", "application/*", "application/json"),
    ("text/csv", "text/csv;q=0, application/json", "application/json"),
    ("text/csv", "text/csv;q=0.2, application/json;q=0.8", "application/json"),
    ("application/json", "*/*;q=0.1, text/csv", "text/csv"),
    ("application/json", "*/*, application/json;q=0", "text/csv"),
    ("text/csv", "TEXT/*; Q=1", "text/csv"),
])
def test_accept_negotiation(inference, loaded_model, sample_rows, content_type, accept, expected):
    # GIVEN one row in the request's format
    row = sample_rows[0]
    body = row if content_type.startswith("text/csv") else "[%s]" % row
    # WHEN it is sent with this Accept THEN the response has the negotiated type (*/* = the request's)
    status, mimetype, _ = call(inference, loaded_model, body, content_type=content_type, accept=accept)
    assert (status, mimetype) == (200, expected)


@pytest.mark.parametrize("accept", ["text/csv;q=0, application/json;q=0", "text/*;q=0, application/json;q=0",
                                    "image/*", "*/*;q=0", "text/csv;q=abc"])
def test_accept_that_excludes_both_types_is_406(inference, loaded_model, sample_rows, accept):
    # GIVEN an Accept header under which neither CSV nor JSON is acceptable
    # WHEN a valid row is sent THEN the answer is 406 naming the supported types
    status, _, body = call(inference, loaded_model, sample_rows[0], accept=accept)
    assert (status, json.loads(body)["code"]) == (406, "unsupported_accept")


def test_str_and_bytes_bodies_are_equivalent(inference, loaded_model, many_rows):
    # GIVEN the same CSV as text (how the container passes exact text/csv) and as bytes (text/csv; charset=...)
    text = "\n".join(many_rows[:100])
    # WHEN both are sent THEN the answers are identical
    assert call(inference, loaded_model, text, accept="text/csv") == call(
        inference, loaded_model, text.encode(), content_type="text/csv; charset=utf-8", accept="text/csv")


def test_bad_input_gets_a_4xx_with_a_json_reason(inference, loaded_model, bad_input):
    # GIVEN a client mistake
    case, body = bad_input
    # WHEN it reaches transform_fn
    status, mimetype, payload = call(inference, loaded_model, body, content_type=case.content_type,
                                     accept=case.accept)
    # THEN it is answered (not raised, which the container would turn into a 500) with the reason
    document = json.loads(payload)
    assert (status, mimetype) == (case.status, "application/json")
    assert document["error"]
    assert {key: document.get(key) for key in case.fields} == case.fields


def test_payload_limit_comes_from_the_environment(inference, monkeypatch, sample_rows):
    # GIVEN a model loaded with a 0.0001 MiB (104-byte) limit
    monkeypatch.setenv("INFERENCE_MAX_PAYLOAD_MB", "0.0001")
    model = inference.model_fn(str(ARTIFACTS_DIR))
    # WHEN two rows (over 104 bytes) are sent THEN 413; one row still passes
    assert call(inference, model, "\n".join(sample_rows[:3]))[0] == 413
    assert call(inference, model, sample_rows[0])[0] == 200


def test_without_flask_responses_are_plain_objects_with_the_same_attributes(monkeypatch, loaded_model, sample_rows):
    # GIVEN inference.py imported where Flask is not installed (the batch benchmark, a bare venv)
    monkeypatch.setitem(sys.modules, "flask", None)
    inference = load_inference()
    # WHEN it answers a good and a bad request
    good = inference.transform_fn(loaded_model, sample_rows[0], "text/csv", "text/csv")
    bad = inference.transform_fn(loaded_model, "1,2", "text/csv", "text/csv")
    # THEN the responses carry status, mimetype, headers and body like Flask's
    assert isinstance(good, inference.PlainResponse)
    assert (good.status_code, good.mimetype, good.headers["Content-Type"]) == (200, "text/csv", "text/csv")
    assert float(good.get_data(as_text=True)) > 0
    assert (bad.status_code, json.loads(bad.get_data())["code"]) == (400, "wrong_feature_count")


def test_a_broken_model_raises_instead_of_blaming_the_client(inference, tmp_path, sample_rows):
    # GIVEN a package whose classifier is corrupt (13 coefficients for 12 features)
    estimator = joblib.load(ARTIFACTS_DIR / "model.joblib")
    classifier = estimator.steps[-1][1]
    classifier.coef_ = np.hstack([classifier.coef_, [[1.0]]])
    joblib.dump(estimator, tmp_path / "model.joblib")
    shutil.copy(ARTIFACTS_DIR / "metadata.json", tmp_path / "metadata.json")
    model = inference.model_fn(str(tmp_path))
    # WHEN a valid row is sent THEN the model's error propagates (the container answers 500)
    with pytest.raises(ValueError):
        inference.transform_fn(model, sample_rows[0], "text/csv", "text/csv")
