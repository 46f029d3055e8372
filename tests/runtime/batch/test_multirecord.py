"""inference.py as Batch Transform drives it: 6 MB MultiRecord payloads split on lines, one answer line per row.

The payloads are made by bench/batch.py's splitter (the same code the throughput figure comes from);
the ID handling follows the stack's DataProcessing (InputFilter "$[1:]", JoinSource Input,
OutputFilter "$[0,-1]").
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from bench.batch import RecordTooLarge, count_lines, split_payloads
from tests.runtime.conftest import ARTIFACTS_DIR

CSV = "text/csv"
SIX_MB = 6 * 1024 * 1024
ROWS = 150_000  # ~7.3 MB of CSV: more than one 6 MB payload


@pytest.fixture(scope="module")
def batch_model(inference, monkeypatch_module):
    """model_fn with the handler's default payload limit (Batch Transform sends up to MaxPayloadInMB)."""
    monkeypatch_module.delenv("INFERENCE_MAX_PAYLOAD_MB", raising=False)
    return inference.model_fn(str(ARTIFACTS_DIR))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def id_rows() -> list[str]:
    """Input rows as the batch stack expects them: an ID, then the 12 features."""
    features = (ARTIFACTS_DIR / "baseline.csv").read_text().splitlines()[1:]
    picks = np.random.default_rng(11).integers(0, len(features), size=ROWS)
    return [f"txn-{index:07d},{features[pick]}" for index, pick in enumerate(picks)]


def input_filter(rows: list[str]) -> bytes:
    """InputFilter "$[1:]": the container sees the features only."""
    return ("\n".join(row.split(",", 1)[1] for row in rows) + "\n").encode()


def score(inference, model, payload: bytes) -> list[str]:
    # The container hands text/csv bodies to transform_fn decoded (sagemaker-containers' Request.content).
    response = inference.transform_fn(model, payload.decode("utf-8"), CSV, CSV)
    assert response.status_code == 200, response.get_data()[:300]
    return response.get_data().decode().splitlines()


def test_payloads_are_whole_lines_within_the_limit_and_lose_nothing(id_rows):
    data = input_filter(id_rows)
    payloads = split_payloads(data, SIX_MB)
    assert len(payloads) == 2
    assert all(len(payload) <= SIX_MB and payload.endswith(b"\n") for payload in payloads)
    assert b"".join(payloads) == data
    assert sum(count_lines(payload) for payload in payloads) == ROWS


def test_every_payload_gets_one_answer_line_per_row_joinable_with_the_ids(inference, batch_model, reference_estimator,
                                                                         id_rows):
    # GIVEN 150,000 rows with IDs, filtered and packed as Batch Transform does
    payloads = split_payloads(input_filter(id_rows), SIX_MB)
    # WHEN each 6 MB payload goes through transform_fn
    answers = [score(inference, batch_model, payload) for payload in payloads]
    # THEN each answer has exactly as many lines as its request (JoinSource=Input pairs them line by line)
    assert [len(lines) for lines in answers] == [count_lines(payload) for payload in payloads]
    # AND OutputFilter "$[0,-1]" on the joined rows gives "<id>,<probability>" in input order, matching sklearn
    joined = [f"{row},{probability}" for row, probability in zip(id_rows, (p for lines in answers for p in lines))]
    output = [",".join((fields[0], fields[-1])) for fields in (line.split(",") for line in joined)]
    assert [line.split(",")[0] for line in output] == [row.split(",")[0] for row in id_rows]
    expected = reference_estimator.predict_proba(
        np.loadtxt([row.split(",", 1)[1] for row in id_rows[:5000]], delimiter=","))[:, 1]
    assert np.allclose([float(line.split(",")[1]) for line in output[:5000]], expected, rtol=0, atol=1e-12)


def test_last_payload_without_a_trailing_newline_still_answers_every_line(inference, batch_model, id_rows):
    body = input_filter(id_rows[:1000]).rstrip(b"\n")
    assert len(score(inference, batch_model, body)) == 1000


def test_a_bad_row_deep_in_a_6_mb_payload_is_refused_naming_its_line(inference, batch_model, id_rows):
    # GIVEN the second payload with one row whose amount is not a number
    second = split_payloads(input_filter(id_rows), SIX_MB)[1].decode().split("\n")
    second[4321] = "n/a," + second[4321].split(",", 1)[1]
    # WHEN it is scored  THEN the answer is a 400 naming that line of the payload (Batch Transform then fails the job)
    response = inference.transform_fn(batch_model, "\n".join(second), CSV, CSV)
    assert response.status_code == 400
    error = json.loads(response.get_data())
    assert (error["line"], error["column"]) == (4322, 1)


def test_a_record_larger_than_the_payload_limit_is_reported():
    with pytest.raises(RecordTooLarge, match="exceeds the 64-byte payload limit"):
        split_payloads(b"short\n" + b"x" * 100 + b"\nshort\n", 64)
