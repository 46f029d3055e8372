"""What model-quality monitoring reads from a captured response, checked against inference.py's real answers.

The model-quality job definition locates the probability with ``ProbabilityAttribute`` (config
``model_quality.probability_attribute``, default ``"0"``): a column of the ``text/csv`` response. These tests pin
that contract to the bytes inference.py returns, for both request types, and show why a JSON-answered inference
cannot be judged (so it must not be labelled).
"""
from __future__ import annotations

import json

import pytest

from stacks.config.monitor import ModelQualityConfig

CSV = "text/csv"
JSON = "application/json"


@pytest.fixture(scope="module")
def column() -> int:
    return int(ModelQualityConfig().probability_attribute)


def respond(inference, loaded_model, body: bytes, content_type: str, accept: str | None) -> tuple[str, str]:
    response = inference.transform_fn(loaded_model, body, content_type, accept)
    assert response.status_code == 200, response.get_data()
    return response.mimetype, response.get_data(as_text=True)


def probability_at(text: str, column: int) -> float:
    """What the job reads: the configured column of the (single-line) CSV response."""
    lines = text.splitlines()
    assert len(lines) == 1, f"one inference, one response line; got {len(lines)}"
    return float(lines[0].split(",")[column])


@pytest.mark.parametrize("content_type", [CSV, JSON])
def test_a_one_row_request_accepting_csv_yields_the_probability_at_the_configured_column(
        inference, loaded_model, sample_rows, reference_estimator, column, content_type):
    # GIVEN one feature row, sent as CSV or as JSON, with Accept: text/csv (what the README asks of labelled traffic)
    row = sample_rows[0]
    body = (row + "\n").encode() if content_type == CSV else json.dumps({"instances": [json.loads(f"[{row}]")]}).encode()
    # WHEN the endpoint answers
    mimetype, text = respond(inference, loaded_model, body, content_type, CSV)
    # THEN the captured response is CSV and its configured column is the model's fraud probability
    assert mimetype == CSV
    expected = reference_estimator.predict_proba([[float(value) for value in row.split(",")]])[0, 1]
    assert probability_at(text, column) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("accept", [None, JSON, "*/*"])
def test_a_json_answer_has_no_column_for_the_job_to_read(inference, loaded_model, sample_rows, column, accept):
    # GIVEN a JSON request that does not ask for CSV (no Accept, JSON, or anything)
    body = json.dumps({"instances": [json.loads(f"[{sample_rows[0]}]")]}).encode()
    mimetype, text = respond(inference, loaded_model, body, JSON, accept)
    # THEN the response is the JSON document, whose first "column" is not a probability: model-quality
    # monitoring as configured cannot judge such inferences, so their labels must not be uploaded
    assert mimetype == JSON
    assert json.loads(text)["predictions"][0]["probability"] >= 0
    with pytest.raises(ValueError):
        probability_at(text, column)
