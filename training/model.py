"""The demo model versions and how they are fitted and scored."""

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

MODEL_NAME = "fraud-detector"
POSITIVE_CLASS = 1
MAX_ITERATIONS = 1000


@dataclass(frozen=True, kw_only=True)
class ModelVersion:
    """One version of the demo model: where it is written and how it is fitted.

    Every version is a StandardScaler + LogisticRegression pipeline over the same
    features in the same order, so versions are interchangeable behind one
    endpoint (a canary can route to either). A linear model keeps one-row
    latency in microseconds and scores a million rows in a fraction of a second.
    """

    label: str
    """Version line, the prefix of ``model_version`` ("v1")."""
    folder: str
    """Folder name under the output directory."""
    regularization: float = 1.0
    """LogisticRegression ``C`` (inverse regularization strength)."""
    positive_class_weight: float = 1.0
    """Weight of a fraud row relative to a legitimate one in the loss."""


VERSIONS: tuple[ModelVersion, ...] = (
    ModelVersion(label="v1", folder=MODEL_NAME),
    # Stronger regularization and fraud rows weighted up: same ranking quality,
    # higher scores for suspicious rows, so a canary visibly changes outputs.
    ModelVersion(
        label="v2", folder=f"{MODEL_NAME}-v2", regularization=0.1, positive_class_weight=5.0
    ),
)


def fit(version: ModelVersion, features: np.ndarray, labels: np.ndarray) -> Pipeline:
    """Fit the version's pipeline on one thread, so results never depend on core count."""
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "classify",
                LogisticRegression(
                    C=version.regularization,
                    class_weight={0: 1.0, POSITIVE_CLASS: version.positive_class_weight},
                    max_iter=MAX_ITERATIONS,
                ),
            ),
        ]
    )
    with threadpool_limits(limits=1):
        pipeline.fit(features, labels)
    return pipeline


def holdout_auc(pipeline: Pipeline, features: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of the positive-class probability on rows the model never saw."""
    with threadpool_limits(limits=1):
        scores = pipeline.predict_proba(features)[:, list(pipeline.classes_).index(POSITIVE_CLASS)]
    return float(roc_auc_score(labels, scores))
