"""drift_baseline.json's builder: decile bins, fractions, missing rate, range and a sorted sample."""
import json

import numpy as np

from training.drift_baseline import MAX_SAMPLE, build_drift_baseline, reference_statistics


def test_bins_are_interior_deciles_with_right_closed_fractions():
    # GIVEN the numbers 1..100
    summary = reference_statistics(np.arange(1, 101, dtype=float))
    # THEN the 9 interior decile edges, and 10 % of the values in each (-inf,e1], (e1,e2], ..., (e9,+inf) bin
    assert summary["edges"] == [10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1]
    assert summary["fractions"] == [0.1] * 10
    assert (summary["min"], summary["max"], summary["missing_rate"]) == (1.0, 100.0, 0.0)
    assert summary["sample"] == list(np.arange(1, 101, dtype=float))


def test_repeated_values_give_strictly_increasing_edges_and_missing_values_are_counted():
    # GIVEN a 0/1 column, 70 % zeros, with one NaN and one infinity among 100 values
    values = np.array([0.0] * 69 + [1.0] * 29 + [np.nan, np.inf])
    summary = reference_statistics(values)
    # THEN duplicate edges collapse, the value at an edge falls in the bin that edge closes, NaN/inf are missing
    assert summary["edges"] == [0.0, 1.0]
    assert summary["fractions"] == [float(f"{69 / 98:.10g}"), float(f"{29 / 98:.10g}"), 0.0]
    assert summary["missing_rate"] == 0.02
    assert np.diff(summary["edges"]).min() > 0


def test_sample_is_at_most_a_thousand_sorted_values_and_the_document_is_json():
    rng = np.random.default_rng(3)
    features, scores = rng.normal(size=(5000, 2)), rng.random(5000)
    document = build_drift_baseline(features, ["a", "b"], scores)
    assert document["schema_version"] == 1 and document["n_rows"] == 5000
    for summary in [*document["features"].values(), document["prediction"]]:
        assert len(summary["sample"]) == MAX_SAMPLE and summary["sample"] == sorted(summary["sample"])
        assert len(summary["fractions"]) == len(summary["edges"]) + 1
        assert abs(sum(summary["fractions"]) - 1.0) < 1e-9
    # AND it is deterministic and plain JSON
    assert build_drift_baseline(features.copy(), ["a", "b"], scores.copy()) == document
    assert json.loads(json.dumps(document)) == document
