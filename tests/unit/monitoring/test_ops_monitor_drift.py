"""`python -m ops.monitor drift` on local files, and `run` for the built-in engine."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.conftest import shared_botocore_session
from botocore.response import StreamingBody
from botocore.stub import Stubber

from ops import monitor as ops_monitor
from tests.unit.monitoring.demo import feature_names, model_scores, reference_rows, write_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model_dir(tmp_path_factory.mktemp("model"))


def drawn_rows(count: int = 2000, seed: int = 0) -> np.ndarray:
    """Rows drawn (with replacement) from the training sample the baseline was built from."""
    rows = reference_rows()
    return rows[np.random.default_rng(seed).integers(0, rows.shape[0], count)]


def write_csv(path, rows: np.ndarray, names=None):
    lines = [",".join(names or feature_names())] + [",".join(f"{value:g}" for value in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def drift(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = ops_monitor.main(["drift", *map(str, argv)], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_rows_drawn_from_the_baseline_flag_nothing(model_dir, tmp_path):
    # GIVEN 2000 rows drawn from the training sample
    path = write_csv(tmp_path / "window.csv", drawn_rows())
    # WHEN drift is checked with --json
    code, out, err = drift("--model-dir", model_dir, "--input", path, "--json")
    # THEN exit 0, no feature and not the prediction flagged, and the documented shape
    result = json.loads(out)
    assert code == 0, err
    assert set(result) >= {"features", "prediction", "invalid_rate"}
    assert list(result["features"]) == feature_names()
    assert not any(feature["drift"] for feature in result["features"].values())
    assert all(set(feature) >= {"psi", "ks", "drift"} for feature in result["features"].values())
    assert result["prediction"]["drift"] is False and result["prediction"]["psi"] is not None
    assert result["invalid_rate"] == 0.0


@pytest.mark.parametrize("feature, shift", [("amount", lambda v: v * 3), ("merchant_risk", lambda v: v + 0.3),
                                            ("is_online", lambda v: np.ones_like(v)),
                                            ("account_age_days", lambda v: v / 4)])
def test_shifting_one_feature_flags_exactly_that_feature(model_dir, tmp_path, feature, shift):
    # GIVEN the same drawn rows with one feature shifted
    rows = drawn_rows()
    column = feature_names().index(feature)
    rows[:, column] = shift(rows[:, column])
    path = write_csv(tmp_path / "window.csv", rows)
    # WHEN drift is checked
    code, out, _ = drift("--model-dir", model_dir, "--input", path, "--json")
    # THEN exit 1, and that feature, and only it, is flagged
    result = json.loads(out)
    assert code == 1
    assert [name for name, value in result["features"].items() if value["drift"]] == [feature]


def test_a_data_capture_file_is_read_with_its_captured_scores(model_dir, tmp_path):
    rows = drawn_rows(500, seed=1)
    scores = model_scores(rows)
    lines = [json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
                          "data": json.dumps({"instances": [row.tolist()]})},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "encoding": "JSON",
                           "data": json.dumps({"predictions": [{"probability": float(score), "prediction": 0}]})}},
        "eventMetadata": {"eventId": str(index)}, "eventVersion": "0"}) for index, (row, score) in enumerate(zip(rows, scores))]
    path = tmp_path / "capture.jsonl"
    path.write_text("\n".join(lines) + "\nnot json\n")
    code, out, _ = drift("--model-dir", model_dir, "--input", path, "--json")
    result = json.loads(out)
    assert code == 0 and result["rows_seen"] == 501 and result["invalid"]["unreadable"] == 1
    assert result["prediction"]["drift"] is False


def test_the_table_names_each_feature_and_the_invalid_counts(model_dir, tmp_path):
    path = tmp_path / "window.csv"
    write_csv(path, drawn_rows(300))
    with path.open("a") as handle:
        handle.write("1,2\n" * 20 + (",".join(["x"] * 12) + "\n") * 10)
    code, out, _ = drift("--model-dir", model_dir, "--input", path)
    # THEN 30 of 330 rows (9%) are invalid, above the 5% threshold: exit 1, and the table says why
    assert code == 1
    assert "330 rows, invalid rate 0.0909 (wrong_width 20, non_numeric 10)" in out
    assert all(name in out for name in feature_names())


@pytest.mark.parametrize("content, message", [
    ("", "holds no rows to analyse (no data)"),
    (",".join(feature_names()) + "\n", "holds no rows to analyse (no data)"),
    ("a,b\n1,2\n", "the CSV header lacks feature(s) amount"),
    (b"\xff\xfe\x00", "is not UTF-8 text"),
])
def test_unusable_inputs_are_one_line_usage_errors(model_dir, tmp_path, content, message):
    path = tmp_path / "input.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out, err = drift("--model-dir", model_dir, "--input", path)
    assert code == 2 and out == ""
    assert message in err and len(err.splitlines()) == 1 and err.startswith("error: ")


def test_a_missing_file_or_model_folder_is_a_usage_error(model_dir, tmp_path):
    code, _, err = drift("--model-dir", model_dir, "--input", tmp_path / "nope.csv")
    assert code == 2 and "cannot read" in err
    code, _, err = drift("--model-dir", tmp_path, "--input", tmp_path / "nope.csv")
    assert code == 2 and "metadata.json" in err


def test_without_a_drift_baseline_it_is_built_from_baseline_csv(model_dir, tmp_path):
    # GIVEN a model folder packaged before drift baselines existed
    legacy = write_model_dir(tmp_path / "legacy")
    (legacy / "drift_baseline.json").unlink()
    path = write_csv(tmp_path / "window.csv", drawn_rows())
    # THEN the check still runs and gives the same numbers
    assert drift("--model-dir", legacy, "--input", path, "--json")[1] == \
        drift("--model-dir", model_dir, "--input", path, "--json")[1]


def _lambda_client(payload: bytes, function_error: str | None = None):
    client = shared_botocore_session().create_client("lambda", region_name="eu-west-1",
                                                          aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    response = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(payload), len(payload))}
    if function_error:
        response["FunctionError"] = function_error
    stubber.add_response("invoke", response, {"FunctionName": "fraud-detector-drift", "InvocationType": "RequestResponse",
                                              "Payload": json.dumps({"window_minutes": 60}).encode()})
    stubber.activate()
    return client


@pytest.mark.parametrize("payload, error, code", [
    (b'{"status": "ok", "drift": false}', None, 0),
    (b'{"status": "ok", "drift": true, "drifted_features": ["amount"]}', None, 1),
    (b'{"errorMessage": "boom"}', "Unhandled", 1),
])
def test_run_invokes_the_builtin_drift_job(payload, error, code):
    out, err = io.StringIO(), io.StringIO()
    result = ops_monitor.main(["run", "--function", "fraud-detector-drift"], lambda_client=_lambda_client(payload, error),
                              out=out, err=err)
    assert result == code
    if error:
        assert "the drift job failed" in err.getvalue()
    else:
        assert json.loads(out.getvalue())["drift"] is (code == 1)


@pytest.mark.parametrize("option", ["--psi-threshold", "--ks-threshold"])
def test_a_threshold_that_is_not_above_zero_is_a_usage_error(model_dir, tmp_path, option, capsys):
    # GIVEN a negative threshold  WHEN drift runs  THEN argparse refuses it (exit 2) before any file is read
    code = ops_monitor.main(["drift", "--model-dir", str(model_dir), "--input", str(tmp_path / "none.csv"),
                             option, "-0.1"])
    assert code == 2 and f"argument {option}: must be" in capsys.readouterr().err
