"""The drift statistics against independent references: scipy's KS, a hand-written PSI, scikit-learn's AUC."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score

from training.drift_baseline import DriftBaselineError, build_drift_baseline, reference_statistics


def hand_psi(reference: np.ndarray, window: np.ndarray, edges: list[float], floor: float = 1e-4) -> float:
    """PSI written out bin by bin, bins (-inf, e1], (e1, e2], ..., (ek, +inf)."""
    bounds = [-math.inf, *edges, math.inf]
    total = 0.0
    for low, high in zip(bounds[:-1], bounds[1:]):
        expected = max(np.mean((reference > low) & (reference <= high)), floor)
        actual = max(np.mean((window > low) & (window <= high)), floor)
        total += (actual - expected) * math.log(actual / expected)
    return total


SAMPLES = {
    "normal_shift": lambda rng: (rng.normal(0, 1, 3000), rng.normal(0.3, 1, 1700)),
    "same_distribution": lambda rng: (rng.normal(0, 1, 2000), rng.normal(0, 1, 2500)),
    "wider": lambda rng: (rng.normal(0, 1, 1000), rng.normal(0, 2, 999)),
    "discrete_ties": lambda rng: (rng.integers(0, 5, 4000).astype(float), rng.integers(0, 7, 1500).astype(float)),
    "binary_flag": lambda rng: ((rng.random(5000) < 0.3).astype(float), (rng.random(800) < 0.5).astype(float)),
    "skewed_amounts": lambda rng: (rng.lognormal(3, 1, 5000), rng.lognormal(3.4, 1.2, 3000)),
}


@pytest.mark.parametrize("case", SAMPLES)
def test_ks_statistic_equals_scipy_ks_2samp(stats, case):
    # GIVEN two samples (continuous, tied, binary)
    reference, window = SAMPLES[case](np.random.default_rng(11))
    # WHEN the job's KS statistic is computed
    value = stats.ks_statistic(window, reference)
    # THEN it is scipy's two-sample statistic
    assert value == pytest.approx(scipy_stats.ks_2samp(window, reference).statistic, abs=1e-12)


@pytest.mark.parametrize("case", SAMPLES)
def test_psi_over_baseline_bins_equals_the_hand_computed_index(stats, case):
    # GIVEN a reference column turned into baseline statistics, and a window
    reference, window = SAMPLES[case](np.random.default_rng(5))
    column = reference_statistics(reference)
    # WHEN the job bins the window into the baseline's bins and computes PSI
    value = stats.psi(column["fractions"], stats.bin_fractions(window, np.asarray(column["edges"])))
    # THEN it equals PSI written out bin by bin over the same edges
    assert value == pytest.approx(hand_psi(reference, window, column["edges"]), rel=1e-9, abs=1e-12)


def test_psi_of_the_reference_against_itself_is_zero_and_an_empty_bin_stays_finite(stats):
    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, 5000)
    column = reference_statistics(reference)
    assert stats.psi(column["fractions"], stats.bin_fractions(reference, np.asarray(column["edges"]))) == \
        pytest.approx(0.0, abs=1e-12)
    # every window value above the top edge: nine bins empty, one full -> large, finite
    shifted = np.full(100, reference.max() + 1)
    value = stats.psi(column["fractions"], stats.bin_fractions(shifted, np.asarray(column["edges"])))
    assert math.isfinite(value) and value > 5


def test_baseline_document_follows_the_shared_interface(baseline):
    # GIVEN the demo model's baseline (baseline.csv and model.onnx's scores)
    # THEN every column has strictly increasing interior edges, len(edges)+1 fractions summing to 1,
    # a sorted sample of at most 1000 values within [min, max], and the document is plain JSON
    assert baseline["schema_version"] == 1 and baseline["n_rows"] == 5000
    columns = {**baseline["features"], "prediction": baseline["prediction"]}
    assert len(columns) == 13
    for name, column in columns.items():
        edges = np.asarray(column["edges"])
        assert np.all(np.diff(edges) > 0), name
        assert len(column["fractions"]) == len(edges) + 1
        assert sum(column["fractions"]) == pytest.approx(1.0)
        assert 0 < len(column["sample"]) <= 1000 and column["sample"] == sorted(column["sample"])
        assert column["min"] <= column["sample"][0] and column["sample"][-1] <= column["max"]
        assert column["missing_rate"] == 0.0
    assert json.loads(json.dumps(baseline)) == baseline


def test_baseline_is_deterministic_and_counts_missing_values():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(3000, 2))
    features[:300, 1] = np.nan
    features[300:330, 1] = np.inf
    scores = rng.random(3000)
    first = build_drift_baseline(features, ["a", "b"], scores)
    assert first == build_drift_baseline(features.copy(), ["a", "b"], scores.copy())
    assert first["features"]["b"]["missing_rate"] == pytest.approx(330 / 3000)
    assert first["features"]["a"]["missing_rate"] == 0.0
    # a binary flag keeps only its distinct edges
    flags = build_drift_baseline((rng.random((1000, 1)) < 0.3).astype(float), ["flag"], scores[:1000])
    assert flags["features"]["flag"]["edges"] == [0.0, 1.0]


@pytest.mark.parametrize("features, names, scores, message", [
    (np.ones((3, 2)), ["a"], np.ones(3), "2 feature columns but 1 names"),
    (np.ones((3, 2)), ["a", "a"], np.ones(3), "names must be unique"),
    (np.ones((3, 2)), ["a", "b"], np.ones(2), "2 scores for 3 rows"),
    (np.full((3, 1), np.nan), ["a"], np.ones(3), "feature 'a' has no finite reference value"),
    (np.ones((0, 1)), ["a"], np.ones(0), "non-empty 2-D array"),
])
def test_baseline_refuses_unusable_reference_data(features, names, scores, message):
    with pytest.raises(DriftBaselineError, match=message):
        build_drift_baseline(features, names, scores)


@pytest.mark.parametrize("seed", range(4))
def test_auc_equals_scikit_learn_with_ties(quality, seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(800) < 0.2).astype(int)
    scores = np.round(rng.random(800) * 0.5 + labels * 0.3, 2)  # rounding makes many ties
    assert quality.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_quality_report_joins_labels_by_inference_id(quality):
    predictions = {"a": 0.9, "b": 0.2, "c": 0.7, "d": 0.1, "unlabelled": 0.99}
    labels = {"a": 1, "b": 0, "c": 0, "d": 0, "no-prediction": 1}
    report = quality.quality_report(predictions, labels, threshold=0.5)
    # a and c flagged; a is fraud: precision 1/2; correct: a, b, d -> accuracy 3/4; AUC: 1 positive above all 3
    assert report["matched"] == 4 and report["labels"] == 5
    assert report["precision"] == 0.5 and report["accuracy"] == 0.75 and report["auc"] == 1.0
    assert quality.quality_report(predictions, {"zzz": 1}, threshold=0.5)["status"] == "no data"
    assert quality.quality_report({"a": 0.9}, {"a": 1}, threshold=0.5)["auc"] is None  # one class only


def test_read_labels_counts_unreadable_lines(quality):
    lines = [b'{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "x"}}',
             b'{"groundTruthData": {"data": "7"}, "eventMetadata": {"eventId": "y"}}', b"not json", b"",
             b'{"eventMetadata": {}}']
    labels, unreadable = quality.read_labels(lines)
    assert labels == {"x": 1} and unreadable == 3
