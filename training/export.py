"""Writes a fitted pipeline as model.joblib (for the scikit-learn container) and
model.onnx (for Lambda and the edge), both byte-for-byte reproducible."""

import sys
from pathlib import Path

import joblib
import onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline

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
# skl2onnx names the graph with a random UUID unless told otherwise.
ONNX_GRAPH_NAME = "fraud_detector"
# skl2onnx names some graph nodes in hash-seed-dependent order (measured: the same
# pipeline converted under PYTHONHASHSEED=0 and =1 gives different bytes).
REQUIRED_HASH_SEED = "0"


def hash_seed_is_fixed() -> bool:
    """True when this interpreter started with ``PYTHONHASHSEED=0``."""
    return sys.flags.hash_randomization == 0


def write_joblib(pipeline: Pipeline, folder: Path) -> Path:
    """Dump the pipeline uncompressed; the serving container loads it with joblib."""
    path = folder / JOBLIB_FILE
    joblib.dump(pipeline, path, compress=0, protocol=PICKLE_PROTOCOL)
    return path


def to_onnx(pipeline: Pipeline, n_features: int) -> onnx.ModelProto:
    """Convert to ONNX: float32 ``features`` [None, n] in; ``label`` and a plain
    float ``probabilities`` [None, 2] tensor out (no ZipMap of dicts)."""
    if not hash_seed_is_fixed():
        raise RuntimeError(
            "ONNX conversion is only reproducible with PYTHONHASHSEED="
            f"{REQUIRED_HASH_SEED}; run `python -m training.build`, which sets it."
        )
    classifier = pipeline.steps[-1][1]
    model = convert_sklearn(
        pipeline,
        name=ONNX_GRAPH_NAME,
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
    return model


def write_onnx(pipeline: Pipeline, n_features: int, folder: Path) -> Path:
    """Convert and serialize the pipeline to ``model.onnx``."""
    path = folder / ONNX_FILE
    path.write_bytes(to_onnx(pipeline, n_features).SerializeToString())
    return path
