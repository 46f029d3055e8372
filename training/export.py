"""Writes a fitted estimator or pipeline as model.joblib (for the scikit-learn container) and
model.onnx (for Lambda and the edge), both byte-for-byte reproducible."""

from pathlib import Path

import joblib
import onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from training.hash_seed import REQUIRED_HASH_SEED, is_pinned

JOBLIB_FILE = "model.joblib"
ONNX_FILE = "model.onnx"
ONNX_INPUT_NAME = "features"
ONNX_LABEL_OUTPUT = "label"
ONNX_PROBABILITIES_OUTPUT = "probabilities"
ONNX_OPSET = 17
ONNX_ML_OPSET = 3
# Python 3.14 raised pickle.DEFAULT_PROTOCOL to 5; pin it so the file never
# changes with the interpreter that builds it (the container runs Python 3.9).
PICKLE_PROTOCOL = 4
def write_joblib(estimator: BaseEstimator, folder: Path) -> Path:
    """Dump the estimator uncompressed; the serving container loads it with joblib."""
    path = folder / JOBLIB_FILE
    joblib.dump(estimator, path, compress=0, protocol=PICKLE_PROTOCOL)
    return path


def graph_name(model_name: str) -> str:
    """The ONNX graph's name (skl2onnx would pick a random UUID): the model name as an identifier."""
    return model_name.replace("-", "_")


class UnpinnedHashSeedError(RuntimeError):
    """The conversion ran in an interpreter whose string hashing is randomized: its bytes would not repeat."""


def to_onnx(estimator: BaseEstimator, n_features: int, model_name: str) -> onnx.ModelProto:
    """Convert to ONNX: float32 ``features`` [None, n] in; ``label`` and a plain
    float ``probabilities`` [None, 2] tensor out (no ZipMap of dicts).

    A model skl2onnx cannot convert fails whatever the hash seed; a converted one is returned only under
    ``PYTHONHASHSEED=0`` (else :class:`UnpinnedHashSeedError`)."""
    classifier = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    model = convert_sklearn(
        estimator,
        name=graph_name(model_name),
        initial_types=[(ONNX_INPUT_NAME, FloatTensorType([None, n_features]))],
        options={id(classifier): {"zipmap": False}},
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": ONNX_ML_OPSET},
    )
    model.doc_string = ""
    model.graph.doc_string = ""
    outputs = [output.name for output in model.graph.output]
    if outputs != [ONNX_LABEL_OUTPUT, ONNX_PROBABILITIES_OUTPUT]:
        raise RuntimeError(f"unexpected ONNX outputs {outputs}")
    onnx.checker.check_model(model)
    if not is_pinned():
        raise UnpinnedHashSeedError(
            "ONNX conversion is only reproducible with PYTHONHASHSEED="
            f"{REQUIRED_HASH_SEED}; run `python -m training.build` or `python -m training.package`, "
            "which set it."
        )
    return model


def write_onnx(model: onnx.ModelProto, folder: Path) -> Path:
    """Serialize a converted model to ``model.onnx``."""
    path = folder / ONNX_FILE
    path.write_bytes(model.SerializeToString())
    return path
