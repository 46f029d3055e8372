"""Captured traffic into a window: every bad record counted by reason, never a crash, never a silent zero."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

ROW = [168.87, 20, 0.1186, 8.277, 3.461, 1.8606, 4, 512, 1, 0, 0, 0]
CSV_ROW = ",".join(map(str, ROW))


def capture(body: str, *, content_type: str = "text/csv", encoding: str = "CSV", output: str | None = "0.25\n",
            output_type: str = "text/csv", inference_id: str | None = None) -> str:
    record = {"captureData": {
        "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": body, "encoding": encoding}},
        "eventMetadata": {"eventId": "e"}, "eventVersion": "0"}
    if output is not None:
        record["captureData"]["endpointOutput"] = {"observedContentType": output_type, "mode": "OUTPUT",
                                                   "data": output, "encoding": "CSV"}
    if inference_id:
        record["eventMetadata"]["inferenceId"] = inference_id
    return json.dumps(record)


def read(readers, lines):
    window = readers.WindowBuilder(12)
    readers.read_capture_lines(lines, window)
    return window


def test_valid_csv_json_and_base64_captures_are_read_with_their_scores(readers):
    two_rows = json.dumps({"instances": [ROW, ROW]})
    lines = [capture(CSV_ROW, inference_id="id-1"),
             capture(two_rows, content_type="application/json", encoding="JSON",
                     output=json.dumps({"predictions": [{"probability": 0.1}, {"probability": 0.2}]}),
                     output_type="application/json"),
             capture(base64.b64encode(CSV_ROW.encode()).decode(), encoding="BASE64", output="0.5\n")]
    window = read(readers, lines)
    features, scores = window.arrays()
    assert window.rows_seen == 4 and sum(window.invalid.values()) == 0
    assert features.shape == (4, 12) and np.allclose(features[0], ROW)
    assert scores.tolist() == [0.25, 0.1, 0.2, 0.5]
    assert window.ids == ["id-1", None, None, None]  # only a one-row request can be labelled by its id


@pytest.mark.parametrize("line, reason", [
    (capture(CSV_ROW + ",1"), "wrong_width"),
    (capture(CSV_ROW.rsplit(",", 1)[0]), "wrong_width"),
    (capture(CSV_ROW.replace("168.87", "abc")), "non_numeric"),
    (capture(CSV_ROW.replace("168.87", "1_0")), "non_numeric"),
    (capture(CSV_ROW.replace("168.87", "nan")), "not_finite"),
    (capture(CSV_ROW.replace("168.87", "-inf")), "not_finite"),
    (capture(json.dumps([[*ROW[:2], "12.5", *ROW[3:]]]), content_type="application/json"), "non_numeric"),
    (capture(json.dumps([[*ROW[:2], True, *ROW[3:]]]), content_type="application/json"), "non_numeric"),
    (capture("not base64!", encoding="BASE64"), "unreadable"),
    (capture("{instances: ", content_type="application/json"), "unreadable"),
    (capture(""), "unreadable"),
    ("this is not JSON", "unreadable"),
    (json.dumps({"captureData": {}}), "unreadable"),
    (b"\xff\xfe not utf-8", "unreadable"),
    ("[" * 100000, "unreadable"),
])
def test_each_bad_record_is_counted_under_its_reason(readers, line, reason):
    # GIVEN one good capture and one bad one
    window = read(readers, [capture(CSV_ROW), line])
    # THEN both are seen, the bad one is counted once under its reason and the good one is kept
    assert window.rows_seen == 2
    assert window.invalid[reason] == 1 and sum(window.invalid.values()) == 1
    features, _ = window.arrays()
    assert np.allclose(features[0], ROW)


def test_a_non_finite_value_is_missing_for_its_feature_only(readers, stats, baseline):
    window = read(readers, [capture(CSV_ROW), capture(CSV_ROW.replace("168.87", "NaN"))])
    features, scores = window.arrays()
    report = stats.drift_report(features, scores, baseline, thresholds=stats.Thresholds(), rows_seen=window.rows_seen,
                                invalid=window.invalid)
    assert report["features"]["amount"]["missing_rate"] == 0.5
    assert report["features"]["hour_of_day"]["missing_rate"] == 0.0
    assert report["invalid_rate"] == 0.5 and report["invalid_breach"]


def test_a_response_that_does_not_match_the_request_keeps_the_rows_without_scores(readers):
    window = read(readers, [capture(CSV_ROW + "\n" + CSV_ROW, output="0.1\n")])
    _, scores = window.arrays()
    assert window.rows_seen == 2 and np.isnan(scores).all()


def test_an_empty_window_reports_no_data_not_zero(readers, stats, baseline):
    window = read(readers, ["", "  "])
    features, scores = window.arrays()
    report = stats.drift_report(features, scores, baseline, thresholds=stats.Thresholds(), rows_seen=window.rows_seen,
                                invalid=window.invalid)
    assert report["status"] == "no data" and report["invalid_rate"] is None
    assert all(result["psi"] is None and result["status"] == "no data" for result in report["features"].values())


def test_a_window_of_only_invalid_rows_reports_the_invalid_rate_and_no_drift_values(readers, stats, baseline):
    window = read(readers, ["garbage", capture("1,2,3")])
    features, scores = window.arrays()
    report = stats.drift_report(features, scores, baseline, thresholds=stats.Thresholds(), rows_seen=window.rows_seen,
                                invalid=window.invalid)
    assert report["status"] == "ok" and report["invalid_rate"] == 1.0 and report["rows_valid"] == 0
    assert report["features"]["amount"]["psi"] is None and report["features"]["amount"]["status"] == "no data"


def test_serverless_samples(readers):
    window = readers.WindowBuilder(12)
    readers.read_sample_lines([json.dumps({"inference_id": "a", "features": ROW, "score": 0.3}),
                               json.dumps({"inference_id": "b", "features": ROW[:3], "score": 0.3}),
                               json.dumps({"inference_id": "c", "features": ROW}), "{broken", ""], window)
    _, scores = window.arrays()
    assert window.rows_seen == 4
    assert window.invalid == {"unreadable": 1, "wrong_width": 1, "non_numeric": 0, "not_finite": 0}
    assert window.ids == ["a", "c"] and scores[0] == 0.3 and np.isnan(scores[1])


def test_batch_input_joined_to_its_output_by_id(readers):
    window = readers.WindowBuilder(12)
    readers.read_batch(f"t1,{CSV_ROW}\nt2,{CSV_ROW}\nt3,1,2\n", "t2,0.75\nt1,0.5\n", window)
    _, scores = window.arrays()
    assert window.rows_seen == 3 and window.invalid["wrong_width"] == 1
    assert window.ids == ["t1", "t2"] and scores.tolist() == [0.5, 0.75]


def test_a_header_csv_is_read_by_column_name(readers):
    names = [f"f{index}" for index in range(12)]
    header = ",".join(reversed(names)) + ",extra"
    window = readers.WindowBuilder(12)
    readers.read_header_csv(f"{header}\n{','.join(map(str, reversed(ROW)))},x\n1,2\n", names, window)
    features, _ = window.arrays()
    assert np.allclose(features[0], ROW) and window.invalid["wrong_width"] == 1
    with pytest.raises(ValueError, match="lacks feature"):
        readers.read_header_csv("a,b\n1,2\n", names, readers.WindowBuilder(12))
