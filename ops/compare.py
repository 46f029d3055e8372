"""Compare two model versions' predictions on the same input before switching.

    python -m ops.compare --a artifacts/fraud-detector --b artifacts/fraud-detector-v2 \\
        --input artifacts/fraud-detector/samples/labeled.csv --json
    python -m ops.compare --a-output s3://<output bucket>/predictions/2026-12-01/<version A>/<run>/ \\
        --b-output s3://<output bucket>/predictions/2026-12-01/<version B>/<run>/ --plot scores.png

Local mode scores the CSV's rows with both packaged models (model.onnx + metadata.json, onnxruntime). The
CSV has a header naming the features (any order; other columns such as the label are ignored) and
optionally an id column (--id-column, default "id"; without one, rows are numbered from 1).
S3 mode reads two Batch Transform outputs of the same input: every ``*.out`` object under each prefix,
lines ``<id>,<probability>`` (joined on the id) or ``<input row...>,<probability>`` (joined by position).

Reported: agreement of decisions, each at its model's threshold (metadata ``decision_threshold``, default
0.5; --a-threshold/--b-threshold override, and are the only source in S3 mode), the distribution of
score differences (B - A), PSI of B's scores against A's (A's deciles as bins), and the rows whose
score changed most. --json prints {"agreement_rate", "score_delta", "psi", "top_changes", ...}.

Exit codes: 0 compared (1 with --min-agreement when agreement is below it); 2 bad input (unreadable
files, different feature lists, rows that do not line up); 3 AWS, credentials or network.
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

import numpy as np

from ops.cli import EXIT_OK, AwsError, OperationFailed, Parser, UsageError, run

DEFAULT_THRESHOLD = 0.5
DEFAULT_ID_COLUMN = "id"
DEFAULT_TOP = 10
#: Bins with no rows on one side would make PSI infinite; a floor keeps it finite and comparable.
PSI_FLOOR = 1e-4
OUTPUT_SUFFIX = ".out"
DELTA_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class Scores:
    """One version's positive-class scores for the compared rows, in row order."""

    label: str
    threshold: float
    ids: list[str]
    scores: np.ndarray

    @property
    def decisions(self) -> np.ndarray:
        return self.scores >= self.threshold  # the serving code's rule: positive when score >= threshold


# -- local mode: two packaged models, one CSV ----------------------------------------------------------------------
@dataclass(frozen=True)
class PackagedModel:
    directory: Path
    version: str
    feature_names: list[str]
    threshold: float
    input_name: str | None
    output_name: str
    positive_column: int

    @classmethod
    def load(cls, directory: Path, option: str) -> "PackagedModel":
        path = directory / "metadata.json"
        try:
            metadata = json.loads(path.read_text())
            names = [str(name) for name in metadata["feature_names"]]
            threshold = float(metadata.get("decision_threshold", DEFAULT_THRESHOLD))
            positive = int(metadata.get("positive_class", 1))
            onnx = metadata.get("onnx") or {}
        except OSError as error:
            raise UsageError(f"{option}: cannot read {path}: {error.strerror or error}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise UsageError(f"{option}: {path} is not model metadata ({type(error).__name__}: {error})") from None
        if not (directory / "model.onnx").is_file():
            raise UsageError(f"{option}: {directory} has no model.onnx; package the model with training.package")
        return cls(directory=directory, version=str(metadata.get("model_version", directory.name)),
                   feature_names=names, threshold=threshold, input_name=onnx.get("input_name"),
                   output_name=str(onnx.get("probabilities_output", "probabilities")), positive_column=positive)

    def score(self, rows: np.ndarray) -> np.ndarray:
        import onnxruntime

        try:
            session = onnxruntime.InferenceSession(str(self.directory / "model.onnx"),
                                                   providers=["CPUExecutionProvider"])
            input_name = self.input_name or session.get_inputs()[0].name
            probabilities = session.run([self.output_name], {input_name: rows.astype(np.float32)})[0]
            return np.asarray(probabilities, dtype=np.float64)[:, self.positive_column]
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types for unreadable graphs
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UsageError(f"cannot score with {self.directory / 'model.onnx'}: {message}") from None


def read_feature_csv(path: Path, feature_names: Sequence[str], id_column: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """Row ids and one float column per feature, read by header name."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read --input {path}: {getattr(error, 'strerror', None) or error}") from None
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    if not header:
        raise UsageError(f"--input {path} is empty; it needs a header row naming the features")
    missing = [name for name in feature_names if name not in header]
    if missing:
        raise UsageError(f"--input {path} has no column for feature(s) {', '.join(missing)} (its header: "
                         f"{', '.join(header[:20])})")
    positions = {name: header.index(name) for name in feature_names}
    id_position = header.index(id_column) if id_column in header else None
    ids, values = [], {name: [] for name in feature_names}
    for line_number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise UsageError(f"--input {path} line {line_number} has {len(row)} fields, the header has {len(header)}")
        for name, position in positions.items():
            cell = row[position].strip()
            try:
                values[name].append(float(cell) if cell else math.nan)
            except ValueError:
                raise UsageError(f"--input {path} line {line_number}: {name} is not a number: {cell!r}") from None
        ids.append(row[id_position] if id_position is not None else str(len(ids) + 1))
    if not ids:
        raise UsageError(f"--input {path} has a header but no rows")
    return ids, {name: np.asarray(column, dtype=np.float64) for name, column in values.items()}


def score_locally(a_dir: Path, b_dir: Path, input_csv: Path, *, id_column: str) -> tuple[Scores, Scores]:
    model_a, model_b = PackagedModel.load(a_dir, "--a"), PackagedModel.load(b_dir, "--b")
    if set(model_a.feature_names) != set(model_b.feature_names):
        only_a = sorted(set(model_a.feature_names) - set(model_b.feature_names))
        only_b = sorted(set(model_b.feature_names) - set(model_a.feature_names))
        raise UsageError(f"the two versions take different features (only in A: {', '.join(only_a) or '-'}; "
                         f"only in B: {', '.join(only_b) or '-'}): their scores on one input are not comparable")
    ids, columns = read_feature_csv(input_csv, model_a.feature_names, id_column)
    results = []
    for model in (model_a, model_b):
        # Each model gets the columns in its own order: the same features may be listed differently.
        rows = np.column_stack([columns[name] for name in model.feature_names])
        results.append(Scores(label=model.version, threshold=model.threshold, ids=ids,
                              scores=model.score(rows)))
    return results[0], results[1]


# -- S3 mode: two Batch Transform outputs --------------------------------------------------------------------------
def parse_s3_uri(text: str, option: str) -> tuple[str, str]:
    if not text.startswith("s3://"):
        raise UsageError(f"{option} must be an S3 URI such as s3://bucket/predictions/<date>/<version>/<run>/, "
                         f"got {text!r}")
    bucket, _, prefix = text[5:].partition("/")
    if not bucket:
        raise UsageError(f"{option} must name a bucket: {text!r}")
    return bucket, prefix


def read_batch_output(s3: Any, uri: str, option: str) -> tuple[list[str], np.ndarray, str | None]:
    """(row ids or None-like positions, scores, model version from manifest.json if present)."""
    from botocore.exceptions import ClientError

    bucket, prefix = parse_s3_uri(uri, option)
    keys, version = [], None
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(OUTPUT_SUFFIX))
        keys.sort()
        if not keys:
            raise UsageError(f"{option}: no {OUTPUT_SUFFIX} objects under {uri}; is it a finished run's prefix "
                             "(predictions/<date>/<version>/<run>/)?")
        ids, scores = [], []
        for key in keys:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            for line_number, row in enumerate(csv.reader(io.StringIO(body.decode("utf-8"))), start=1):
                if not row:
                    continue
                try:
                    score = float(row[-1])
                except ValueError:
                    raise UsageError(f"{option}: s3://{bucket}/{key} line {line_number} does not end with a "
                                     f"score: {','.join(row)[:80]!r}") from None
                # <id>,<score> when the stack keeps an id column; otherwise the row is the whole input.
                ids.append(row[0] if len(row) == 2 else f"{key.rsplit('/', 1)[-1]}:{line_number}")
                scores.append(score)
        try:
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix.rstrip("/") + "/manifest.json")["Body"]
                                  .read())
            version = manifest.get("model_version")
        except ClientError:
            version = None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "NoSuchKey", "404"):
            raise UsageError(f"{option}: cannot read {uri}: {code}") from None
        raise AwsError(f"{option}: cannot read {uri}: {code}: {error.response.get('Error', {}).get('Message', '')}"
                       ) from None
    except UnicodeDecodeError:
        raise UsageError(f"{option}: the outputs under {uri} are not UTF-8 text") from None
    return ids, np.asarray(scores, dtype=np.float64), version


def align(a: tuple[list[str], np.ndarray], b: tuple[list[str], np.ndarray]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Join on the id when both sides have unique ids; otherwise by position, which needs equal row counts."""
    (ids_a, scores_a), (ids_b, scores_b) = a, b
    if len(ids_a) != len(ids_b):
        raise UsageError(f"the two outputs have different row counts (A: {len(ids_a)}, B: {len(ids_b)}); "
                         "compare two runs over the same input")
    unique = len(set(ids_a)) == len(ids_a) and len(set(ids_b)) == len(ids_b)
    if not unique or ids_a == ids_b:
        return ids_a, scores_a, scores_b
    if set(ids_a) != set(ids_b):
        only_a = sorted(set(ids_a) - set(ids_b))
        raise UsageError(f"the two outputs score different rows: {len(only_a)} id(s) only in A, e.g. "
                         f"{', '.join(only_a[:3])}")
    position_b = {row_id: index for index, row_id in enumerate(ids_b)}
    order = np.asarray([position_b[row_id] for row_id in ids_a])
    return ids_a, scores_a, scores_b[order]


def score_from_s3(s3: Any, a_uri: str, b_uri: str, *, thresholds: tuple[float, float]) -> tuple[Scores, Scores]:
    ids_a, scores_a, version_a = read_batch_output(s3, a_uri, "--a-output")
    ids_b, scores_b, version_b = read_batch_output(s3, b_uri, "--b-output")
    ids, scores_a, scores_b = align((ids_a, scores_a), (ids_b, scores_b))
    return (Scores(label=version_a or a_uri, threshold=thresholds[0], ids=ids, scores=scores_a),
            Scores(label=version_b or b_uri, threshold=thresholds[1], ids=ids, scores=scores_b))


# -- the comparison ------------------------------------------------------------------------------------------------
def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of ``current`` against ``reference``, over the reference's deciles.

    Bins as the drift baseline defines them: interior decile edges, duplicates removed, (-inf, e1], ...,
    (ek, +inf). Empty bins are floored at 1e-4 so one empty bin does not make PSI infinite.
    """
    edges = np.unique(np.quantile(reference, np.linspace(0.1, 0.9, 9)))

    def fractions(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
        return np.maximum(counts / max(len(values), 1), PSI_FLOOR)

    expected, actual = fractions(reference), fractions(current)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def compare(a: Scores, b: Scores, *, top: int) -> dict[str, Any]:
    if len(a.scores) != len(b.scores):
        raise UsageError(f"different row counts (A: {len(a.scores)}, B: {len(b.scores)})")
    finite = np.isfinite(a.scores) & np.isfinite(b.scores)
    if not finite.all():
        raise UsageError(f"{int((~finite).sum())} row(s) have no finite score (e.g. id "
                         f"{a.ids[int(np.flatnonzero(~finite)[0])]}); check the input for missing or extreme values")
    delta = b.scores - a.scores
    decisions_a, decisions_b = a.decisions, b.decisions
    order = np.argsort(-np.abs(delta), kind="stable")[:top]
    quantiles = np.quantile(delta, DELTA_QUANTILES)
    return {
        "rows": int(len(delta)),
        "a": {"label": a.label, "threshold": a.threshold, "positive_rate": round(float(decisions_a.mean()), 6),
              "mean_score": round(float(a.scores.mean()), 6)},
        "b": {"label": b.label, "threshold": b.threshold, "positive_rate": round(float(decisions_b.mean()), 6),
              "mean_score": round(float(b.scores.mean()), 6)},
        "agreement_rate": round(float((decisions_a == decisions_b).mean()), 6),
        "flips": {"negative_to_positive": int((~decisions_a & decisions_b).sum()),
                  "positive_to_negative": int((decisions_a & ~decisions_b).sum())},
        "score_delta": {
            "mean": round(float(delta.mean()), 6), "std": round(float(delta.std()), 6),
            "mean_abs": round(float(np.abs(delta).mean()), 6), "max_abs": round(float(np.abs(delta).max()), 6),
            "min": round(float(delta.min()), 6), "max": round(float(delta.max()), 6),
            **{f"p{round(q * 100):02d}": round(float(value), 6) for q, value in zip(DELTA_QUANTILES, quantiles)},
        },
        "psi": round(psi(a.scores, b.scores), 6),
        "top_changes": [{"id": a.ids[index], "score_a": round(float(a.scores[index]), 6),
                         "score_b": round(float(b.scores[index]), 6), "delta": round(float(delta[index]), 6),
                         "decision_a": int(decisions_a[index]), "decision_b": int(decisions_b[index])}
                        for index in order.tolist()],
    }


def text_report(result: dict[str, Any]) -> str:
    delta = result["score_delta"]
    lines = [
        f"rows            {result['rows']}",
        f"A               {result['a']['label']} (threshold {result['a']['threshold']:g}, positive rate "
        f"{result['a']['positive_rate']:.4f})",
        f"B               {result['b']['label']} (threshold {result['b']['threshold']:g}, positive rate "
        f"{result['b']['positive_rate']:.4f})",
        f"agreement       {result['agreement_rate']:.4%} ({result['flips']['negative_to_positive']} became positive, "
        f"{result['flips']['positive_to_negative']} became negative)",
        f"score B - A     mean {delta['mean']:+.5f}  p01 {delta['p01']:+.5f}  p50 {delta['p50']:+.5f}  "
        f"p99 {delta['p99']:+.5f}  max |delta| {delta['max_abs']:.5f}",
        f"PSI             {result['psi']:.5f} (under 0.1: stable; 0.1-0.25: moderate shift; over 0.25: large)",
        "largest changes (id, A, B, B - A):",
    ]
    lines += [f"  {row['id']:<20} {row['score_a']:.5f} {row['score_b']:.5f} {row['delta']:+.5f}"
              + ("  decision changed" if row["decision_a"] != row["decision_b"] else "")
              for row in result["top_changes"]]
    return "\n".join(lines)


def plot(path: Path, a: Scores, b: Scores) -> None:
    from ops.pictures import pyplot, save_png

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.5))
    low = min(float(a.scores.min()), float(b.scores.min()), 0.0)
    high = max(float(a.scores.max()), float(b.scores.max()), 1.0)
    bins = np.linspace(low, high, 51)
    for name, scores, color in (("A", a, "tab:blue"), ("B", b, "tab:orange")):
        axis.hist(scores.scores, bins=bins, alpha=0.5, color=color, label=f"{name}: {scores.label}")
        axis.axvline(scores.threshold, color=color, linestyle="--", linewidth=1,
                     label=f"{name} threshold {scores.threshold:g}")
    axis.set_yscale("log")
    axis.set_xlabel("positive-class score")
    axis.set_ylabel("rows (log scale)")
    axis.set_title(f"Score distributions of two model versions ({len(a.scores)} rows)")
    axis.legend()
    figure.tight_layout()
    save_png(figure, path)


# -- the command ---------------------------------------------------------------------------------------------------
def build_parser() -> Parser:
    parser = Parser(prog="python -m ops.compare", description=__doc__)
    parser.add_argument("--a", type=Path, help="model A's packaged artifacts (model.onnx, metadata.json)")
    parser.add_argument("--b", type=Path, help="model B's packaged artifacts")
    parser.add_argument("--input", type=Path, help="CSV with a header naming the features (and an id column)")
    parser.add_argument("--id-column", default=DEFAULT_ID_COLUMN, help="the CSV's id column (default: id)")
    parser.add_argument("--a-output", help="S3 prefix of model A's Batch Transform output")
    parser.add_argument("--b-output", help="S3 prefix of model B's Batch Transform output, same input")
    parser.add_argument("--a-threshold", type=float, help="A's decision threshold (default: its metadata, or 0.5)")
    parser.add_argument("--b-threshold", type=float, help="B's decision threshold (default: its metadata, or 0.5)")
    parser.add_argument("--region", help="AWS region for S3 mode")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, help=f"rows of largest change (default {DEFAULT_TOP})")
    parser.add_argument("--min-agreement", type=float, help="exit 1 when the agreement rate is below this (0-1)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--plot", type=Path, help="write a histogram of both score distributions to this PNG")
    return parser


def _mode(args: Any) -> str:
    local = [args.a, args.b, args.input]
    remote = [args.a_output, args.b_output]
    if any(value is not None for value in local) and any(value is not None for value in remote):
        raise UsageError("give --a/--b/--input (score locally) or --a-output/--b-output (read S3), not both")
    if all(value is not None for value in local):
        return "local"
    if all(value is not None for value in remote):
        return "s3"
    raise UsageError("give --a DIR --b DIR --input CSV, or --a-output S3URI --b-output S3URI")


def _check_numbers(args: Any) -> None:
    problems = []
    for name in ("a_threshold", "b_threshold", "min_agreement"):
        value = getattr(args, name)
        if value is not None and not 0.0 <= value <= 1.0:
            problems.append(f"--{name.replace('_', '-')} must be between 0 and 1, got {value:g}")
    if args.top < 0:
        problems.append("--top must be 0 or more")
    if args.plot is not None and not args.plot.parent.is_dir():
        problems.append(f"cannot write {args.plot}: {args.plot.parent} is not a directory")
    if problems:
        raise UsageError("; ".join(problems))


def _s3_client(region: str | None) -> Any:
    import boto3

    return boto3.session.Session(region_name=region).client("s3")


def compare_command(args: Any, s3_client: Callable[[], Any], out: TextIO) -> int:
    mode = _mode(args)
    _check_numbers(args)
    if mode == "local":
        a, b = score_locally(args.a, args.b, args.input, id_column=args.id_column)
    else:
        a, b = score_from_s3(s3_client(), args.a_output, args.b_output, thresholds=(DEFAULT_THRESHOLD,
                                                                                      DEFAULT_THRESHOLD))
    if args.a_threshold is not None:
        a = Scores(a.label, args.a_threshold, a.ids, a.scores)
    if args.b_threshold is not None:
        b = Scores(b.label, args.b_threshold, b.ids, b.scores)
    result = compare(a, b, top=args.top)
    print(json.dumps(result, indent=2) if args.json else text_report(result), file=out)
    if args.plot:
        plot(args.plot, a, b)
    if args.min_agreement is not None and result["agreement_rate"] < args.min_agreement:
        raise OperationFailed(f"agreement {result['agreement_rate']:.4%} is below --min-agreement "
                              f"{args.min_agreement:.4%}")
    return EXIT_OK


def main(argv: list[str] | None = None, *, s3_client: Callable[[], Any] | None = None,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``s3_client()`` makes the S3 client (tests pass a stubbed one)."""
    out, err = out or sys.stdout, err or sys.stderr

    def command() -> int:
        args = build_parser().parse_args(argv)
        return compare_command(args, s3_client or (lambda: _s3_client(args.region)), out)

    return run(command, err=err)


if __name__ == "__main__":
    sys.exit(main())
