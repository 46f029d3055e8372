"""Files of rows uploaded under ``incoming/`` become predictions under ``predictions/<date>/``.

Accepted files: CSV (``.csv``; either exactly ``n_features`` numeric columns, or a first line naming every
feature, in any order, plus optionally an ``id`` column and other ignored columns) and JSON Lines
(``.jsonl``/``.ndjson``; each line ``{"features": [...], "id": ...}`` or a bare ``[...]``).

Output: ``predictions/<date>/<name>.<model version>.<upload>.jsonl``, one line per input row
``{"line", "id"?, "prediction", "confidence", "model_version", "predicted_at"}``. ``<upload>`` names the
upload: its S3 event time to the millisecond and 12 hex digits of a hash of the object's version id
(``20260509T101112345Z-1a2b3c4d5e6f``; the event's sequencer stands in on an unversioned bucket). All of
it comes from the event, never the clock, so a retried event overwrites the same object instead of
duplicating it, while two uploads of one name, even in the same second, get their own results. A name
that would make a key longer than S3's 1024 bytes keeps its head and ends in ``~<16 hex digits of its hash>``.

A bad file is copied to ``rejected/<date>/<upload>/<name>`` with ``<name>.reason.json`` beside it; the
original is never deleted or rewritten. Nothing is ever written under the input prefix: the function listens
there, and a write would trigger it again (a loop). Failures that are not the file's fault (S3, the
model) raise, so the asynchronous invocation is retried and finally sent to the on-failure destination.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from array import array
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Iterable, Iterator, Mapping
from urllib.parse import quote, unquote_plus

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from serverless_inference.api import Feature
from serverless_inference.model import OnnxModel, is_representable

INPUT_PREFIX_ENV = "INPUT_PREFIX"
OUTPUT_PREFIX_ENV = "OUTPUT_PREFIX"
REJECTED_PREFIX_ENV = "REJECTED_PREFIX"
MAX_FILE_BYTES_ENV = "MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
ID_COLUMN = "id"
MAX_REASONS = 10
#: Hex digits of the version-id hash in output names: same-name uploads in one millisecond still differ.
UPLOAD_TAG_HEX = 12
#: S3's key length limit (UTF-8 bytes), which derived output and rejection keys must respect.
MAX_KEY_BYTES = 1024
#: Hex digits of the name hash that stands in for the cut tail of a name too long to keep whole.
KEY_HASH_HEX = 16
REASON_SUFFIX = ".reason.json"
#: The URL-quoted source key in user metadata is cut to this (S3 allows 2 KB of user metadata in all).
MAX_METADATA_KEY_CHARS = 1024
#: Rows scored per ONNX call: bounds the float32 batch held in memory at once.
SCORING_CHUNK_ROWS = 10_000
#: Output written per multipart part (S3's minimum part is 5 MiB): bounds the output held in memory.
OUTPUT_PART_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class UploadSettings:
    """Where files arrive and where results go; the prefixes must not overlap (no recursive trigger)."""

    input_prefix: str = "incoming/"
    output_prefix: str = "predictions/"
    rejected_prefix: str = "rejected/"
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    def __post_init__(self) -> None:
        problems = []
        for name in ("output_prefix", "rejected_prefix"):
            written = getattr(self, name)
            if not self.input_prefix or written.startswith(self.input_prefix) or self.input_prefix.startswith(written):
                problems.append(f"{name} {written!r} overlaps input_prefix {self.input_prefix!r}: writing there "
                                "would trigger the function again")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "UploadSettings":
        defaults = cls()
        return cls(input_prefix=environ.get(INPUT_PREFIX_ENV, defaults.input_prefix),
                   output_prefix=environ.get(OUTPUT_PREFIX_ENV, defaults.output_prefix),
                   rejected_prefix=environ.get(REJECTED_PREFIX_ENV, defaults.rejected_prefix),
                   max_file_bytes=int(environ.get(MAX_FILE_BYTES_ENV, defaults.max_file_bytes)))


class RejectedFile(Exception):
    """The file itself is unusable; it is recorded under the rejected prefix with this reason."""

    def __init__(self, reason: str, details: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason, self.details = reason, details or []


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one uploaded object."""

    source_key: str
    status: str  # "predicted", "rejected" or "ignored"
    output_key: str | None = None
    rows: int = 0
    reason: str | None = None


@dataclass(frozen=True)
class ParsedRows:
    rows: np.ndarray
    lines: "array[int]"  # 1-based line number of each row
    ids: list[Any] | None


# defer_build: the schema is built on the first uploaded file, not during every cold start of the API path.
class _JsonRow(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    features: list[Feature]
    id: Annotated[str, Field(strict=True)] | Annotated[int, Field(strict=True)] | None = None


_BARE_ROW = TypeAdapter(list[Feature], config=ConfigDict(defer_build=True))


def is_s3_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and all(isinstance(record, dict) and record.get("eventSource") == "aws:s3"
                                 for record in records)


def handle_s3_event(event: Mapping[str, Any], *, model: OnnxModel, settings: UploadSettings,
                    s3: Any, now: datetime | None = None) -> list[FileOutcome]:
    """Process every ``ObjectCreated`` record of an S3 notification event."""
    outcomes = []
    for record in event["Records"]:
        outcomes.append(_handle_record(record, model=model, settings=settings, s3=s3,
                                       now=now or datetime.now(timezone.utc)))
    return outcomes


def _handle_record(record: Mapping[str, Any], *, model: OnnxModel, settings: UploadSettings, s3: Any,
                   now: datetime) -> FileOutcome:
    bucket = record["s3"]["bucket"]["name"]
    key = unquote_plus(record["s3"]["object"]["key"])  # S3 URL-encodes keys in notifications
    version_id = record["s3"]["object"].get("versionId")
    if not str(record.get("eventName", "")).startswith("ObjectCreated"):
        return FileOutcome(key, "ignored", reason=f"event {record.get('eventName')!r} is not an upload")
    if not key.startswith(settings.input_prefix) or key.endswith("/"):
        return FileOutcome(key, "ignored", reason=f"not a file under {settings.input_prefix!r}")
    uploaded_at = _event_time(record, now)
    relative = key[len(settings.input_prefix):]
    date = uploaded_at.strftime("%Y-%m-%d")
    upload = upload_name(uploaded_at, version_id, record["s3"]["object"].get("sequencer"))
    predicted_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        parsed = parse_file(relative, _read(s3, bucket, key, version_id, record, settings), model.feature_names)
        # Every row is scored before anything is written, so a file rejected for one row leaves no output.
        probabilities = _score(model, parsed)
    except RejectedFile as exc:
        reason_key = _reject(s3, bucket, key, version_id, settings=settings, folder=f"{date}/{upload}/",
                             relative=relative, model=model, now=now, error=exc)
        return FileOutcome(key, "rejected", output_key=reason_key, reason=exc.reason)
    output_key = derived_key(f"{settings.output_prefix}{date}/", relative, f".{model.model_version}.{upload}.jsonl")
    rows = len(parsed.lines)
    _write(s3, settings, _prediction_lines(model, parsed, probabilities, predicted_at), Bucket=bucket,
           Key=output_key, ContentType="application/x-ndjson",
           Metadata={"model-version": model.model_version, "predicted-at": predicted_at,
                     "source-key": _metadata_key(key), "source-version-id": version_id or "null", "rows": str(rows)})
    return FileOutcome(key, "predicted", output_key=output_key, rows=rows)


def derived_key(head: str, relative: str, tail: str, *, reserve: int = 0) -> str:
    """``head + relative + tail``, with ``relative`` shortened when the key would pass S3's 1024-byte limit.

    An input key may itself be 1024 bytes, so output and rejection keys (which add a prefix, a date and a
    suffix) can overflow; S3 would refuse the write and the event would end in the failure queue. The name
    keeps as much of its head as fits, then ``~`` and 16 hex digits of a hash of the whole relative name, so
    two long names that share a head still get their own keys. ``reserve`` bytes are left free for a
    suffix the caller adds (``.reason.json``). The full source key is kept in metadata and the reason record.
    """
    limit = MAX_KEY_BYTES - reserve
    key = f"{head}{relative}{tail}"
    if len(key.encode("utf-8")) <= limit:
        return key
    marker = "~" + hashlib.sha256(relative.encode("utf-8")).hexdigest()[:KEY_HASH_HEX]
    room = limit - len(f"{head}{marker}{tail}".encode("utf-8"))
    # Cut on a character boundary: a partial UTF-8 sequence at the end is dropped.
    kept = relative.encode("utf-8")[:max(room, 0)].decode("utf-8", "ignore")
    return f"{head}{kept}{marker}{tail}"


def _metadata_key(key: str) -> str:
    """The source key for user metadata (URL-quoted ASCII), cut to fit: S3 allows 2 KB of user metadata."""
    quoted = quote(key)
    if len(quoted) <= MAX_METADATA_KEY_CHARS:
        return quoted
    # A cut must not split a %XX escape: quote a shorter key until it fits.
    cut = len(key)
    while len(quote(key[:cut])) > MAX_METADATA_KEY_CHARS - 3:
        cut -= 1
    return quote(key[:cut]) + "..."


def upload_name(uploaded_at: datetime, version_id: str | None, sequencer: str | None) -> str:
    """``<event time to the ms>Z-<hash of the version id>``: one name per upload, the same for a retried event.

    The version id is hashed because S3 allows it up to 1024 bytes of opaque text (including ``/``, a
    key's folder separator); the full id is kept in the output's metadata and the rejection record.
    """
    source = version_id if version_id and version_id != "null" else f"sequencer:{sequencer or ''}"
    tag = hashlib.sha256(source.encode("utf-8")).hexdigest()[:UPLOAD_TAG_HEX]
    return f"{uploaded_at:%Y%m%dT%H%M%S}{uploaded_at.microsecond // 1000:03d}Z-{tag}"


def parse_file(name: str, data: bytes, feature_names: tuple[str, ...]) -> ParsedRows:
    """Rows of a CSV or JSON Lines file; :class:`RejectedFile` naming the first bad lines."""
    lower = name.lower()
    if not lower.endswith(CSV_SUFFIXES + JSONL_SUFFIXES):
        raise RejectedFile(f"unsupported file type {name!r}: upload .csv or .jsonl files")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RejectedFile(f"the file is not UTF-8 text (byte {exc.start})") from None
    parser = _parse_csv if lower.endswith(CSV_SUFFIXES) else _parse_jsonl
    values, lines, ids, problems = parser(text, feature_names)
    if problems:
        raise RejectedFile(f"{len(problems)}{'+' if len(problems) >= MAX_REASONS else ''} invalid row(s), "
                           f"first: {problems[0]}", problems)
    if not lines:
        raise RejectedFile("the file has no rows")
    rows = np.frombuffer(values, dtype=np.float32).reshape(len(lines), len(feature_names))
    return ParsedRows(rows=rows, lines=lines, ids=ids)


def _parse_csv(text: str, feature_names: tuple[str, ...]):
    n_features = len(feature_names)
    # Line numbers in a typed array: 8 bytes a row, not a Python int each (~32 bytes) on 800k-row files.
    values, lines, problems = array("f"), array("q"), []
    ids: list[Any] | None = None
    columns: list[int] | None = None
    width = n_features
    id_column = None
    header_names = {*feature_names, ID_COLUMN}
    try:
        for line_number, row in _numbered_rows(csv.reader(_text_lines(text))):
            if columns is None:
                # A header names at least one feature (or the id column); anything else is a data row.
                if any(cell.strip() in header_names for cell in row):
                    header = [cell.strip() for cell in row]
                    missing = [name for name in feature_names if name not in header]
                    repeated = sorted({name for name in header if header.count(name) > 1})
                    if missing or repeated:
                        raise RejectedFile("the header " + "; ".join(
                            part for part in (f"lacks {', '.join(missing)}" if missing else "",
                                              f"repeats {', '.join(repeated)}" if repeated else "") if part))
                    columns, width = [header.index(name) for name in feature_names], len(header)
                    if ID_COLUMN in header:
                        id_column, ids = header.index(ID_COLUMN), []
                    continue
                columns = list(range(n_features))
            if len(row) != width:
                problems.append(f"line {line_number}: {len(row)} columns, expected {width}")
            else:
                parsed = [_number(row[column]) for column in columns]
                bad = [index for index, value in enumerate(parsed) if value is None]
                if bad:
                    name = feature_names[bad[0]]
                    problems.append(f"line {line_number}, {name}: {row[columns[bad[0]]][:40]!r} is not a finite "
                                    "float32 number")
                else:
                    values.extend(parsed)
                    lines.append(line_number)
                    if ids is not None:
                        ids.append(row[id_column])
            if len(problems) >= MAX_REASONS:
                break
    except csv.Error as exc:
        raise RejectedFile(f"the file is not valid CSV: {exc}") from None
    return values, lines, ids, problems


def _parse_jsonl(text: str, feature_names: tuple[str, ...]):
    n_features = len(feature_names)
    values, lines, ids, problems = array("f"), array("q"), [], []
    has_ids = False
    # JSON Lines separates records with "\n" only; str.splitlines() would also split on U+2028 inside strings.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            if line.lstrip().startswith("["):
                features, row_id = _BARE_ROW.validate_json(line), None
            else:
                row = _JsonRow.model_validate_json(line)
                features, row_id = row.features, row.id
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
            location = ".".join(str(part) for part in first["loc"])
            problems.append(f"line {line_number}: {location + ': ' if location else ''}{first['msg']}")
        else:
            if len(features) != n_features:
                problems.append(f"line {line_number}: {len(features)} features, expected {n_features}")
            else:
                values.extend(features)
                lines.append(line_number)
                ids.append(row_id)
                has_ids = has_ids or row_id is not None
        if len(problems) >= MAX_REASONS:
            break
    return values, lines, ids if has_ids else None, problems


#: One line with its ending, split as io.StringIO(newline="") splits: at "\r\n", "\r" or "\n".
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _text_lines(text: str) -> Iterator[str]:
    """The lines csv.reader reads, without io.StringIO's copy (4 bytes a character: 80 MB for a 20 MB file)."""
    return (match.group() for match in _LINE.finditer(text))


def _numbered_rows(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    for row in reader:
        if row and any(cell.strip() for cell in row):
            yield reader.line_num, row


def _number(cell: str) -> float | None:
    # The real-time endpoint's grammar: float() alone would also read "1_0" as 10 and non-ASCII digits
    # (Arabic-Indic, full-width) as numbers, which the endpoint refuses.
    if "_" in cell or not cell.isascii():
        return None
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if is_representable(value) else None


def _score(model: OnnxModel, parsed: ParsedRows) -> np.ndarray:
    """P(positive class) for every row, scored chunk by chunk; :class:`RejectedFile` naming rows it cannot score."""
    probabilities = np.empty(len(parsed.rows), dtype=np.float64)
    for start in range(0, len(parsed.rows), SCORING_CHUNK_ROWS):
        probabilities[start:start + SCORING_CHUNK_ROWS] = model.probabilities(
            parsed.rows[start:start + SCORING_CHUNK_ROWS])
    finite = np.isfinite(probabilities)
    if not finite.all():
        bad = [parsed.lines[int(row)] for row in np.flatnonzero(~finite)[:MAX_REASONS]]
        raise RejectedFile(f"the model cannot score line(s) {', '.join(map(str, bad))}: feature values are "
                           "too extreme")
    return probabilities


def _prediction_lines(model: OnnxModel, parsed: ParsedRows, probabilities: np.ndarray,
                      predicted_at: str) -> Iterator[bytes]:
    """The JSON Lines output, one encoded chunk of rows at a time (never the whole output in memory).

    Each line is formatted from a template (the constant parts JSON-encoded once): about 5x faster than
    ``json.dumps`` per row, which matters on a 512 MB function's fraction of a vCPU.
    """
    constant = (f',"model_version":{json.dumps(model.model_version)},'
                f'"predicted_at":{json.dumps(predicted_at)}}}\n')
    for start in range(0, len(probabilities), SCORING_CHUNK_ROWS):
        chunk = []
        decisions = model.decisions(probabilities[start:start + SCORING_CHUNK_ROWS])
        for offset, (prediction, confidence) in enumerate(decisions):
            index = start + offset
            row_id = f',"id":{json.dumps(parsed.ids[index])}' if parsed.ids is not None else ""
            chunk.append(f'{{"line":{parsed.lines[index]}{row_id},"prediction":{prediction},'
                         f'"confidence":{confidence!r}{constant}')
        yield "".join(chunk).encode("utf-8")


def _write(s3: Any, settings: UploadSettings, chunks: Iterable[bytes], **request: Any) -> None:
    """Write the chunks as one object: PutObject when they fit in one part, else a multipart upload.

    At most one part (``OUTPUT_PART_BYTES``) plus one chunk is held in memory, so a 20 MB upload no longer
    needs its ~100 MB output in memory at once. A failed multipart upload is aborted (best effort: the
    bucket's lifecycle rule removes what an abort could not) and the error raised, so the event is retried.
    """
    _refuse_input_prefix(request["Key"], settings)
    buffer, upload_id, parts = bytearray(), None, []
    try:
        for chunk in chunks:
            buffer += chunk
            if len(buffer) >= OUTPUT_PART_BYTES:
                if upload_id is None:
                    upload_id = s3.create_multipart_upload(**request)["UploadId"]
                parts.append(_upload_part(s3, request, upload_id, len(parts) + 1, bytes(buffer)))
                buffer = bytearray()
        if upload_id is None:
            s3.put_object(Body=bytes(buffer), **request)
            return
        if buffer:
            parts.append(_upload_part(s3, request, upload_id, len(parts) + 1, bytes(buffer)))
        s3.complete_multipart_upload(Bucket=request["Bucket"], Key=request["Key"], UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
    except BaseException:
        if upload_id is not None:
            try:
                s3.abort_multipart_upload(Bucket=request["Bucket"], Key=request["Key"], UploadId=upload_id)
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
        raise


def _upload_part(s3: Any, request: Mapping[str, Any], upload_id: str, number: int, body: bytes) -> dict[str, Any]:
    response = s3.upload_part(Bucket=request["Bucket"], Key=request["Key"], UploadId=upload_id, PartNumber=number,
                              Body=body)
    return {"ETag": response["ETag"], "PartNumber": number}


def _read(s3: Any, bucket: str, key: str, version_id: str | None, record: Mapping[str, Any],
          settings: UploadSettings) -> bytes:
    size = record["s3"]["object"].get("size")
    if isinstance(size, int) and size > settings.max_file_bytes:
        raise RejectedFile(f"the file has {size} bytes, at most {settings.max_file_bytes} are accepted")
    request = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    data = s3.get_object(**request)["Body"].read(settings.max_file_bytes + 1)
    if len(data) > settings.max_file_bytes:
        raise RejectedFile(f"the file exceeds {settings.max_file_bytes} bytes")
    return data


def _reject(s3: Any, bucket: str, key: str, version_id: str | None, *, settings: UploadSettings, folder: str,
            relative: str, model: OnnxModel, now: datetime, error: RejectedFile) -> str:
    copy_key = derived_key(f"{settings.rejected_prefix}{folder}", relative, "", reserve=len(REASON_SUFFIX))
    reason_key = f"{copy_key}{REASON_SUFFIX}"
    source = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    _copy(s3, settings, Bucket=bucket, Key=copy_key, CopySource=source)
    reason = {"source": {"bucket": bucket, "key": key, "version_id": version_id}, "reason": error.reason,
              "details": error.details, "copy": copy_key, "model_version": model.model_version,
              "rejected_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    _put(s3, settings, Bucket=bucket, Key=reason_key, Body=json.dumps(reason, indent=2).encode("utf-8"),
         ContentType="application/json", Metadata={"model-version": model.model_version,
                                                   "source-key": _metadata_key(key)})
    return reason_key


def _put(s3: Any, settings: UploadSettings, **request: Any) -> None:
    _refuse_input_prefix(request["Key"], settings)
    s3.put_object(**request)


def _copy(s3: Any, settings: UploadSettings, **request: Any) -> None:
    _refuse_input_prefix(request["Key"], settings)
    s3.copy_object(**request)


def _refuse_input_prefix(key: str, settings: UploadSettings) -> None:
    if key.startswith(settings.input_prefix):
        raise RuntimeError(f"refusing to write {key!r} under the input prefix {settings.input_prefix!r}")


def _event_time(record: Mapping[str, Any], default: datetime) -> datetime:
    try:
        return datetime.fromisoformat(str(record["eventTime"]).replace("Z", "+00:00")).astimezone(timezone.utc)
    except (KeyError, ValueError):
        return default
