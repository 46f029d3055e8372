"""``python -m training.build``: fit every demo model version and write its folder.

Each folder (``<out>/fraud-detector``, ``<out>/fraud-detector-v2``) is written by
``training.package`` (the same code that packages a user's model): model.joblib,
model.onnx, metadata.json, baseline.csv, drift_baseline.json and samples/. Folders
are assembled in a temporary directory and swapped in whole, so no stale file
survives a rebuild.
"""

from training import hash_seed

if __name__ == "__main__":  # before the heavy imports below, so only the re-executed process pays for them
    hash_seed.reexec_pinned("training.build")

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from training import datafiles, metadata, package
from training.data import (
    DEFAULT_ROWS,
    DEFAULT_SEED,
    FEATURE_NAMES,
    LABEL_NAME,
    generate,
    holdout_split,
)
from training.model import MODEL_NAME, VERSIONS, ModelVersion, fit, holdout_auc

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
    """Generate the data once, then fit every version and write it with ``training.package``."""
    metadata.check_serving_compatibility(metadata.library_versions())
    dataset = generate(seed=seed, n_rows=n_rows)
    train, test = holdout_split(dataset, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    reference = datafiles.Rows(features=dataset.features[train])  # package() reads only the features
    samples = datafiles.Rows(features=dataset.features[test], labels=dataset.labels[test], row_numbers=test)

    built = []
    for version in versions:
        pipeline = fit(version, dataset.features[train], dataset.labels[train])
        auc = holdout_auc(pipeline, dataset.features[test], dataset.labels[test])
        folder, document, _ = package.package(
            pipeline,
            name=MODEL_NAME,
            feature_names=list(FEATURE_NAMES),
            label_name=LABEL_NAME,
            reference=reference,
            samples=samples,
            out=out / version.folder,
            version_label=version.label,
            id_prefix="txn",
            metrics={
                "holdout_auc": metadata.round_metric(auc),
                "n_train": len(train),
                "n_test": len(test),
                "positive_rate": metadata.round_metric(dataset.positive_rate),
            },
        )
        built.append(BuiltVersion(folder=folder, metadata=document))
    return built


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
    hash_seed.reexec_pinned("training.build", argv)
    started = time.perf_counter()
    for result in build(out=args.out, seed=args.seed):
        print(_report(result))
    print(f"built {len(VERSIONS)} model versions in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
