"""Upload ground-truth labels where Model Monitor's model-quality runs merge them with captured predictions.

    python -m ops.labels upload --file labels.csv --bucket <capture bucket>
                                [--prefix monitoring/ground-truth] [--id-column C] [--label-column C]
                                [--time 2025-01-31T14:00Z] [--region REGION] [--dry-run]
    python -m ops.labels format --file labels.csv [--id-column C] [--label-column C]

``labels.csv`` has a header row, an inference-id column (``inference_id`` or ``id``) and a 0/1 label
column (``label``, ``is_fraud`` or ``ground_truth``). Each row becomes one JSON line in Model Monitor's
ground-truth format, matched to the captured inference whose ``InferenceId`` (the value passed to
InvokeEndpoint) equals the row's id::

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"}, "eventVersion": "0"}

Label only inferences sent with one feature row and ``Accept: text/csv``: the model-quality job reads the
probability from column 0 of the captured CSV response, and a JSON response has no such column.

The file lands under ``<prefix>/yyyy/mm/dd/hh/`` for the hour the labels were collected (now, UTC,
unless ``--time``); the key ends with a hash of the content, so uploading the same file again in the
same hour replaces it instead of duplicating labels. The bucket and prefix are the real-time stack's
``GroundTruthUri`` output.

Exit codes (``ops/cli.py``'s table): 0 written; 2 the label file or the arguments are wrong (every
problem is listed, on one line); 3 AWS refused or could not be reached. ``upload --json`` prints where
the labels went as one JSON document.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, TextIO

from ops import cli

EXIT_OK = cli.EXIT_OK
EXIT_USAGE = cli.EXIT_USAGE
EXIT_AWS = cli.EXIT_AWS
DEFAULT_PREFIX = "monitoring/ground-truth"
ID_COLUMNS = ("inference_id", "id")
LABEL_COLUMNS = ("label", "is_fraud", "ground_truth")
LABEL_VALUES = ("0", "1")
#: InvokeEndpoint's InferenceId: 1..64 characters, none of them control characters or spaces at the ends.
MAX_ID_LENGTH = 64
MAX_PROBLEMS_SHOWN = 20
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class LabelFileError(cli.UsageError):
    """The label file cannot be used; ``problems`` lists every reason, with line numbers (one line, ``; ``)."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:MAX_PROBLEMS_SHOWN]
        more = len(self.problems) - len(shown)
        listed = "; ".join(" ".join(problem.split()) for problem in shown)
        if more:
            listed += f"; ... and {more} more"
        super().__init__(f"{path}: {len(self.problems)} problem(s): {listed}")


@dataclass(frozen=True)
class Label:
    inference_id: str
    value: str


def ground_truth_record(label: Label) -> dict[str, Any]:
    """One ground-truth record in the format Model Monitor merges by event id."""
    return {"groundTruthData": {"data": label.value, "encoding": "CSV"},
            "eventMetadata": {"eventId": label.inference_id},
            "eventVersion": "0"}


def to_jsonl(labels: Iterable[Label]) -> bytes:
    return "".join(json.dumps(ground_truth_record(label), separators=(",", ":")) + "\n"
                   for label in labels).encode()


def _pick(header: list[str], wanted: str | None, candidates: Sequence[str], what: str,
          problems: list[str]) -> int | None:
    if wanted is not None:
        if wanted not in header:
            problems.append(f"line 1: no column {wanted!r} for the {what}; the header has {', '.join(header)}")
            return None
        return header.index(wanted)
    for name in candidates:
        if name in header:
            return header.index(name)
    problems.append(f"line 1: no {what} column; name it one of {', '.join(candidates)} or pass "
                    f"--{what.replace(' ', '-')}-column (the header has {', '.join(header) or 'nothing'})")
    return None


def _rows(reader: Any, problems: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, row) for every row the CSV module can read; a row it refuses becomes a problem."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over csv.field_size_limit(), a bare carriage return in a field
            problems.append(f"line {reader.line_num}: not a CSV row ({exc})")
            continue
        # line_num is the row's last physical line, so a quoted value spanning lines doesn't shift later numbers
        yield reader.line_num, row


def parse_labels(text: str, *, path: str = "<labels>", id_column: str | None = None,
                 label_column: str | None = None) -> list[Label]:
    """Read a labels CSV; raise :class:`LabelFileError` listing every problem at once."""
    problems: list[str] = []
    rows = _rows(csv.reader(io.StringIO(text)), problems)
    header = [cell.strip() for cell in next(rows, (1, []))[1]]
    if problems:
        raise LabelFileError(path, problems)
    if not any(header):
        raise LabelFileError(path, ["the file is empty; it needs a header row and one row per label"])
    id_at = _pick(header, id_column, ID_COLUMNS, "id", problems)
    label_at = _pick(header, label_column, LABEL_COLUMNS, "label", problems)
    if problems:
        raise LabelFileError(path, problems)
    labels: list[Label] = []
    first_seen: dict[str, int] = {}
    for line_number, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"line {line_number}: {len(row)} values, the header has {len(header)}")
            continue
        inference_id, value = row[id_at].strip(), row[label_at].strip()
        if not inference_id:
            problems.append(f"line {line_number}: empty inference id")
        elif len(inference_id) > MAX_ID_LENGTH or not inference_id.isprintable():
            problems.append(f"line {line_number}: inference id {inference_id[:70]!r} is not 1..{MAX_ID_LENGTH} "
                            "printable characters (InvokeEndpoint's InferenceId)")
        elif inference_id in first_seen:
            problems.append(f"line {line_number}: inference id {inference_id!r} repeats line "
                            f"{first_seen[inference_id]}; each inference gets one label")
        else:
            first_seen[inference_id] = line_number
        if value not in LABEL_VALUES:
            problems.append(f"line {line_number}: label {value!r} is not 0 or 1 (binary classification)")
        labels.append(Label(inference_id, value))
    if not labels and not problems:
        problems.append("no label rows after the header")
    if problems:
        raise LabelFileError(path, problems)
    return labels


def object_key(prefix: str, collected_at: dt.datetime, body: bytes) -> str:
    """``<prefix>/yyyy/mm/dd/hh/labels-<UTC stamp>-<content hash>.jsonl`` (the hour the labels were collected)."""
    at = collected_at.astimezone(dt.timezone.utc)
    digest = hashlib.sha256(body).hexdigest()[:12]
    return f"{prefix.strip('/')}/{at:%Y/%m/%d/%H}/labels-{at:%Y%m%dT%H}-{digest}.jsonl"


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 timestamp; without a zone it is UTC."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2025-01-31T14:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


EXAMPLES = """examples:
  python -m ops.labels format --file labels.csv
  python -m ops.labels upload --file labels.csv --bucket <capture bucket> --dry-run
  python -m ops.labels upload --file labels.csv --bucket <capture bucket> --time 2025-01-31T14:00Z --json
"""


def _parser() -> argparse.ArgumentParser:
    parser = cli.Parser(prog="python -m ops.labels", description=__doc__.split("\n\n")[0], epilog=EXAMPLES)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("upload", "convert a labels CSV and upload it under the ground-truth prefix"),
                            ("format", "print the JSON lines a labels CSV becomes (no AWS)")):
        command = commands.add_parser(name, help=help_text, epilog=EXAMPLES)
        command.add_argument("--file", required=True, help="labels CSV with a header row")
        command.add_argument("--id-column", help=f"inference id column (default: first of {', '.join(ID_COLUMNS)})")
        command.add_argument("--label-column",
                             help=f"0/1 label column (default: first of {', '.join(LABEL_COLUMNS)})")
        if name == "upload":
            command.add_argument("--bucket", required=True, help="the capture bucket (stack output GroundTruthUri)")
            command.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"ground-truth prefix ({DEFAULT_PREFIX})")
            command.add_argument("--time", type=parse_time, help="when the labels were collected (default: now)")
            command.add_argument("--region", help="AWS region (default: the CLI's)")
            command.add_argument("--dry-run", action="store_true", help="print the target key, upload nothing")
            command.add_argument("--json", action="store_true", help="print the result as one JSON document")
    return parser


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelFileError(path, ["file not found"]) from None
    except UnicodeDecodeError as exc:
        raise LabelFileError(path, [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise LabelFileError(path, [exc.strerror or str(exc)]) from None


def main(argv: Sequence[str] | None = None, *, s3_client: Any = None, now: dt.datetime | None = None,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout

    def command() -> int:
        args = _parser().parse_args(argv)
        labels = parse_labels(_read(args.file), path=args.file, id_column=args.id_column,
                              label_column=args.label_column)
        body = to_jsonl(labels)
        if args.command == "format":
            out.write(body.decode())
            return EXIT_OK
        if not BUCKET_PATTERN.fullmatch(args.bucket):
            raise cli.UsageError(f"--bucket {args.bucket!r} is not an S3 bucket name (give the name, not an s3:// URI)")
        key = object_key(args.prefix, args.time or now or dt.datetime.now(dt.timezone.utc), body)
        target = f"s3://{args.bucket}/{key}"
        report = {"labels": len(labels), "uri": target, "uploaded": not args.dry_run}
        if not args.dry_run:
            _upload(s3_client, args, key, body, target)
        if args.json:
            print(json.dumps(report, indent=2), file=out)
        else:
            verb = "would upload" if args.dry_run else "uploaded"
            print(f"{verb} {len(labels)} label(s) to {target}", file=out)
        return EXIT_OK

    return cli.run(command, err=err)


def _upload(client: Any, args: argparse.Namespace, key: str, body: bytes, target: str) -> None:
    import botocore.exceptions

    try:
        if client is None:
            import boto3

            client = boto3.client("s3", region_name=args.region)
        client.put_object(Bucket=args.bucket, Key=key, Body=body, ContentType="application/jsonlines")
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise cli.AwsError(f"upload to {target} failed: {error.get('Code')}: {error.get('Message')}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise cli.AwsError(f"could not reach S3: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
