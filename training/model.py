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


def quantize(values: np.ndarray) -> np.ndarray:
    """Round float64 values to float32 precision (24-bit significand), kept as float64.

    Measured: the same fit under OPENBLAS_CORETYPE unset, Prescott and Haswell gives
    coefficients that differ by up to 5e-13 relative (BLAS kernels sum in different
    orders), so model.joblib's bytes and its version hash depended on the CPU. Rounding
    to float32 precision (6e-8 relative steps, the precision model.onnx computes in
    anyway) maps those neighbours to one value; the chance that a kernel difference
    straddles a rounding boundary is about 1e-5 per parameter.
    """
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def _quantize_fitted(pipeline: Pipeline) -> None:
    scaler, classifier = pipeline.named_steps["scale"], pipeline.named_steps["classify"]
    scaler.mean_ = quantize(scaler.mean_)
    scaler.var_ = quantize(scaler.var_)
    scaler.scale_ = quantize(scaler.scale_)
    classifier.coef_ = quantize(classifier.coef_)
    classifier.intercept_ = quantize(classifier.intercept_)


def fit(version: ModelVersion, features: np.ndarray, labels: np.ndarray) -> Pipeline:
    """Fit the version's pipeline on one thread, so results never depend on core count,
    then quantize its parameters, so they never depend on the BLAS kernel either."""
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
    _quantize_fitted(pipeline)
    return pipeline


def holdout_auc(pipeline: Pipeline, features: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of the positive-class probability on rows the model never saw."""
    with threadpool_limits(limits=1):
        scores = pipeline.predict_proba(features)[:, list(pipeline.classes_).index(POSITIVE_CLASS)]
    return float(roc_auc_score(labels, scores))
