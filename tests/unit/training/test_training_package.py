"""`python -m training.package`: a user's model becomes a deployable folder, or is refused in one line."""
from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import SelfTrainingClassifier

from tests.runtime.second_model.conftest import FEATURES, LABEL, run_package, training_data, write_csv
from training import package


@pytest.fixture(scope="module")
def data():
    return training_data(rows=200)


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory, data):
    return write_csv(tmp_path_factory.mktemp("data") / "sample.csv", *data)


def _saved(tmp_path, estimator, name="model.joblib"):
    joblib.dump(estimator, tmp_path / name)
    return tmp_path / name


class InProcess:
    """The command's refusal path run in this process (no interpreter start-up per case): same parser, same
    error handling, same exit code and stderr."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *args):
        self.capsys.readouterr()
        try:
            code = package.main(list(args), pin_hash_seed=False)
        except SystemExit as exit_:  # argparse usage errors
            code = exit_.code
        captured = self.capsys.readouterr()
        return type("Completed", (), {"returncode": code, "stdout": captured.out, "stderr": captured.err})()


def _package(tmp_path, model, data_csv, *extra, runner=run_package):
    return runner("--model", str(model), "--data", str(data_csv), "--name", "my-model",
                       "--out", str(tmp_path / "out"), *extra)


def test_a_pipeline_is_packaged_with_every_file_and_a_parity_report(tmp_path, data, sample_csv):
    # GIVEN a scaler + logistic regression pipeline saved with joblib
    model = _saved(tmp_path, make_pipeline(StandardScaler(), LogisticRegression()).fit(*data))
    # WHEN it is packaged with a label column
    completed = _package(tmp_path, model, sample_csv, "--label", LABEL)
    # THEN it succeeds, reports the ONNX parity, and writes the whole folder
    assert completed.returncode == 0, completed.stderr
    assert "ONNX max abs difference" in completed.stdout
    out = tmp_path / "out"
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == {"metadata.json", "model.joblib", "model.onnx", "baseline.csv", "drift_baseline.json",
                     "samples/request.csv", "samples/request.json", "samples/rows.jsonl", "samples/labeled.csv"}
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["feature_names"] == list(FEATURES) and metadata["label_name"] == LABEL
    assert (out / "baseline.csv").read_text().splitlines()[0] == ",".join(FEATURES)
    assert (out / "samples/labeled.csv").read_text().splitlines()[0] == ",".join(["id", *FEATURES, LABEL])


def test_without_a_label_there_is_no_labeled_sample_and_packaging_is_reproducible(tmp_path, data, sample_csv):
    features_only = write_csv(tmp_path / "features.csv", data[0], None)
    model = _saved(tmp_path, LogisticRegression().fit(*data))
    first = _package(tmp_path, model, features_only)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "out"
    assert not (out / "samples/labeled.csv").exists()
    assert json.loads((out / "metadata.json").read_text())["label_name"] is None
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # WHEN packaged again THEN the bytes are the same (the version never changes without a change)
    assert _package(tmp_path, model, features_only).returncode == 0
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def _version_changed(path):
    # The pickle records the scikit-learn version it was saved with; rewrite it as a newer release.
    raw = path.read_bytes()
    assert raw.count(b"1.2.1") >= 1
    path.write_bytes(raw.replace(b"1.2.1", b"1.4.2"))


def _three_classes(data):
    features, labels = data
    return LogisticRegression().fit(features, np.where(features[:, 0] > 65, 2, labels))


REFUSALS = {
    "regressor": (lambda d: LinearRegression().fit(*d), None, "has no predict_proba"),
    "multi-class": (_three_classes, None, "has 3 classes"),
    "string classes": (lambda d: LogisticRegression().fit(d[0], np.where(d[1] == 1, "yes", "no")), None,
                       "predicts classes"),
    "other scikit-learn": (lambda d: LogisticRegression().fit(*d), _version_changed,
                           "saved with scikit-learn 1.4.2 (that is SageMaker's scikit-learn 1.4-2 container"),
    "no converter": (lambda d: SelfTrainingClassifier(LogisticRegression()).fit(*d), None,
                     "skl2onnx cannot convert SelfTrainingClassifier"),
    "wrong width": (lambda d: LogisticRegression().fit(d[0][:, :3], d[1]), None, "fitted on 3 features"),
    "not an estimator": (lambda d: {"weights": [1, 2]}, None, "not a scikit-learn estimator"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_unsupported_models_are_refused_in_one_line(tmp_path, data, sample_csv, case, capsys):
    make, tamper, says = REFUSALS[case]
    model = _saved(tmp_path, make(data))
    if tamper:
        tamper(model)
    completed = _package(tmp_path, model, sample_csv, "--label", LABEL, runner=InProcess(capsys))
    _assert_refused(completed, says)
    assert not (tmp_path / "out").exists()


DATA_REFUSALS = {
    "empty data": (lambda p: p.write_text(""), ["--label", LABEL], "is empty"),
    "header only": (lambda p: p.write_text(",".join([*FEATURES, LABEL]) + "\n"), ["--label", LABEL], "no rows"),
    "label missing": (lambda p: None, ["--label", "outcome"], "--label 'outcome' is not a column"),
    "string feature": (lambda p: p.write_text(_replace_first_value(p.read_text(), "high")), ["--label", LABEL],
                       "'temperature_c': 'high' is not a number"),
    "missing value": (lambda p: p.write_text(_replace_first_value(p.read_text(), "")), ["--label", LABEL],
                      "missing or infinite values are not supported"),
    "label not 0/1": (lambda p: p.write_text(p.read_text().replace(",1\n", ",2\n")), ["--label", LABEL],
                      "must hold 0 and 1 only"),
    "bad name": (lambda p: None, ["--label", LABEL, "--name", "My Model"], "lowercase letters"),
    "bad threshold": (lambda p: None, ["--label", LABEL, "--threshold", "1.5"], "must be between 0 and 1"),
    "no such model": (lambda p: None, ["--label", LABEL, "--model", "/nonexistent/model.joblib"], "no such file"),
}


def _replace_first_value(text, value):
    lines = text.splitlines(keepends=True)
    lines[1] = value + "," + lines[1].split(",", 1)[1]
    return "".join(lines)


@pytest.mark.parametrize("case", DATA_REFUSALS, ids=list(DATA_REFUSALS))
def test_unsupported_data_and_arguments_are_refused_in_one_line(tmp_path, data, case, capsys):
    change, extra, says = DATA_REFUSALS[case]
    csv_path = write_csv(tmp_path / "sample.csv", *data)
    change(csv_path)
    model = _saved(tmp_path, LogisticRegression().fit(*data))
    args = ["--model", str(model), "--data", str(csv_path), "--name", "my-model", "--out", str(tmp_path / "out")]
    completed = InProcess(capsys)(*args, *extra)  # later flags win in argparse
    _assert_refused(completed, says)


def _assert_refused(completed, says):
    # THEN exit code 2, exactly one line on stderr naming the problem, and no traceback
    assert completed.returncode == 2, (completed.stdout, completed.stderr)
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: ") and says in lines[0], lines[0]
    assert "Traceback" not in completed.stderr
