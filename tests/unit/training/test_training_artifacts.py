"""What `python -m training.build` writes: metadata, baseline and samples."""

import csv
import hashlib
import json

import joblib
import numpy as np
from sklearn.metrics import roc_auc_score

from training.data import generate

EXPECTED_FILES = {
    "metadata.json", "model.joblib", "model.onnx", "baseline.csv", "drift_baseline.json",
    "samples/request.csv", "samples/request.json", "samples/rows.jsonl", "samples/labeled.csv",
}


def _files(folder):
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_default_build_writes_both_versions_and_prints_their_auc(build_run):
    # GIVEN the build run with its defaults
    out, completed = build_run
    # THEN both version folders exist with every artifact and nothing else
    for name in ("fraud-detector", "fraud-detector-v2"):
        assert _files(out / name) == EXPECTED_FILES
        version = json.loads((out / name / "metadata.json").read_text())["model_version"]
        # AND the output names each version with its hold-out AUC
        lines = completed.stdout.splitlines()
        assert any(version in line and "hold-out AUC 0." in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["fraud-detector", "fraud-detector-v2"]


def test_metadata_describes_the_pickled_model(model_folder, model_metadata):
    model = joblib.load(model_folder / "model.joblib")
    features = model_metadata["feature_names"]
    # THEN feature names, their count and the model's input width agree
    assert len(features) == model_metadata["n_features"] == model.n_features_in_ == 12
    assert len(set(features)) == len(features)
    assert model_metadata["label_name"] == "is_fraud" and "is_fraud" not in features
    assert model_metadata["positive_class"] == 1 and 1 in model.classes_
    # AND the version is the version line plus the hash of model.joblib's bytes
    digest = hashlib.sha256((model_folder / "model.joblib").read_bytes()).hexdigest()
    line = "v2" if model_folder.name.endswith("-v2") else "v1"
    assert model_metadata["model_version"] == f"{line}-{digest[:12]}"
    # AND it was built with the serving container's libraries
    assert model_metadata["framework"] == "sklearn"
    assert model_metadata["framework_version"] == "1.2-1"
    assert model_metadata["library_versions"]["scikit_learn"] == "1.2.1"
    assert model_metadata["library_versions"]["numpy"] == "1.24.1"
    assert set(model_metadata["library_versions"]) == {
        "python", "scikit_learn", "numpy", "scipy", "joblib", "skl2onnx", "onnx"}


def test_metadata_file_hashes_cover_every_other_file(model_folder, model_metadata):
    # THEN files lists every file but metadata.json, each with its real sha256
    listed = model_metadata["files"]
    assert set(listed) == EXPECTED_FILES - {"metadata.json"}
    for name, digest in listed.items():
        assert hashlib.sha256((model_folder / name).read_bytes()).hexdigest() == digest, name


def test_metadata_text_is_canonical(model_folder, model_metadata):
    # THEN the JSON is sorted, indented by two, ends with one newline, and has no timestamps
    text = (model_folder / "metadata.json").read_text()
    assert text == json.dumps(model_metadata, sort_keys=True, indent=2) + "\n"
    assert not any(word in text.lower() for word in ("time", "date", "created"))


def test_versions_share_name_and_features_but_not_the_model(artifacts):
    v1, v2 = (json.loads((artifacts / f / "metadata.json").read_text())
              for f in ("fraud-detector", "fraud-detector-v2"))
    # THEN a canary can swap them: same model name and feature order, different content
    assert v1["model_name"] == v2["model_name"] == "fraud-detector"
    assert v1["feature_names"] == v2["feature_names"]
    assert v1["model_version"] != v2["model_version"]
    assert v1["files"]["model.joblib"] != v2["files"]["model.joblib"]


def test_holdout_auc_is_reported_and_holds_on_fresh_data(model_folder, model_metadata):
    metrics = model_metadata["metrics"]
    # THEN the reported hold-out AUC shows the synthetic signal was learned
    assert metrics["holdout_auc"] > 0.8
    assert metrics["n_train"] == 40_000 and metrics["n_test"] == 10_000
    assert 0.02 <= metrics["positive_rate"] <= 0.05
    # AND it is no fluke of one split: unseen rows from another seed score alike
    fresh = generate(seed=424242, n_rows=20_000)
    model = joblib.load(model_folder / "model.joblib")
    auc = roc_auc_score(fresh.labels, model.predict_proba(fresh.features)[:, 1])
    assert auc > 0.8
    assert abs(auc - metrics["holdout_auc"]) < 0.03


def test_baseline_is_feature_rows_with_a_feature_header(model_folder, model_metadata):
    with (model_folder / "baseline.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    # THEN the header is exactly the feature names (no label column) ...
    assert rows[0] == model_metadata["feature_names"]
    # ... followed by a few thousand numeric rows of the same width
    values = np.array(rows[1:], dtype=float)
    assert 1000 <= len(values) <= 10_000
    assert values.shape[1] == model_metadata["n_features"]
    assert np.isfinite(values).all()


def test_request_samples_agree_across_formats(model_folder, model_metadata):
    samples = model_folder / "samples"
    n_features = model_metadata["n_features"]
    # GIVEN the CSV body (no header: its first row must already be numbers)
    csv_rows = np.loadtxt(samples / "request.csv", delimiter=",", ndmin=2)
    json_rows = np.array(json.loads((samples / "request.json").read_text())["instances"])
    jsonl_rows = np.array([json.loads(line)["features"]
                           for line in (samples / "rows.jsonl").read_text().splitlines()])
    # THEN all three carry the same 5 rows of features
    assert csv_rows.shape == (5, n_features)
    assert np.array_equal(csv_rows, json_rows) and np.array_equal(csv_rows, jsonl_rows)
    # AND the model gives them different scores (a demo shows more than one outcome)
    model = joblib.load(model_folder / "model.joblib")
    assert len(set(np.round(model.predict_proba(csv_rows)[:, 1], 6))) == 5


def test_labeled_sample_has_ids_features_and_both_labels(model_folder, model_metadata):
    with (model_folder / "samples" / "labeled.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    # THEN its header is id, the features, then the label
    assert rows[0] == ["id", *model_metadata["feature_names"], "is_fraud"]
    body = rows[1:]
    assert 50 <= len(body) <= 200
    ids = [row[0] for row in body]
    assert len(set(ids)) == len(ids) and all(i.startswith("txn-") for i in ids)
    np.array([row[1:-1] for row in body], dtype=float)
    assert {row[-1] for row in body} == {"0", "1"}
