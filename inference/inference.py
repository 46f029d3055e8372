"""SageMaker scikit-learn container hooks for the fraud detector (ships as ``code/inference.py``).

Runs in the framework ``1.2-1`` container: Python 3.9, scikit-learn 1.2.1, numpy, pandas, pyarrow,
Flask. Nothing else is installed there, so this module imports only those and the standard library.

Why ``transform_fn`` and not ``input_fn``/``predict_fn``/``output_fn``: the container (sagemaker-containers
2.8.6, ``_transformer.Transformer``) wraps every user hook in ``error_wrapper``, so any exception becomes
an HTTP 500, which counts in ``Invocation5XXErrors`` and can roll a deployment back for a client's
mistake. ``Transformer.transform`` converts a returned ``(body, content_type)`` tuple into a 200 response
but hands any other return value to Flask unchanged, so returning a response object carrying its own
status is the one way to answer bad input with a 4xx. Errors in the model itself still raise (500).

Contract:
  request   ``text/csv``: one row of ``n_features`` numbers per line, no header, no quoting.
            ``application/json``: ``{"instances": [[...], ...]}``, a bare list of rows, or one flat row.
  response  ``application/json``: ``{"predictions": [{"probability": p, "prediction": 0|1}, ...],
            "model_version": "..."}``; ``text/csv``: one fraud probability per input line, in order,
            so Batch Transform with ``AssembleWith=Line`` and ``JoinSource=Input`` yields
            ``<input columns>,probability``.
  errors    4xx with ``{"error": "<reason>", "code": "<machine code>", ...details}``; a bad CSV row
            is named by its 1-based line number, a bad JSON row by its 1-based row number.
"""
import json
import logging
import math
import os

import joblib
import numpy as np
import sklearn

try:  # Flask is in the serving container; offline callers (batch benchmark, tests) may not have it.
    from flask import Response as _FlaskResponse
except ImportError:  # pragma: no cover - exercised only where Flask is absent
    _FlaskResponse = None

try:
    import pyarrow
    import pyarrow.csv as pyarrow_csv
except ImportError:  # pragma: no cover - the container ships pyarrow; fall back to the exact parser
    pyarrow = None
    pyarrow_csv = None

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - a scikit-learn dependency, present wherever sklearn is
    threadpool_limits = None

LOGGER = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
# The model contract (training/contract.py) this reader follows; any other version is refused at load.
SCHEMA_VERSION = 2

CSV = "text/csv"
JSON = "application/json"
ANY = "*/*"
SUPPORTED_TYPES = (CSV, JSON)

# Batch Transform's MaxPayloadInMB ceiling (real-time InvokeEndpoint is capped at 6 MB before us):
# no payload SageMaker can send is refused, a runaway local request is.
DEFAULT_MAX_PAYLOAD_MB = 100
MAX_PAYLOAD_ENV = "INFERENCE_MAX_PAYLOAD_MB"
# Up to this many lines the exact Python parser is faster than pyarrow's per-call set-up.
SMALL_CSV_LINES = 64
# Large CSV outputs are written by pyarrow (~10x faster than joining Python reprs).
SMALL_OUTPUT_ROWS = 256
# SageMaker returns this response header to the InvokeEndpoint caller as CustomAttributes.
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
MAX_TOKEN_ECHO = 40
UTF8_BOM = b"\xef\xbb\xbf"


class LoadedModel(object):
    """What ``model_fn`` returns: the fitted estimator plus the metadata that governs its inputs."""

    def __init__(self, estimator, metadata, max_payload_bytes):
        self.estimator = estimator
        self.metadata = metadata
        self.feature_names = list(metadata["feature_names"])
        self.n_features = int(metadata["n_features"])
        self.model_version = str(metadata["model_version"])
        self.threshold = float(metadata["decision_threshold"])
        self.max_payload_bytes = max_payload_bytes
        self.positive_class = metadata.get("positive_class", 1)
        classes = list(getattr(estimator, "classes_", [0, 1]))
        self.positive_column = classes.index(self.positive_class) if self.positive_class in classes else None


class InputError(Exception):
    """A client mistake: becomes a 4xx response with a JSON body, never a 500."""

    def __init__(self, message, code, status=400, **details):
        super(InputError, self).__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details

    def body(self):
        """The JSON error document sent to the client."""
        document = {"error": self.message, "code": self.code}
        document.update(self.details)
        return json.dumps(document).encode("utf-8")


class PlainResponse(object):
    """Minimal stand-in for a Flask response where Flask is not importable (same attributes read)."""

    def __init__(self, body, status, mimetype, headers):
        self.data = body
        self.status_code = status
        self.mimetype = mimetype
        self.headers = dict(headers)
        self.headers.setdefault("Content-Type", mimetype)

    def get_data(self, as_text=False):
        """The body, as bytes or decoded text (the Flask signature)."""
        return self.data.decode("utf-8") if as_text else self.data


def model_fn(model_dir):
    """Load the estimator and its metadata; refuse a package whose parts disagree."""
    if threadpool_limits is not None:
        # One BLAS/OpenMP thread per worker: thread pools only add tail latency to single rows.
        threadpool_limits(limits=1)
    with open(os.path.join(model_dir, METADATA_FILE), "r", encoding="utf-8") as handle:
        metadata = json.load(handle)
    check_schema_version(metadata)
    missing = [key for key in ("model_version", "feature_names", "n_features", "decision_threshold")
               if key not in metadata]
    if missing:
        raise ValueError("%s lacks %s" % (METADATA_FILE, ", ".join(missing)))
    estimator = joblib.load(os.path.join(model_dir, MODEL_FILE))
    model = LoadedModel(estimator, metadata, _max_payload_bytes())
    problems = []
    if len(model.feature_names) != model.n_features:
        problems.append("feature_names has %d names, n_features is %d" % (len(model.feature_names), model.n_features))
    fitted = getattr(estimator, "n_features_in_", model.n_features)
    if fitted != model.n_features:
        problems.append("the estimator was fitted on %d features, metadata says %d" % (fitted, model.n_features))
    if not hasattr(estimator, "predict_proba"):
        problems.append("the estimator has no predict_proba")
    if model.positive_column is None:
        problems.append("positive_class %r is not among the estimator's classes" % (model.positive_class,))
    if problems:
        raise ValueError("inconsistent model package: " + "; ".join(problems))
    LOGGER.info("loaded %s version %s (%d features)", metadata.get("model_name"), model.model_version, model.n_features)
    return model


def check_schema_version(metadata):
    """Refuse metadata written for another version of the model contract (one line naming the supported one)."""
    found = metadata.get("schema_version") if isinstance(metadata, dict) else None
    if found != SCHEMA_VERSION:
        raise ValueError("%s has schema_version %r; this inference.py reads schema_version %d: re-package the "
                         "model with `python -m training.package`" % (METADATA_FILE, found, SCHEMA_VERSION))


def transform_fn(model, request_body, content_type, accept):
    """Parse, predict and serialize one request; client mistakes become 4xx responses."""
    try:
        request_type = _media_type(content_type) or JSON
        if request_type not in SUPPORTED_TYPES:
            raise InputError(
                "unsupported Content-Type %r; send one of %s" % (content_type, ", ".join(SUPPORTED_TYPES)),
                "unsupported_content_type",
                status=415,
                supported=list(SUPPORTED_TYPES),
            )
        response_type = _negotiate(accept, request_type)
        body = _as_bytes(request_body)
        if len(body) > model.max_payload_bytes:
            raise InputError(
                "request body is %d bytes; the limit is %d" % (len(body), model.max_payload_bytes),
                "payload_too_large",
                status=413,
                limit_bytes=model.max_payload_bytes,
            )
        if request_type == CSV:
            features = parse_csv(body, model.n_features)
        else:
            features = parse_json(body, model.n_features)
    except InputError as error:
        return _response(error.body(), error.status, JSON, {})
    probabilities = predict(model, features)
    finite = np.isfinite(probabilities)
    if not finite.all():
        # Finite but extreme inputs (e.g. 1e308) overflow the model's arithmetic; a NaN score is no answer.
        row_number = int(np.argmin(finite)) + 1
        error = InputError("row %d has values too large for the model (its score is not a number); send values "
                           "within the training data's range" % row_number, "out_of_range", row=row_number)
        return _response(error.body(), error.status, JSON, {})
    if response_type == CSV:
        payload = format_csv(probabilities)
    else:
        payload = format_json(probabilities, model)
    return _response(payload, 200, response_type, {CUSTOM_ATTRIBUTES_HEADER: "model_version=" + model.model_version})


def predict(model, features):
    """Fraud probability per row (predict_proba's column for metadata's positive_class)."""
    # Inputs are already checked finite, so scikit-learn's own check is redundant work per call.
    # Overflow on extreme inputs is detected by the caller (non-finite scores become a 400), not warned about.
    with sklearn.config_context(assume_finite=True), np.errstate(over="ignore", invalid="ignore"):
        return model.estimator.predict_proba(features)[:, model.positive_column]


def parse_csv(body, n_features):
    """``n_features`` numbers per line, no header; returns a float64 matrix or raises InputError.

    A line ends at ``\n`` (``\r\n`` too: the ``\r`` is whitespace around the last value); a bare ``\r`` does
    not end a line. Empty or blank lines are refused except at the end; a leading UTF-8 BOM is ignored
    (as json.loads ignores it in a JSON body). Both parsers below follow exactly this grammar.
    """
    if body.startswith(UTF8_BOM):
        body = body[len(UTF8_BOM):]
    body = body.rstrip()
    if not body:
        raise InputError("request body is empty", "empty_body")
    line_count = body.count(b"\n") + 1
    if line_count > SMALL_CSV_LINES and pyarrow_csv is not None:
        features = _parse_csv_arrow(body, n_features, line_count)
        if features is not None:
            return features
    # Small payloads, and large ones pyarrow refused: the exact parser names the first bad line.
    return _parse_csv_exact(body, n_features)


def parse_json(body, n_features):
    """``{"instances": rows}``, a bare list of rows, or one flat row; returns a float64 matrix."""
    if not body.strip():
        raise InputError("request body is empty", "empty_body")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # a deeply nested body exhausts the decoder's recursion
        raise InputError("request body is not valid JSON: %s" % (error or "nested too deeply"), "invalid_json")
    if isinstance(document, dict):
        if "instances" not in document:
            raise InputError('expected {"instances": [[...], ...]}', "missing_instances")
        rows = document["instances"]
    else:
        rows = document
    if not isinstance(rows, list):
        raise InputError("instances must be a list of rows", "invalid_instances")
    if not rows:
        raise InputError("instances is empty", "empty_body")
    if all(_is_number(value) for value in rows):
        rows = [rows]
    for row_number, row in enumerate(rows, 1):
        if not isinstance(row, list):
            raise InputError("row %d is not a list of numbers" % row_number, "invalid_row", row=row_number)
        if len(row) != n_features:
            raise _wrong_count("row", row_number, len(row), n_features)
        for column, value in enumerate(row, 1):
            if not _is_number(value):
                raise InputError(
                    "row %d, column %d: %s is not a number" % (row_number, column, _echo(json.dumps(value))),
                    "not_a_number",
                    row=row_number,
                    column=column,
                )
    try:
        features = np.array(rows, dtype=np.float64)
    except OverflowError:
        features = np.array([[float(value) if abs(value) < 1e308 else math.inf for value in row] for row in rows])
    _check_finite(features, "row")
    return features


def format_csv(probabilities):
    """One probability per line, shortest round-trip repr, newline-terminated."""
    if len(probabilities) <= SMALL_OUTPUT_ROWS or pyarrow_csv is None:
        return ("\n".join(map(repr, probabilities.tolist())) + "\n").encode("ascii")
    sink = pyarrow.BufferOutputStream()
    pyarrow_csv.write_csv(
        pyarrow.table({"probability": probabilities}), sink, pyarrow_csv.WriteOptions(include_header=False)
    )
    return sink.getvalue().to_pybytes()


def format_json(probabilities, model):
    """The JSON response document."""
    predictions = [
        {"probability": probability, "prediction": int(probability >= model.threshold)}
        for probability in probabilities.tolist()
    ]
    return json.dumps({"predictions": predictions, "model_version": model.model_version}).encode("utf-8")


def _parse_csv_arrow(body, n_features, line_count):
    # One definition of a line for both parsers: it ends at "\n" (a "\r" just before it belongs to the line
    # end). pyarrow also ends lines at a bare "\r"; such a body goes to the exact parser, which refuses it.
    if b"\r" in body and body.count(b"\r") != body.count(b"\r\n"):
        return None
    column_names = ["c%d" % i for i in range(n_features)]
    try:
        table = pyarrow_csv.read_csv(
            pyarrow.BufferReader(body),
            read_options=pyarrow_csv.ReadOptions(column_names=column_names, use_threads=False, block_size=1 << 24),
            # Empty lines are rows with too few values (an error, as in the exact parser), not skipped.
            parse_options=pyarrow_csv.ParseOptions(quote_char=False, newlines_in_values=False,
                                                   ignore_empty_lines=False),
            convert_options=pyarrow_csv.ConvertOptions(
                column_types={name: pyarrow.float64() for name in column_names}, null_values=[]
            ),
        )
    except (pyarrow.ArrowInvalid, pyarrow.ArrowException):
        return None
    # A dropped or split line would misalign Batch Transform's JoinSource: the counts must agree exactly.
    if table.num_rows != line_count:
        return None
    features = np.empty((table.num_rows, n_features), dtype=np.float64)
    for index, column in enumerate(table.columns):
        features[:, index] = column.to_numpy()
    if not np.isfinite(features).all():
        return None
    return features


def _parse_csv_exact(body, n_features):
    # Decoded as the container decodes text/csv (werkzeug: UTF-8 with replacement), so an invalid
    # byte is reported as a non-number on its line whichever way the body arrived.
    text = body.decode("utf-8", "replace")
    rows = []
    for line_number, line in enumerate(text.split("\n"), 1):
        values = line.split(",")
        if len(values) != n_features:
            if not line.strip():
                raise InputError("line %d is empty" % line_number, "empty_line", line=line_number)
            raise _wrong_count("line", line_number, len(values), n_features)
        try:
            if "_" in line or not line.isascii():
                raise ValueError(line)
            rows.append([float(value) for value in values])
        except ValueError:
            raise _first_bad_value(line_number, values)
    features = np.array(rows, dtype=np.float64)
    _check_finite(features, "line")
    return features


def _first_bad_value(line_number, values):
    for column, value in enumerate(values, 1):
        token = value.strip()
        if not token:
            return InputError(
                "line %d, column %d: empty value" % (line_number, column),
                "empty_value",
                line=line_number,
                column=column,
            )
        try:
            if "_" in token or not token.isascii():
                raise ValueError(token)
            float(token)
        except ValueError:
            return InputError(
                "line %d, column %d: %s is not a number" % (line_number, column, _echo(repr(token))),
                "not_a_number",
                line=line_number,
                column=column,
            )
    return InputError("line %d is not a row of numbers" % line_number, "not_a_number", line=line_number)


def _check_finite(features, unit):
    finite = np.isfinite(features)
    if finite.all():
        return
    row, column = (int(index) + 1 for index in np.argwhere(~finite)[0])
    raise InputError(
        "%s %d, column %d: %r is not allowed (NaN and infinity are rejected)"
        % (unit, row, column, float(features[row - 1, column - 1])),
        "not_finite",
        **{unit: row, "column": column}
    )


def _wrong_count(unit, number, got, expected):
    return InputError(
        "%s %d has %d values; expected %d" % (unit, number, got, expected),
        "wrong_feature_count",
        **{unit: number, "got": got, "expected": expected}
    )


def _negotiate(accept, request_type):
    """The response type for an Accept header (RFC 9110 media ranges and q-values).

    Each supported type takes the q-value of the most specific range matching it (``text/csv`` over
    ``text/*`` over ``*/*``); q=0 excludes it. The highest q wins; on a tie, the type whose range comes
    first in the header, then the request's own type (so ``*/*`` or no header means the request's type).
    A range with an unreadable q-value is ignored.
    """
    if not accept:
        return request_type
    ranges = []  # (type, subtype, q, position)
    for position, item in enumerate(accept.split(",")):
        parts = item.split(";")
        media_range = parts[0].strip().lower()
        kind, slash, subtype = media_range.partition("/")
        if not slash or not kind or not subtype:
            continue
        q = 1.0
        try:
            for parameter in parts[1:]:
                name, _, value = parameter.partition("=")
                if name.strip().lower() == "q":
                    q = float(value.strip())
        except ValueError:
            continue
        if not 0.0 <= q <= 1.0:
            continue
        ranges.append((kind, subtype, q, position))
    best = None  # (q, -position, request type first)
    for offer in (request_type,) + tuple(t for t in SUPPORTED_TYPES if t != request_type):
        kind, _, subtype = offer.partition("/")
        matches = [(3 if (k, s) == (kind, subtype) else 2 if (k, s) == (kind, "*") else 1, q, position)
                   for k, s, q, position in ranges if (k, s) in ((kind, subtype), (kind, "*"), ("*", "*"))]
        if not matches:
            continue
        specificity = max(match[0] for match in matches)
        q, position = max((match[1], -match[2]) for match in matches if match[0] == specificity)
        if q <= 0:
            continue
        rank = (q, position, offer == request_type)
        if best is None or rank > best[0]:
            best = (rank, offer)
    if best is not None:
        return best[1]
    raise InputError(
        "unsupported Accept %r; accept one of %s" % (accept, ", ".join(SUPPORTED_TYPES + (ANY,))),
        "unsupported_accept",
        status=406,
        supported=list(SUPPORTED_TYPES),
    )


def _media_type(header):
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def _as_bytes(request_body):
    # The container hands text/csv and application/json over as str (decoded), anything else as bytes.
    if request_body is None:
        return b""
    if isinstance(request_body, str):
        return request_body.encode("utf-8")
    return bytes(request_body)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _echo(token):
    return token if len(token) <= MAX_TOKEN_ECHO else token[: MAX_TOKEN_ECHO - 3] + "..."


def _max_payload_bytes():
    raw = os.environ.get(MAX_PAYLOAD_ENV, "")
    megabytes = float(raw) if raw.strip() else DEFAULT_MAX_PAYLOAD_MB
    return int(megabytes * 1024 * 1024)


def _response(body, status, mimetype, headers):
    if _FlaskResponse is None:
        return PlainResponse(body, status, mimetype, headers)
    return _FlaskResponse(body, status=status, mimetype=mimetype, headers=headers)
