"""The record preprocessor Model Monitor runs per captured request, rendered as the stack ships it."""
from __future__ import annotations

import base64
import csv
import importlib.util
import io
import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from ml_constructs.model_metadata import ModelMetadata
from ml_constructs.model_monitor import render_preprocessor
from ml_constructs.monitor_baseline import baseline_dataset

ARTIFACTS_DIR = Path(__file__).resolve().parents[3] / "artifacts" / "fraud-detector"
SAMPLES = ARTIFACTS_DIR / "samples"


@pytest.fixture(scope="module")
def metadata() -> ModelMetadata:
    return ModelMetadata.load(ARTIFACTS_DIR)


@pytest.fixture(scope="module")
def preprocessor(metadata, tmp_path_factory):
    # GIVEN the file exactly as the stack uploads it, loaded on its own (standard library only)
    path = tmp_path_factory.mktemp("preprocessor") / "record_preprocessor.py"
    path.write_bytes(render_preprocessor(metadata.feature_names))
    spec = importlib.util.spec_from_file_location(f"record_preprocessor_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def captured(data: str, *, content_type: str, encoding: str, output: str = "0.0312\n"):
    """An inference record shaped like the one Model Monitor hands the preprocessor."""
    return SimpleNamespace(
        endpoint_input=SimpleNamespace(data=data, encoding=encoding, observed_content_type=content_type, mode="INPUT"),
        endpoint_output=SimpleNamespace(data=output, encoding="CSV", observed_content_type="text/csv", mode="OUTPUT"),
        event_metadata=SimpleNamespace(event_id="e-1", inference_id="txn-1", inference_time="2025-01-01T00:00:00Z"))


def test_csv_request_becomes_named_features_without_the_response(preprocessor, metadata):
    line = (SAMPLES / "request.csv").read_text().splitlines()[0]
    records = preprocessor.preprocess_handler(captured(line, content_type="text/csv", encoding="CSV"))
    # THEN one record, keyed by feature name, with the request's values and not the returned probability
    assert records == [dict(zip(metadata.feature_names, map(float, line.split(","))))]
    assert 0.0312 not in records[0].values()


def test_every_row_of_a_multi_row_request_is_a_record(preprocessor):
    text = (SAMPLES / "request.csv").read_text()
    records = preprocessor.preprocess_handler(captured(text, content_type="text/csv", encoding="CSV",
                                                       output="0.1\n0.2\n0.3\n0.4\n0.5\n"))
    assert len(records) == len(text.strip().splitlines())


def test_json_requests_in_every_accepted_shape(preprocessor, metadata):
    payload = json.loads((SAMPLES / "request.json").read_text())
    rows = payload["instances"]
    for body, expected in ((payload, len(rows)), (rows, len(rows)), (rows[0], 1)):
        records = preprocessor.preprocess_handler(captured(json.dumps(body), content_type="application/json",
                                                           encoding="JSON"))
        assert len(records) == expected
        assert records[0] == dict(zip(metadata.feature_names, map(float, rows[0])))


def test_base64_captured_body_is_decoded(preprocessor):
    line = (SAMPLES / "request.csv").read_text().splitlines()[0]
    encoded = base64.b64encode(line.encode()).decode()
    assert len(preprocessor.preprocess_handler(captured(encoded, content_type="text/csv", encoding="BASE64"))) == 1


@pytest.mark.parametrize("body, content_type", [
    ("1,2,3", "text/csv"),                                   # wrong width: the endpoint answered 400
    ("a,b,c,d,e,f,g,h,i,j,k,l", "text/csv"),                 # not numbers
    ("1,2,3,4,5,6,7,8,9,10,11,nan", "text/csv"),             # not finite
    ('{"instances": [[true, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]}', "application/json"),
    ('{"rows": [[1]]}', "application/json"),
    ("{not json", "application/json"),
    ("", "text/csv"),
])
def test_requests_the_model_refuses_are_skipped(preprocessor, body, content_type):
    encoding = "JSON" if "json" in content_type else "CSV"
    assert preprocessor.preprocess_handler(captured(body, content_type=content_type, encoding=encoding)) == []


def test_only_the_bad_row_of_a_request_is_dropped(preprocessor):
    good = (SAMPLES / "request.csv").read_text().splitlines()[0]
    records = preprocessor.preprocess_handler(captured(f"{good}\n1,2\n{good}\n", content_type="text/csv", encoding="CSV"))
    assert len(records) == 2


def test_a_logger_may_be_passed(preprocessor):
    messages = []
    logger = SimpleNamespace(info=messages.append)
    assert preprocessor.preprocess_handler(captured("", content_type="text/csv", encoding="CSV"), logger) == []
    assert messages == ["skipped a captured request with no valid feature row"]


def test_records_line_up_with_the_baseline_columns(preprocessor, metadata):
    # GIVEN the baseline the analyzer learned from, and a captured request
    header = next(csv.reader(io.StringIO(baseline_dataset(metadata).decode())))
    line = (SAMPLES / "request.csv").read_text().splitlines()[0]
    record = preprocessor.preprocess_handler(captured(line, content_type="text/csv", encoding="CSV"))[0]
    # THEN the record has exactly the baseline's columns, and in name order they are the baseline's order
    assert sorted(record) == header
