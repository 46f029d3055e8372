"""The synthetic data: seeded, plausible, and free of label leakage."""

import numpy as np

from training.data import FEATURE_NAMES, LABEL_NAME, generate, holdout_split


def test_same_seed_gives_the_same_rows_and_another_seed_does_not():
    # GIVEN two draws with one seed and one with another
    first, again = generate(seed=3, n_rows=2000), generate(seed=3, n_rows=2000)
    other = generate(seed=4, n_rows=2000)
    # THEN the same seed reproduces every value and label, another seed changes them
    assert np.array_equal(first.features, again.features)
    assert np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.features, other.features)


def test_default_size_has_a_card_fraud_like_positive_rate():
    # WHEN the default dataset is generated
    dataset = generate()
    # THEN it has ~50k rows of the named features and 2–5 % fraud
    assert dataset.features.shape == (50_000, len(FEATURE_NAMES))
    assert 0.02 <= dataset.positive_rate <= 0.05
    assert set(np.unique(dataset.labels)) == {0, 1}


def test_features_are_plausible_and_exclude_the_label():
    dataset = generate(seed=11, n_rows=20_000)
    column = {name: dataset.features[:, i] for i, name in enumerate(FEATURE_NAMES)}
    # THEN the label is not a feature and no column is a copy of the label
    assert LABEL_NAME not in FEATURE_NAMES
    for name, values in column.items():
        assert not np.array_equal(values, dataset.labels), name
    # AND values are in the ranges their names promise
    assert column["amount"].min() > 0
    assert set(np.unique(column["hour_of_day"])) == set(range(24))
    assert 0 <= column["merchant_risk"].min() and column["merchant_risk"].max() <= 1
    for flag in ("is_online", "used_chip", "used_pin", "is_foreign"):
        assert set(np.unique(column[flag])) == {0.0, 1.0}, flag
    # AND a PIN is only ever used with a chip, never online
    assert np.all(column["used_pin"] <= column["used_chip"])
    assert np.all(column["used_chip"] + column["is_online"] <= 1)


def test_holdout_split_is_disjoint_stratified_and_complete():
    dataset = generate(seed=5, n_rows=10_000)
    # WHEN the rows are split for hold-out evaluation
    train, test = holdout_split(dataset, seed=5)
    # THEN every row lands in exactly one side, 80/20, with the same fraud rate on both
    assert len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == 10_000 and len(test) == 2000
    assert abs(dataset.labels[train].mean() - dataset.labels[test].mean()) < 0.002
