"""``python -m training.package``: turn a saved scikit-learn model into a deployable model folder.

    python -m training.package --model my_model.joblib --data sample.csv --label target \\
        --name my-model --out artifacts/my-model [--threshold 0.5]

Supported: binary classifiers (classes 0 and 1) with predict_proba on numeric features, plain
estimators or Pipelines, saved with scikit-learn 1.2.1 (the SageMaker scikit-learn 1.2-1 container).
Writes model.joblib, model.onnx (checked against predict_proba on the data), metadata.json (the model
contract, training/contract.py), baseline.csv, drift_baseline.json and samples/. Anything unsupported is
refused with one line and exit code 2.
"""
from __future__ import annotations

from training import hash_seed

if __name__ == "__main__":  # before the heavy imports below, so only the re-executed process pays for them
    hash_seed.reexec_pinned("training.package")

import argparse
import csv
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional

import joblib
import numpy as np
import onnxruntime
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from training import contract, datafiles, drift_baseline, export, metadata
from training.model import POSITIVE_CLASS

DEFAULT_THRESHOLD = 0.5
DEFAULT_VERSION_LABEL = "v1"
PARITY_TOLERANCE = 1e-4
SUPPORTED = ("supported: binary classifiers (classes 0 and 1) with predict_proba on numeric features, "
             "plain estimators or Pipelines")
EXIT_REFUSED = 2
_NAME_PATTERN = re.compile(contract.MODEL_NAME_PATTERN)
_SAVED_WITH = re.compile(r"from version (\S+) when using version")


class PackageError(Exception):
    """The model or data cannot be packaged; the message is one line saying why and what is supported."""


# --- loading ---------------------------------------------------------------------------------------

def _version_refusal(saved_with: str) -> str:
    running = metadata.SERVING_LIBRARY_VERSIONS["scikit_learn"]
    other = [container for container, version in metadata.SAGEMAKER_SKLEARN_VERSIONS.items() if version == saved_with]
    where = (f" (that is SageMaker's scikit-learn {other[0]} container, which this project does not deploy)"
             if other and other[0] != metadata.FRAMEWORK_VERSION else "")
    return (f"the model was saved with scikit-learn {saved_with}{where}; this project serves it in the SageMaker "
            f"scikit-learn {metadata.FRAMEWORK_VERSION} container, which runs scikit-learn {running}: re-fit or load "
            f"it with `pip install scikit-learn=={running} numpy=={metadata.SERVING_LIBRARY_VERSIONS['numpy']}` and "
            "save it again with joblib.dump(model, path)")


def load_estimator(path: Path) -> Any:
    """Unpickle a joblib or pickle file; refuse one saved with another scikit-learn than the container's."""
    if not path.is_file():
        raise PackageError(f"--model {path}: no such file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator = joblib.load(path)
        except Exception as exc:  # pickles from other versions fail in many ways; report the first line only
            saved = [str(w.message) for w in caught if _SAVED_WITH.search(str(w.message))]
            if saved:
                raise PackageError(_version_refusal(_SAVED_WITH.search(saved[0]).group(1))) from None
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PackageError(f"--model {path}: cannot load it as a joblib or pickle file ({reason}); "
                               f"save the fitted model with joblib.dump(model, path)") from None
    for warning in caught:
        saved_with = getattr(warning.message, "original_sklearn_version", None)
        match = _SAVED_WITH.search(str(warning.message))
        if saved_with or match:
            raise PackageError(_version_refusal(saved_with or match.group(1)))
    return estimator


def check_estimator(estimator: Any, feature_names: list[str]) -> None:
    """Refuse anything but a fitted binary classifier with predict_proba over these columns."""
    kind = type(estimator).__name__
    if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
        raise PackageError(f"the file holds a {kind}, not a scikit-learn estimator; {SUPPORTED}")
    if not hasattr(estimator, "predict_proba"):
        raise PackageError(f"{kind} has no predict_proba (a regressor, or a classifier without probabilities); "
                           f"{SUPPORTED}")
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise PackageError(f"{kind} is not fitted (no classes_): fit it before saving; {SUPPORTED}")
    classes = list(np.asarray(classes).tolist())
    if len(classes) != 2:
        raise PackageError(f"{kind} has {len(classes)} classes {classes[:10]}; {SUPPORTED}")
    if any(isinstance(value, str) for value in classes) or [float(c) for c in classes] != [0.0, 1.0]:
        raise PackageError(f"{kind} predicts classes {classes}; {SUPPORTED} (re-fit with labels 0 and 1)")
    fitted = getattr(estimator, "n_features_in_", None)
    if fitted is not None and fitted != len(feature_names):
        raise PackageError(f"{kind} was fitted on {fitted} features but the data has {len(feature_names)} feature "
                           f"columns ({', '.join(feature_names[:20])}); drop the extra columns, and name the label "
                           "column with --label")
    names_in = getattr(estimator, "feature_names_in_", None)
    if names_in is not None and list(names_in) != list(feature_names):
        raise PackageError(f"{kind} was fitted on columns {list(names_in)} but the data's feature columns are "
                           f"{list(feature_names)}: give --data the same columns in the same order")


# --- data ------------------------------------------------------------------------------------------

def read_data(path: Path, label: Optional[str]) -> tuple[list[str], datafiles.Rows]:
    """(feature names, rows) from a CSV with a header; every feature value must be a finite number."""
    if not path.is_file():
        raise PackageError(f"--data {path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            records = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PackageError(f"--data {path}: cannot read it as a UTF-8 CSV file ({exc})") from None
    records = [record for record in records if any(value.strip() for value in record)]
    if not records:
        raise PackageError(f"--data {path} is empty; give a CSV with a header of column names and rows of numbers")
    header = [name.strip() for name in records[0]]
    if any(not name for name in header) or len(set(header)) != len(header):
        raise PackageError(f"--data {path}: the header must name every column once, got {header[:20]}")
    if label is not None and label not in header:
        raise PackageError(f"--label {label!r} is not a column of {path} (columns: {', '.join(header[:20])})")
    body = records[1:]
    if not body:
        raise PackageError(f"--data {path} has a header but no rows")
    feature_names = [name for name in header if name != label]
    if not feature_names:
        raise PackageError(f"--data {path} has no feature columns besides the label")
    values = np.empty((len(body), len(header)), dtype=np.float64)
    for line_number, record in enumerate(body, 2):
        if len(record) != len(header):
            raise PackageError(f"--data {path} line {line_number} has {len(record)} values, the header "
                               f"{len(header)}")
        for column, text in enumerate(record):
            if not text.strip():
                raise PackageError(f"--data {path} line {line_number}, column {header[column]!r}: missing or infinite "
                                   "values are not supported (the endpoints reject them); fill or drop them")
            try:
                if "_" in text or not text.isascii():
                    raise ValueError(text)
                values[line_number - 2, column] = float(text)
            except ValueError:
                raise PackageError(f"--data {path} line {line_number}, column {header[column]!r}: {text[:40]!r} is "
                                   f"not a number; {SUPPORTED}") from None
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, column = (int(i) for i in bad[0])
        raise PackageError(f"--data {path} line {row + 2}, column {header[column]!r}: missing or infinite values are "
                           "not supported (the endpoints reject NaN and infinity); fill or drop them")
    feature_columns = [header.index(name) for name in feature_names]
    labels = None
    if label is not None:
        labels = values[:, header.index(label)]
        if not np.isin(labels, (0.0, 1.0)).all():
            raise PackageError(f"--label {label!r} must hold 0 and 1 only; {SUPPORTED}")
        labels = labels.astype(np.int64)
    return feature_names, datafiles.Rows(features=values[:, feature_columns], labels=labels)


# --- packaging -------------------------------------------------------------------------------------

def positive_scores(estimator: Any, features: np.ndarray) -> np.ndarray:
    """predict_proba's column for class 1, on one thread (results never depend on core count)."""
    with threadpool_limits(limits=1), warnings.catch_warnings():
        # A model fitted on a DataFrame warns about unnamed columns; the names were checked already.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        try:
            probabilities = estimator.predict_proba(features)
        except Exception as exc:
            raise PackageError(f"{type(estimator).__name__}.predict_proba failed on the data: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    column = [float(c) for c in np.asarray(estimator.classes_).tolist()].index(float(POSITIVE_CLASS))
    return np.asarray(probabilities, dtype=np.float64)[:, column]


def convert(estimator: Any, n_features: int, name: str):
    """skl2onnx conversion; a model it cannot convert is refused, not crashed on."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return export.to_onnx(estimator, n_features, name)
    except export.UnpinnedHashSeedError:  # a caller's mistake, not the model's: let it raise as it is
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PackageError(f"skl2onnx cannot convert {_describe(estimator)} to ONNX ({first[:200]}); the Lambda and "
                           f"edge patterns need ONNX; {SUPPORTED} that skl2onnx converts") from None


def onnx_scores(model, features: np.ndarray) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    output = session.run([export.ONNX_PROBABILITIES_OUTPUT],
                         {export.ONNX_INPUT_NAME: features.astype(np.float32)})[0]
    return np.asarray(output, dtype=np.float64)[:, POSITIVE_CLASS]


def _describe(estimator: Any) -> str:
    if isinstance(estimator, Pipeline):
        return "Pipeline(" + ", ".join(type(step).__name__ for _, step in estimator.steps) + ")"
    return type(estimator).__name__


def package(estimator: Any, *, name: str, feature_names: list[str], label_name: Optional[str],
            reference: datafiles.Rows, samples: datafiles.Rows, out: Path, threshold: float = DEFAULT_THRESHOLD,
            version_label: str = DEFAULT_VERSION_LABEL, metrics: Optional[dict] = None,
            id_prefix: str = "row") -> tuple[Path, dict, float]:
    """Write the model folder ``out`` (replaced whole); returns (folder, metadata, ONNX max abs difference).

    ``reference`` rows feed the parity check, baseline.csv and drift_baseline.json; ``samples`` rows the
    request samples.
    """
    validate_name(name)
    validate_threshold(threshold)
    check_estimator(estimator, feature_names)
    scores = positive_scores(estimator, reference.features)
    onnx_model = convert(estimator, len(feature_names), name)
    difference = float(np.max(np.abs(onnx_scores(onnx_model, reference.features) - scores)))
    if not difference <= PARITY_TOLERANCE:
        raise PackageError(f"the ONNX model differs from predict_proba by up to {difference:.3g} on the data (limit "
                           f"{PARITY_TOLERANCE:g}); the Lambda and edge patterns would score differently from the "
                           "endpoint")
    libraries = metadata.library_versions()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        joblib_path = export.write_joblib(estimator, staging)
        export.write_onnx(onnx_model, staging)
        datafiles.write_baseline(reference.features, tuple(feature_names), staging)
        datafiles.write_samples(samples, tuple(feature_names), label_name, staging, id_prefix=id_prefix)
        drift_baseline.write_drift_baseline(
            drift_baseline.build_drift_baseline(reference.features, list(feature_names), scores), staging)
        document = {
            "schema_version": contract.SCHEMA_VERSION,
            "model_name": name,
            "model_version": metadata.content_version(version_label, joblib_path),
            "task": contract.TASK,
            "framework": metadata.FRAMEWORK,
            "framework_version": metadata.FRAMEWORK_VERSION,
            "feature_names": list(feature_names),
            "n_features": len(feature_names),
            "features": [{"name": feature, "dtype": "float64"} for feature in feature_names],
            "label_name": label_name,
            "positive_class": POSITIVE_CLASS,
            "decision_threshold": float(threshold),
            "library_versions": libraries,
            "onnx": {
                "input_name": export.ONNX_INPUT_NAME,
                "probabilities_output": export.ONNX_PROBABILITIES_OUTPUT,
                "opset": export.ONNX_OPSET,
            },
            "files": metadata.file_hashes(staging),
            "monitoring": {"baseline_csv": datafiles.BASELINE_FILE, "drift_baseline": drift_baseline.FILE_NAME},
        }
        if metrics is not None:
            document["metrics"] = metrics
        contract.parse(document)  # what we write must follow the published contract
        metadata.write_metadata(staging, document)
        staging.chmod(0o755)  # mkdtemp creates 0700; give the folder the mode any other folder gets
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out, document, difference


def validate_name(name: str) -> None:
    if len(name) > contract.MAX_MODEL_NAME or not _NAME_PATTERN.match(name):
        raise PackageError(f"--name {name!r}: use 2-63 lowercase letters, digits and hyphens, starting with a letter "
                           "(it names stacks, the endpoint and the edge component)")


def validate_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise PackageError(f"--threshold {threshold}: must be between 0 and 1 (the score at or above which the "
                           "prediction is 1)")


# --- command line ----------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as every refusal
        sys.stderr.write(f"error: {message}\n")
        sys.exit(EXIT_REFUSED)


def _parse(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = _Parser(prog="python -m training.package", description=__doc__.split("\n")[0],
                     epilog="example: python -m training.package --model model.joblib --data sample.csv "
                            "--label target --name my-model --out artifacts/my-model")
    parser.add_argument("--model", type=Path, required=True, help="joblib/pickle file of a fitted estimator or Pipeline")
    parser.add_argument("--data", type=Path, required=True, help="CSV with a header: a training sample")
    parser.add_argument("--label", help="label column (0/1); dropped from the features, kept in samples/labeled.csv")
    parser.add_argument("--name", required=True, help="model name (lowercase letters, digits, hyphens)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (replaced if it exists)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"decision threshold on the class-1 probability (default {DEFAULT_THRESHOLD})")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> str:
    """Package as the arguments say; returns the report line."""
    validate_name(args.name)
    validate_threshold(args.threshold)
    if args.out.exists() and not args.out.is_dir():
        raise PackageError(f"--out {args.out} exists and is not a folder")
    metadata.check_serving_compatibility(metadata.library_versions())
    estimator = load_estimator(args.model)
    feature_names, rows = read_data(args.data, args.label)
    folder, document, difference = package(estimator, name=args.name, feature_names=feature_names,
                                           label_name=args.label, reference=rows, samples=rows, out=args.out,
                                           threshold=args.threshold)
    return (f"{folder}  {document['model_name']} {document['model_version']}  {document['n_features']} features, "
            f"{len(rows.features)} rows, ONNX max abs difference {difference:.3g}")


def main(argv: Optional[list[str]] = None, *, pin_hash_seed: bool = True) -> int:
    """Command-line entry point; re-executes itself with PYTHONHASHSEED pinned (ONNX bytes depend on it).

    ``pin_hash_seed=False`` runs in this process (tests of the refusals: a model skl2onnx cannot convert is
    refused whatever the seed; a conversion that succeeds is refused unless the seed is pinned).
    """
    args = _parse(argv)
    if pin_hash_seed:
        hash_seed.reexec_pinned("training.package", argv)
    try:
        print(run(args))
    except (PackageError, contract.ContractError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_REFUSED
    except RuntimeError as exc:  # check_serving_compatibility: the wrong libraries in this venv
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
