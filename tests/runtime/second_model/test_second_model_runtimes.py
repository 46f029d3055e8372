"""A model other than the demo (5 features, a forest, threshold 0.3) through every pattern's runtime code:
the SageMaker hooks (directly and behind `python -m serve`), the Lambda handler and the edge program."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.conftest import start_server
from tests.runtime.second_model.conftest import FEATURES, NAME, THRESHOLD

REPO_ROOT = Path(__file__).resolve().parents[3]
LAMBDA_SRC = REPO_ROOT / "lambda_src"
EDGE_DIR = REPO_ROOT / "edge_component"
#: ONNX computes in float32; training.package refused the model if it differed by more than this.
ONNX_TOLERANCE = 1e-4


def _csv(rows: np.ndarray) -> str:
    return "".join(",".join(repr(float(value)) for value in row) + "\n" for row in rows)


def _expected(estimator, rows: np.ndarray) -> list[float]:
    return estimator.predict_proba(rows)[:, 1].tolist()


# --- SageMaker hooks (inference.py) ----------------------------------------------------------------

@pytest.fixture(scope="module")
def second_loaded(inference, second_model_dir):
    return inference.model_fn(str(second_model_dir))


def test_metadata_is_the_packaged_models(second_metadata, second_estimator):
    # THEN the package describes this model, not the demo: its name, 5 features in order, its threshold
    assert second_metadata["model_name"] == NAME
    assert second_metadata["feature_names"] == list(FEATURES) and second_metadata["n_features"] == 5
    assert second_metadata["decision_threshold"] == THRESHOLD
    assert second_estimator.n_features_in_ == 5


def test_inference_scores_five_feature_rows_exactly_as_predict_proba(inference, second_loaded, second_estimator,
                                                                       second_rows, second_metadata):
    # WHEN the 1.2-1 container's hook scores 5-wide CSV rows
    response = inference.transform_fn(second_loaded, _csv(second_rows), "text/csv", "application/json")
    # THEN it answers 200 with predict_proba's class-1 column, bit for bit, and the metadata's threshold
    assert response.status_code == 200
    body = json.loads(response.get_data())
    probabilities = [p["probability"] for p in body["predictions"]]
    assert probabilities == _expected(second_estimator, second_rows)
    assert [p["prediction"] for p in body["predictions"]] == [int(p >= THRESHOLD) for p in probabilities]
    assert body["model_version"] == second_metadata["model_version"]
    # AND the rows straddle the threshold, so a default of 0.5 would have answered differently
    assert any(THRESHOLD <= p < 0.5 for p in probabilities)


@pytest.mark.parametrize("width", [4, 12])
def test_inference_refuses_rows_of_another_width(inference, second_loaded, width):
    # WHEN a row of the demo's 12 features (or too few) arrives
    rows = np.ones((2, width))
    for content_type, body in (("text/csv", _csv(rows)), ("application/json", json.dumps(rows.tolist()))):
        response = inference.transform_fn(second_loaded, body, content_type, "application/json")
        # THEN it is a 400 naming the expected width, not a 500
        assert response.status_code == 400
        error = json.loads(response.get_data())
        assert error["code"] == "wrong_feature_count" and error["expected"] == 5 and error["got"] == width


def test_serve_scores_the_packaged_model(second_model_dir, second_estimator, second_rows, tmp_path):
    # GIVEN `python -m serve --model-dir <packaged folder>`
    server = start_server("--model-dir", str(second_model_dir), log=tmp_path / "serve.log")
    try:
        # WHEN 5-wide rows and 12-wide rows are posted
        status, _, body = server.request("POST", "/invocations", body=_csv(second_rows).encode(),
                                          headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        bad_status, _, bad_body = server.request("POST", "/invocations", body=_csv(np.ones((1, 12))).encode(),
                                                 headers={"Content-Type": "text/csv"})
    finally:
        server.stop()
    # THEN the scores are predict_proba's, and the wrong width is a 400 with its reason
    assert status == 200
    assert [float(line) for line in body.decode().split()] == _expected(second_estimator, second_rows)
    assert bad_status == 400 and json.loads(bad_body)["code"] == "wrong_feature_count"


# --- Lambda (ONNX) ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def second_handler(second_model_dir, second_metadata):
    """lambda_src/handler.py initialised with the packaged folder, as the deployed function would be."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_LOCAL_PATH", str(second_model_dir))
        patch.setenv("MODEL_VERSION", second_metadata["model_version"])
        patch.setenv("POWERTOOLS_SERVICE_NAME", f"{NAME}-serverless")
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test/SecondModel")
        for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED"):
            patch.delenv(name, raising=False)
        patch.syspath_prepend(str(LAMBDA_SRC))
        spec = importlib.util.spec_from_file_location("second_model_lambda_handler", LAMBDA_SRC / "handler.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
        for name in [name for name in sys.modules
                     if name == "serverless_inference" or name.startswith("serverless_inference.")]:
            del sys.modules[name]


def _invoke(handler, body: dict) -> tuple[int, dict]:
    from tests.runtime.serverless.conftest import LambdaContext, api_event

    response = handler.lambda_handler(api_event(json.dumps(body)), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_lambda_scores_five_feature_rows_like_predict_proba(second_handler, second_estimator, second_rows,
                                                           second_metadata):
    # WHEN the API receives the 5-wide rows
    status, body = _invoke(second_handler, {"instances": second_rows.tolist()})
    # THEN each answer agrees with predict_proba (ONNX float32, within the packaging parity limit)
    assert status == 200
    expected = np.array(_expected(second_estimator, second_rows))
    predictions = body["predictions"]
    scores = np.array([p["confidence"] if p["prediction"] == 1 else 1.0 - p["confidence"] for p in predictions])
    np.testing.assert_allclose(scores, expected, atol=ONNX_TOLERANCE, rtol=0)
    clear = np.abs(expected - THRESHOLD) > ONNX_TOLERANCE
    assert [p["prediction"] for p in np.array(predictions)[clear]] == (expected[clear] >= THRESHOLD).astype(int).tolist()
    assert {p["model_version"] for p in predictions} == {second_metadata["model_version"]}


def test_lambda_refuses_rows_of_another_width(second_handler):
    status, body = _invoke(second_handler, {"instances": [[1.0] * 12]})
    assert status == 400 and "5" in body["error"]


# --- Edge program ----------------------------------------------------------------------------------

def test_edge_program_scores_with_the_metadatas_version_and_threshold(second_model_dir, second_estimator,
                                                                      second_rows, second_metadata, tmp_path):
    # GIVEN JSON Lines of 5-wide rows and one 12-wide row
    lines = [json.dumps({"features": row, "id": index}) for index, row in enumerate(second_rows.tolist())]
    lines.append(json.dumps({"features": [1.0] * 12, "id": "wide"}))
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(lines) + "\n")
    # WHEN the edge program runs standalone on the packaged folder, reading its metadata.json
    completed = subprocess.run(
        [sys.executable, str(EDGE_DIR / "main.py"), "standalone", "--artifacts-dir", str(second_model_dir),
         "--model", "model.onnx", "--metadata", "metadata.json", "--input", str(source)],
        capture_output=True, text=True, timeout=60, cwd=EDGE_DIR)
    assert completed.returncode == 0, completed.stderr
    results = [json.loads(line) for line in completed.stdout.splitlines()]
    scored, refused = results[:-1], results[-1]
    # THEN every row is scored like predict_proba, with the metadata's threshold and version
    expected = np.array(_expected(second_estimator, second_rows))
    scores = np.array([r["confidence"] if r["prediction"] == 1 else 1.0 - r["confidence"] for r in scored])
    np.testing.assert_allclose(scores, expected, atol=ONNX_TOLERANCE, rtol=0)
    clear = np.abs(expected - THRESHOLD) > ONNX_TOLERANCE
    assert np.array_equal(np.array([r["prediction"] for r in scored])[clear], (expected[clear] >= THRESHOLD))
    assert {r["model_version"] for r in scored} == {second_metadata["model_version"]}
    # AND the 12-wide row is refused to the error topic, naming the width
    assert refused["id"] == "wide" and "expects 5" in refused["error"]
