"""Seeded synthetic card transactions: the demo fraud detector's training data.

The label is drawn from a logistic of a handful of features plus noise, so the
signal is learnable (hold-out AUC ≈ 0.9) but not perfect, and about 2.5 % of the
rows are fraud. The label is never one of the features.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

DEFAULT_SEED = 20240917
DEFAULT_ROWS = 50_000
DEFAULT_TEST_FRACTION = 0.2

FEATURE_NAMES: tuple[str, ...] = (
    "amount",
    "hour_of_day",
    "merchant_risk",
    "distance_from_home_km",
    "distance_from_last_txn_km",
    "ratio_to_median_amount",
    "txn_count_24h",
    "account_age_days",
    "is_online",
    "used_chip",
    "used_pin",
    "is_foreign",
)
LABEL_NAME = "is_fraud"

# Relative card traffic per hour of day (quiet nights, busy evenings).
_HOURLY_TRAFFIC = np.array(
    [2, 1.5, 1, 1, 1, 1.5, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 6, 7, 8, 8, 7, 6, 4, 3], dtype=float
)
_FRAUD_INTERCEPT = -6.3
_LABEL_NOISE_STD = 0.5


@dataclass(frozen=True)
class Dataset:
    """Feature matrix (float64, columns in ``FEATURE_NAMES`` order) and 0/1 labels."""

    features: np.ndarray
    labels: np.ndarray

    @property
    def positive_rate(self) -> float:
        """Share of rows labelled fraud."""
        return float(self.labels.mean())


def generate(*, seed: int = DEFAULT_SEED, n_rows: int = DEFAULT_ROWS) -> Dataset:
    """Draw ``n_rows`` transactions from a ``numpy`` Generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    hour = rng.choice(24, size=n_rows, p=_HOURLY_TRAFFIC / _HOURLY_TRAFFIC.sum()).astype(float)
    customer_median = np.round(rng.lognormal(3.6, 0.5, n_rows), 2)
    amount = np.round(np.maximum(0.5, customer_median * rng.lognormal(0.0, 0.8, n_rows)), 2)
    ratio_to_median = np.round(amount / customer_median, 4)
    merchant_risk = np.round(rng.beta(2.0, 8.0, n_rows), 4)
    distance_home = np.round(rng.lognormal(1.5, 1.2, n_rows), 3)
    distance_last = np.round(rng.lognormal(1.0, 1.3, n_rows), 3)
    txn_count = rng.poisson(3.0, n_rows).astype(float)
    account_age = np.maximum(1.0, np.round(rng.gamma(2.0, 400.0, n_rows)))
    is_online = (rng.random(n_rows) < 0.35).astype(float)
    used_chip = (1.0 - is_online) * (rng.random(n_rows) < 0.8)
    used_pin = used_chip * (rng.random(n_rows) < 0.6)
    is_foreign = (rng.random(n_rows) < 0.05).astype(float)
    is_night = ((hour <= 4) | (hour >= 23)).astype(float)

    logit = (
        _FRAUD_INTERCEPT
        + 1.2 * np.log(ratio_to_median)
        + 7.0 * (merchant_risk - 0.2)
        + 0.6 * np.log1p(distance_home)
        + 0.3 * np.log1p(distance_last)
        + 0.25 * (txn_count - 3.0)
        - 0.6 * np.log1p(account_age / 365.0)
        + 1.2 * is_night
        + 1.3 * is_online
        - 0.8 * used_chip
        - 1.2 * used_pin
        + 2.0 * is_foreign
        + rng.normal(0.0, _LABEL_NOISE_STD, n_rows)
    )
    labels = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    features = np.column_stack(
        [
            amount,
            hour,
            merchant_risk,
            distance_home,
            distance_last,
            ratio_to_median,
            txn_count,
            account_age,
            is_online,
            used_chip,
            used_pin,
            is_foreign,
        ]
    )
    return Dataset(features=features, labels=labels)


def holdout_split(
    dataset: Dataset, *, seed: int, test_fraction: float = DEFAULT_TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test), stratified on the label so both keep its rate."""
    train, test = train_test_split(
        np.arange(len(dataset.labels)),
        test_size=test_fraction,
        random_state=seed % 2**32,
        stratify=dataset.labels,
    )
    return np.sort(train), np.sort(test)
