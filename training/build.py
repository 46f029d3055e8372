"""``python -m training.build``: fit every demo model version and write its folder.

Each folder (``<out>/fraud-detector``, ``<out>/fraud-detector-v2``) holds
model.joblib, model.onnx, metadata.json, baseline.csv and samples/. Folders are
assembled in a temporary directory and swapped in whole, so no stale file
survives a rebuild.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from training import datafiles, export, metadata
from training.data import (
    DEFAULT_ROWS,
    DEFAULT_SEED,
    FEATURE_NAMES,
    LABEL_NAME,
    generate,
    holdout_split,
)
from training.model import MODEL_NAME, POSITIVE_CLASS, VERSIONS, ModelVersion, fit, holdout_auc

DEFAULT_OUT = Path("artifacts")


@dataclass(frozen=True, kw_only=True)
class BuiltVersion:
    """One written model folder and its metadata."""

    folder: Path
    metadata: dict


def build(
    *,
    out: Path,
    seed: int = DEFAULT_SEED,
    n_rows: int = DEFAULT_ROWS,
    versions: tuple[ModelVersion, ...] = VERSIONS,
) -> list[BuiltVersion]:
    """Generate the data once, then fit and write every version under ``out``."""
    libraries = metadata.library_versions()
    metadata.check_serving_compatibility(libraries)
    dataset = generate(seed=seed, n_rows=n_rows)
    train, test = holdout_split(dataset, seed=seed)
    out.mkdir(parents=True, exist_ok=True)

    built = []
    for version in versions:
        pipeline = fit(version, dataset.features[train], dataset.labels[train])
        if pipeline.n_features_in_ != len(FEATURE_NAMES):
            raise RuntimeError("the pipeline does not take every feature")
        auc = holdout_auc(pipeline, dataset.features[test], dataset.labels[test])

        staging = Path(tempfile.mkdtemp(prefix=f".{version.folder}.", dir=out))
        try:
            joblib_path = export.write_joblib(pipeline, staging)
            export.write_onnx(pipeline, len(FEATURE_NAMES), staging)
            datafiles.write_baseline(dataset, train, FEATURE_NAMES, staging)
            datafiles.write_samples(dataset, test, FEATURE_NAMES, staging)
            document = {
                "model_name": MODEL_NAME,
                "model_version": metadata.content_version(version.label, joblib_path),
                "framework": metadata.FRAMEWORK,
                "framework_version": metadata.FRAMEWORK_VERSION,
                "feature_names": list(FEATURE_NAMES),
                "n_features": len(FEATURE_NAMES),
                "label_name": LABEL_NAME,
                "positive_class": POSITIVE_CLASS,
                "library_versions": libraries,
                "onnx": _onnx_section(),
                "metrics": {
                    "holdout_auc": metadata.round_metric(auc),
                    "n_train": len(train),
                    "n_test": len(test),
                    "positive_rate": metadata.round_metric(dataset.positive_rate),
                },
                "files": metadata.file_hashes(staging),
            }
            metadata.write_metadata(staging, document)
            target = _swap_in(staging, out / version.folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        built.append(BuiltVersion(folder=target, metadata=document))
    return built


def _onnx_section() -> dict:
    return {
        "input_name": export.ONNX_INPUT_NAME,
        "probabilities_output": export.ONNX_PROBABILITIES_OUTPUT,
        "opset": export.ONNX_OPSET,
    }


def _swap_in(staging: Path, target: Path) -> Path:
    """Replace ``target`` with the fully written ``staging`` folder."""
    # mkdtemp creates 0700; give the folder the mode any other folder gets.
    staging.chmod(0o755)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def _report(result: BuiltVersion) -> str:
    meta = result.metadata
    metrics = meta["metrics"]
    lines = [
        f"{result.folder}  {meta['model_name']} {meta['model_version']}  "
        f"hold-out AUC {metrics['holdout_auc']:.4f} "
        f"(train {metrics['n_train']}, test {metrics['n_test']}, "
        f"positive rate {metrics['positive_rate']:.2%})"
    ]
    for name in [metadata.METADATA_FILE, *meta["files"]]:
        lines.append(f"  {(result.folder / name).stat().st_size:>9,} B  {name}")
    return "\n".join(lines)


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if seed < 0:  # numpy's default_rng accepts only non-negative seeds
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {seed}")
    return seed


def _out_dir(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} exists and is not a directory")
    return path


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=_out_dir, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--seed", type=_seed, default=DEFAULT_SEED, help=f"data seed (default {DEFAULT_SEED})"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; re-executes itself with PYTHONHASHSEED pinned."""
    args = _parse(argv)
    if not export.hash_seed_is_fixed():
        env = {**os.environ, "PYTHONHASHSEED": export.REQUIRED_HASH_SEED}
        forwarded = sys.argv[1:] if argv is None else argv
        command = [sys.executable, "-m", "training.build", *forwarded]
        os.execve(sys.executable, command, env)
    started = time.perf_counter()
    for result in build(out=args.out, seed=args.seed):
        print(_report(result))
    print(f"built {len(VERSIONS)} model versions in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
