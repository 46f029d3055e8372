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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_constructs.common.model_metadata import ModelMetadata
from ml_constructs.monitoring.model_monitor import render_preprocessor
from ml_constructs.monitoring.model_monitor_baseline.construct import baseline_dataset

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
    ("1_0,2,3,4,5,6,7,8,9,10,11,12", "text/csv"),           # float() reads 1_0 as 10; the endpoint refuses it
    ("\u0663,2,3,4,5,6,7,8,9,10,11,12", "text/csv"),         # an Arabic-Indic 3: not ASCII, refused
    ('[["1", 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]', "application/json"),  # a JSON string is not a number
    ("[[1" + "0" * 400 + ", 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]", "application/json"),  # past float's range
    ("[" * 100_000 + "]" * 100_000, "application/json"),    # deeper than the JSON decoder's recursion
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


@pytest.mark.parametrize("data", [
    base64.b64encode(b"\xff\xfe1,2,3").decode(),   # valid base64 of bytes that are not UTF-8
    "not base64 at all!",                          # not base64
    "QUJD=",                                       # bad padding
    "\u00e9t\u00e9",                                       # non-ASCII text where base64 belongs
])
def test_malformed_base64_captures_are_skipped(preprocessor, data):
    assert preprocessor.preprocess_handler(captured(data, content_type="application/octet-stream",
                                                    encoding="BASE64")) == []


def test_fields_of_unexpected_types_are_skipped(preprocessor):
    # GIVEN capture records whose fields are not the strings Model Monitor writes
    for record in (SimpleNamespace(data=b"1,2", encoding="CSV", observed_content_type="text/csv"),
                   SimpleNamespace(data=["1"], encoding="JSON", observed_content_type=None),
                   SimpleNamespace(data="1,2", encoding="CSV", observed_content_type=7),
                   SimpleNamespace()):
        # THEN each is skipped rather than raised
        assert preprocessor.records(record) == []


_TEXT = st.text(st.characters(codec="utf-8"), max_size=300)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=14) | st.dictionaries(st.sampled_from(["instances", "rows", "x"]), inner,
                                                                 max_size=3),
    max_leaves=40)


@st.composite
def capture_records(draw):
    """Any capture record: random or JSON-shaped bodies, any of Model Monitor's encodings, any content type."""
    encoding = draw(st.sampled_from(["CSV", "JSON", "BASE64", "", None]))
    body = draw(st.one_of(_TEXT, _JSONISH.map(json.dumps),
                          st.lists(st.lists(st.sampled_from(["1", "2.5", "-0", "1e999", "nan", "1_0", "\u0663", " ",
                                                             "", "x", "0x1", "1e5"]), min_size=11, max_size=13),
                                   max_size=4).map(lambda rows: "\n".join(",".join(row) for row in rows))))
    if encoding == "BASE64":
        raw = draw(st.one_of(st.just(body.encode()), st.binary(max_size=200)))
        body = draw(st.sampled_from([base64.b64encode(raw).decode(), body]))
    content_type = draw(st.sampled_from(["text/csv", "application/json", "application/jsonlines", "", None,
                                         "application/octet-stream"]))
    return SimpleNamespace(data=body, encoding=encoding, observed_content_type=content_type, mode="INPUT")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint_input=capture_records())
def test_no_capture_record_makes_the_preprocessor_raise(preprocessor, metadata, endpoint_input):
    # GIVEN any capture record at all
    record = SimpleNamespace(endpoint_input=endpoint_input, endpoint_output=None, event_metadata=None)
    # WHEN the analyzer hands it over
    found = preprocessor.preprocess_handler(record)
    # THEN it returns (never raises) only complete, finite, named rows
    assert isinstance(found, list)
    for row in found:
        assert list(row) == list(metadata.feature_names)
        assert all(isinstance(value, float) and value == value and abs(value) != float("inf")
                   for value in row.values())
