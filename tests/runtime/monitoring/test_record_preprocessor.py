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
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ml_constructs.common.model_metadata import ModelMetadata
from ml_constructs.monitoring.model_monitor import render_preprocessor
from ml_constructs.monitoring.model_monitor_baseline.construct import baseline_dataset
from tests.runtime.conftest import load_inference

ARTIFACTS_DIR = Path(__file__).resolve().parents[3] / "artifacts" / "fraud-detector"
SAMPLES = ARTIFACTS_DIR / "samples"


@pytest.fixture(scope="module")
def metadata() -> ModelMetadata:
    return ModelMetadata.load(ARTIFACTS_DIR)


@pytest.fixture(scope="module")
def endpoint():
    """The endpoint's own parser (inference/inference.py): the grammar the preprocessor must share."""
    return load_inference()


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


_VALID_ROWS = st.lists(st.lists(st.floats(-1e6, 1e6), min_size=12, max_size=12), min_size=1, max_size=4)


@st.composite
def capture_records(draw):
    """(record, expected rows or None): random or JSON-shaped bodies, any encoding and content type, and
    valid requests (CSV or JSON, sometimes base64) whose expected rows are known."""
    if draw(st.booleans()):
        rows = draw(_VALID_ROWS)
        as_json = draw(st.booleans())
        body = json.dumps({"instances": rows}) if as_json else "\n".join(",".join(map(repr, row)) for row in rows)
        encoding = draw(st.sampled_from(["BASE64", "JSON" if as_json else "CSV"]))
        if encoding == "BASE64":
            body = base64.b64encode(body.encode()).decode()
        content_type = "application/json" if as_json else "text/csv"
        return SimpleNamespace(data=body, encoding=encoding, observed_content_type=content_type, mode="INPUT"), rows
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
    return SimpleNamespace(data=body, encoding=encoding, observed_content_type=content_type, mode="INPUT"), None


VALID_CSV = ",".join(["0.5"] * 12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=capture_records())
@example(case=(SimpleNamespace(data=VALID_CSV, encoding="CSV", observed_content_type="text/csv"), [[0.5] * 12]))
@example(case=(SimpleNamespace(data=json.dumps([[1.0] * 12, [2.0] * 12]), encoding="JSON",
                               observed_content_type="application/json"), [[1.0] * 12, [2.0] * 12]))
def test_no_capture_record_makes_the_preprocessor_raise(preprocessor, metadata, case):
    # GIVEN any capture record at all (some of them valid requests whose rows are known)
    endpoint_input, expected = case
    record = SimpleNamespace(endpoint_input=endpoint_input, endpoint_output=None, event_metadata=None)
    # WHEN the analyzer hands it over
    found = preprocessor.preprocess_handler(record)
    # THEN it returns (never raises) only complete, finite, named rows
    assert isinstance(found, list)
    for row in found:
        assert list(row) == list(metadata.feature_names)
        assert all(isinstance(value, float) and value == value and abs(value) != float("inf")
                   for value in row.values())
    # AND a valid request gives exactly its rows, in order, named by feature
    if expected is not None:
        assert found == [dict(zip(metadata.feature_names, map(float, row))) for row in expected]


_CSV_VALUES = st.one_of(st.floats(-1e6, 1e6).map(repr), st.sampled_from(["1", " 2", "3 ", "1e3", "", "x", "nan",
                                                                         "1_0", "\u0663"]))
_CSV_LINES = st.one_of(st.lists(_CSV_VALUES, min_size=12, max_size=12).map(",".join),
                       st.lists(_CSV_VALUES, min_size=11, max_size=13).map(",".join), st.sampled_from(["", " "]))


@st.composite
def csv_requests(draw):
    lines = draw(st.lists(_CSV_LINES, min_size=1, max_size=6))
    body = lines[0]
    for line in lines[1:]:
        body += draw(st.sampled_from(["\n", "\r\n", "\r"])) + line
    return draw(st.sampled_from(["", "\ufeff"])) + body + draw(st.sampled_from(["", "\n", "\r\n"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=csv_requests())
@example(body=VALID_CSV + "\r" + VALID_CSV)      # one line to the endpoint (a bare CR does not end a line)
@example(body=VALID_CSV + "\r\n" + VALID_CSV + "\r\n")
@example(body="\ufeff" + VALID_CSV)
def test_a_csv_request_the_endpoint_accepts_gives_the_endpoints_rows(preprocessor, metadata, endpoint, body):
    # GIVEN a CSV request with CR, CRLF, blank lines or a byte order mark mixed in
    # WHEN the endpoint parses it and the preprocessor reads its capture
    try:
        rows = endpoint.parse_csv(body.encode(), 12).tolist()
    except endpoint.InputError:
        rows = None
    found = preprocessor.records(SimpleNamespace(data=body, encoding="CSV", observed_content_type="text/csv"))
    # THEN a request the endpoint scored gives exactly its rows, and one it refused for its line structure
    # (rows joined by a bare CR) gives no row the endpoint never saw
    if rows is not None:
        assert found == [dict(zip(metadata.feature_names, row)) for row in rows]
    assert len(found) <= len([line for line in body.split("\n") if line.strip()])


@pytest.mark.parametrize("body", ["\ufeff" + json.dumps({"instances": [[0.5] * 12]}), "\ufeff" + json.dumps([0.5] * 12)])
@pytest.mark.parametrize("encoding", ["JSON", "BASE64"])
def test_a_json_request_with_a_byte_order_mark_is_read_as_the_endpoint_reads_it(preprocessor, endpoint, body, encoding):
    # GIVEN a JSON request starting with a UTF-8 byte order mark, which the endpoint accepts
    assert endpoint.parse_json(body.encode(), 12).tolist() == [[0.5] * 12]
    data = base64.b64encode(body.encode()).decode() if encoding == "BASE64" else body
    # WHEN its capture is preprocessed THEN its row is a record, as the endpoint scored it
    found = preprocessor.records(SimpleNamespace(data=data, encoding=encoding, observed_content_type="application/json"))
    assert len(found) == 1


def test_rows_joined_by_a_bare_cr_are_not_split(preprocessor):
    # GIVEN a capture of two rows joined by a bare CR, which the endpoint reads as one 23-value line and refuses
    body = VALID_CSV + "\r" + VALID_CSV
    # WHEN it is preprocessed THEN no record comes out of it
    assert preprocessor.records(SimpleNamespace(data=body, encoding="CSV", observed_content_type="text/csv")) == []
