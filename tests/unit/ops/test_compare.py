"""ops.compare: the two demo versions scored locally with onnxruntime, crafted cases with known answers,
Batch Transform outputs read through botocore's Stubber, and bad input (one line, exit 2)."""
from __future__ import annotations

import csv
import io
import json
import math
import shutil

import joblib
import numpy as np
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import Stubber

from ops import compare
from tests.conftest import REPO_ROOT, shared_botocore_session

V1 = REPO_ROOT / "artifacts" / "fraud-detector"
V2 = REPO_ROOT / "artifacts" / "fraud-detector-v2"
LABELED = V1 / "samples" / "labeled.csv"
BUCKET = "fraud-detector-batch-output"
A_PREFIX = "predictions/2026-12-01/v1-aaa/manual-2026-12-01-00000001/"
B_PREFIX = "predictions/2026-12-01/v2-bbb/manual-2026-12-01-00000002/"

pytestmark = pytest.mark.skipif(not (V1 / "model.onnx").is_file() or not (V2 / "model.onnx").is_file(),
                                reason="demo models not built: python -m training.build --out artifacts")


def run(*argv, s3_client=None):
    out, err = io.StringIO(), io.StringIO()
    code = compare.main([str(arg) for arg in argv], s3_client=s3_client, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def sklearn_scores(model_dir, csv_path):
    """Independent scores: the joblib pipeline the ONNX graph was exported from."""
    metadata = json.loads((model_dir / "metadata.json").read_text())
    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    features = np.asarray([[float(row[name]) for name in metadata["feature_names"]] for row in rows])
    return joblib.load(model_dir / "model.joblib").predict_proba(features)[:, 1], [row["id"] for row in rows]


def copy_model(tmp_path, source, name, **metadata_changes):
    target = tmp_path / name
    shutil.copytree(source, target)
    metadata = json.loads((target / "metadata.json").read_text())
    metadata.update(metadata_changes)
    (target / "metadata.json").write_text(json.dumps(metadata))
    return target


# -- the demo versions ---------------------------------------------------------------------------------------------
def test_the_two_demo_versions_agreement_matches_their_sklearn_decisions(tmp_path):
    # GIVEN the two packaged demo versions and the labeled sample rows (with ids)
    # WHEN they are compared with --json and a picture
    picture = tmp_path / "scores.png"
    code, out, err = run("--a", V1, "--b", V2, "--input", LABELED, "--json", "--plot", picture)
    assert code == 0, err
    result = json.loads(out)
    assert set(result) >= {"agreement_rate", "score_delta", "psi", "top_changes"}
    # THEN the agreement rate is what the original scikit-learn models decide at 0.5 (ONNX is float32: a row
    # within 1e-5 of the threshold may go either way)
    scores_a, ids = sklearn_scores(V1, LABELED)
    scores_b, _ = sklearn_scores(V2, LABELED)
    expected = np.mean((scores_a >= 0.5) == (scores_b >= 0.5))
    assert result["agreement_rate"] == pytest.approx(expected, abs=1 / len(ids))
    assert result["rows"] == len(ids) == 100
    # AND the largest change is the row whose sklearn score moved most, reported with its id
    delta = scores_b - scores_a
    top = result["top_changes"][0]
    assert top["id"] == ids[int(np.argmax(np.abs(delta)))]
    assert top["delta"] == pytest.approx(delta.max(), abs=1e-4)
    assert result["score_delta"]["mean"] == pytest.approx(delta.mean(), abs=1e-4)
    assert len(result["top_changes"]) == 10
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_version_compared_with_itself_agrees_everywhere():
    code, out, _ = run("--a", V1, "--b", V1, "--input", LABELED, "--json")
    result = json.loads(out)
    assert code == 0
    assert result["agreement_rate"] == 1.0 and result["psi"] == 0.0
    assert result["score_delta"]["max_abs"] == 0.0


def test_each_version_decides_at_its_own_threshold(tmp_path):
    # GIVEN the same model packaged twice, B with a decision threshold of 0.2
    b_dir = copy_model(tmp_path, V1, "low-threshold", decision_threshold=0.2, model_version="v1-low")
    # WHEN compared
    code, out, _ = run("--a", V1, "--b", b_dir, "--input", LABELED, "--json")
    result = json.loads(out)
    # THEN scores are identical but every row scoring in [0.2, 0.5) changes decision
    scores, _ = sklearn_scores(V1, LABELED)
    flipped = int(np.sum((scores >= 0.2) & (scores < 0.5)))
    assert flipped > 0
    assert code == 0 and result["score_delta"]["max_abs"] == 0.0
    assert result["flips"] == {"negative_to_positive": flipped, "positive_to_negative": 0}
    assert result["agreement_rate"] == pytest.approx(1 - flipped / 100)
    assert result["b"]["threshold"] == 0.2
    # AND --b-threshold overrides the metadata
    _, out, _ = run("--a", V1, "--b", b_dir, "--input", LABELED, "--json", "--b-threshold", "0.5")
    assert json.loads(out)["agreement_rate"] == 1.0


def test_min_agreement_fails_the_command_when_too_many_decisions_change():
    code, out, err = run("--a", V1, "--b", V2, "--input", LABELED, "--min-agreement", "0.999")
    assert code == 1 and "below --min-agreement" in err and "agreement" in out


def test_ids_default_to_row_numbers_and_the_text_report_names_them(tmp_path):
    # GIVEN a CSV without an id column, its features in another order than the model's
    with open(LABELED) as handle:
        rows = list(csv.DictReader(handle))
    names = list(reversed(json.loads((V1 / "metadata.json").read_text())["feature_names"]))
    plain = tmp_path / "rows.csv"
    plain.write_text(",".join(names) + "\n" + "".join(",".join(row[name] for name in names) + "\n" for row in rows))
    # WHEN compared
    code, out, _ = run("--a", V1, "--b", V2, "--input", plain, "--json", "--top", "1")
    _, reference, _ = run("--a", V1, "--b", V2, "--input", LABELED, "--json", "--top", "1")
    # THEN the columns were matched by name (same scores) and the row number stands for the id
    result, expected = json.loads(out), json.loads(reference)
    assert code == 0 and result["score_delta"] == expected["score_delta"]
    assert result["top_changes"][0]["id"] == str([row["id"] for row in rows].index(expected["top_changes"][0]["id"]) + 1)


# -- PSI and alignment, crafted ------------------------------------------------------------------------------------
def test_psi_is_zero_for_the_same_distribution_and_matches_the_formula_for_a_full_shift():
    reference = np.arange(1000) / 1000.0  # deciles at 0.1, ..., 0.9: ten bins of 10 %
    assert compare.psi(reference, reference) == 0.0
    shifted = np.full(500, 0.99)  # everything in the top bin
    expected = 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (1.0 - 0.1) * math.log(1.0 / 0.1)
    assert compare.psi(reference, shifted) == pytest.approx(expected, rel=1e-3)


def test_outputs_join_on_their_ids_whatever_the_order():
    ids, scores, other = compare.align((["a", "b", "c"], np.array([0.1, 0.2, 0.3])),
                                       (["c", "a", "b"], np.array([0.9, 0.7, 0.8])))
    assert ids == ["a", "b", "c"] and other.tolist() == [0.7, 0.8, 0.9]


@pytest.mark.parametrize("b, message", [
    ((["a", "b"], np.array([0.1, 0.2])), "different row counts (A: 3, B: 2)"),
    ((["a", "b", "x"], np.array([0.1, 0.2, 0.3])), "1 id(s) only in A, e.g. c"),
])
def test_outputs_that_do_not_line_up_are_refused(b, message):
    with pytest.raises(compare.UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compare.align((["a", "b", "c"], np.array([0.1, 0.2, 0.3])), b)


# -- Batch Transform outputs on S3, through the Stubber ------------------------------------------------------------
class StubbedS3:
    def __init__(self) -> None:
        self.client = shared_botocore_session().create_client(
            "s3", region_name="eu-west-1", config=Config(signature_version=UNSIGNED))
        self.stub = Stubber(self.client)

    def output(self, prefix, objects, manifest=None):
        """A finished run: its .out objects (and manifest.json, listed but not read as data)."""
        keys = [prefix + name for name in objects] + ([prefix + "manifest.json"] if manifest else [])
        self.stub.add_response("list_objects_v2", {"Contents": [{"Key": key, "Size": 1} for key in keys],
                                                   "IsTruncated": False},
                               {"Bucket": BUCKET, "Prefix": prefix})
        for name, text in objects.items():
            self.get(prefix + name, text)
        if manifest:
            self.get(prefix + "manifest.json", json.dumps(manifest))
        else:
            self.stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404,
                                       expected_params={"Bucket": BUCKET, "Key": prefix + "manifest.json"})

    def get(self, key, text):
        body = text.encode()
        self.stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))},
                               {"Bucket": BUCKET, "Key": key})

    def run(self, *argv):
        with self.stub:
            result = run(*argv, s3_client=lambda: self.client)
            self.stub.assert_no_pending_responses()
        return result


def test_two_batch_outputs_are_joined_on_ids_and_compared():
    # GIVEN run A scored four rows in two objects, run B the same rows in another order, one flipped
    s3 = StubbedS3()
    s3.output(A_PREFIX, {"part-1.csv.out": "t1,0.10\nt2,0.40\n", "part-2.csv.out": "t3,0.70\nt4,0.05\n"},
              manifest={"model_version": "v1-aaa"})
    s3.output(B_PREFIX, {"part-1.csv.out": "t4,0.06\nt3,0.72\nt2,0.61\nt1,0.10\n"}, manifest={"model_version": "v2-bbb"})
    # WHEN compared
    code, out, err = s3.run("--a-output", f"s3://{BUCKET}/{A_PREFIX}", "--b-output", f"s3://{BUCKET}/{B_PREFIX}",
                            "--json", "--top", "2")
    # THEN t2 changed decision (0.40 -> 0.61 at 0.5), and it is the largest change
    assert code == 0, err
    result = json.loads(out)
    assert result["rows"] == 4 and result["agreement_rate"] == 0.75
    assert result["a"]["label"] == "v1-aaa" and result["b"]["label"] == "v2-bbb"
    assert result["top_changes"][0] == {"id": "t2", "score_a": 0.4, "score_b": 0.61, "delta": 0.21,
                                        "decision_a": 0, "decision_b": 1}
    assert result["top_changes"][1]["id"] == "t3"


def test_batch_outputs_with_different_row_counts_are_refused():
    s3 = StubbedS3()
    s3.output(A_PREFIX, {"part-1.csv.out": "t1,0.10\nt2,0.40\n"})
    s3.output(B_PREFIX, {"part-1.csv.out": "t1,0.10\n"})
    code, out, err = s3.run("--a-output", f"s3://{BUCKET}/{A_PREFIX}", "--b-output", f"s3://{BUCKET}/{B_PREFIX}")
    assert code == 2 and out == ""
    assert err == ("error: the two outputs have different row counts (A: 2, B: 1); compare two runs over the "
                   "same input\n")


def test_an_empty_prefix_is_refused():
    s3 = StubbedS3()
    s3.stub.add_response("list_objects_v2", {"IsTruncated": False}, {"Bucket": BUCKET, "Prefix": A_PREFIX})
    code, _, err = s3.run("--a-output", f"s3://{BUCKET}/{A_PREFIX}", "--b-output", f"s3://{BUCKET}/{B_PREFIX}")
    assert code == 2 and "no .out objects under" in err and err.count("\n") == 1


@pytest.mark.parametrize("error_code, exit_code", [("NoSuchBucket", 2), ("AccessDenied", 3)])
def test_s3_errors_are_one_line(error_code, exit_code):
    s3 = StubbedS3()
    s3.stub.add_client_error("list_objects_v2", service_error_code=error_code, service_message="nope",
                             http_status_code=404 if exit_code == 2 else 403)
    code, _, err = s3.run("--a-output", f"s3://{BUCKET}/{A_PREFIX}", "--b-output", f"s3://{BUCKET}/{B_PREFIX}")
    assert code == exit_code and err.startswith("error: --a-output: cannot read") and err.count("\n") == 1


# -- bad input -----------------------------------------------------------------------------------------------------
def test_different_feature_lists_are_refused(tmp_path):
    names = json.loads((V2 / "metadata.json").read_text())["feature_names"]
    b_dir = copy_model(tmp_path, V2, "other-features", feature_names=[*names[:-1], "is_weekend"])
    code, out, err = run("--a", V1, "--b", b_dir, "--input", LABELED)
    assert code == 2 and out == ""
    assert err == ("error: the two versions take different features (only in A: is_foreign; only in B: "
                   "is_weekend): their scores on one input are not comparable\n")


def bad_csv(tmp_path, text):
    path = tmp_path / "input.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("make_args, message", [
    (lambda tmp: ["--input", tmp / "missing.csv"], "cannot read --input"),
    (lambda tmp: ["--input", bad_csv(tmp, "")], "is empty"),
    (lambda tmp: ["--input", bad_csv(tmp, "id,amount\n1,2\n")], "has no column for feature(s) hour_of_day"),
    (lambda tmp: ["--input", bad_csv(tmp, LABELED.read_text().splitlines()[0] + "\n")], "has a header but no rows"),
    (lambda tmp: ["--input", bad_csv(tmp, LABELED.read_text().replace("7.54", "seven", 1))],
     "line 2: amount is not a number: 'seven'"),
    (lambda tmp: ["--input", bad_csv(tmp, LABELED.read_text().replace("\ntxn-000011,", "\ntxn-000011,1,", 1))],
     "line 3 has 15 fields, the header has 14"),
])
def test_bad_input_files_are_one_line_and_exit_2(tmp_path, make_args, message):
    code, out, err = run("--a", V1, "--b", V2, *make_args(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_unreadable_model_files_are_exit_2(tmp_path):
    broken = copy_model(tmp_path, V2, "broken")
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    no_metadata = tmp_path / "empty"
    no_metadata.mkdir()
    code, _, err = run("--a", V1, "--b", broken, "--input", LABELED)
    assert code == 2 and err.startswith("error: cannot score with") and err.count("\n") == 1
    code, _, err = run("--a", no_metadata, "--b", V2, "--input", LABELED)
    assert code == 2 and err.startswith("error: --a: cannot read") and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["--a", "x", "--b", "y"], "give --a DIR --b DIR --input CSV, or --a-output"),
    (["--a", "x", "--b", "y", "--input", "z", "--a-output", "s3://b/p/"], "not both"),
    (["--a-output", "b/p/", "--b-output", "s3://b/p/"], "--a-output must be an S3 URI"),
    (["--a", V1, "--b", V2, "--input", LABELED, "--a-threshold", "1.5"], "--a-threshold must be between 0 and 1"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message):
    code, _, err = run(*argv, s3_client=lambda: None)
    assert code == 2 and message in err and err.count("\n") == 1
