"""Sampled capture of ``POST /predict`` requests and answers to S3, for the built-in drift job.

Each sampled row becomes one JSON Lines record in the drift job's serverless format
(``ml_constructs/monitoring/drift_job/runtime/drift_readers.py``, ``read_sample_lines``)::

    {"inference_id": "<API Gateway request id>[:<row index>]", "features": [x1, ..., xn], "score": p}

``inference_id`` is the API Gateway request id (the ``x-amzn-RequestId`` response header the client sees)
for a ``features`` request, and ``<request id>:<row index>`` for each row of an ``instances`` request: label
files for ``ops.labels upload`` use these ids. ``score`` is the positive-class probability, recovered from the
answer (``confidence`` of the predicted label, rounded to 6 digits by the API).

Why batched writes from the function (not Firehose, not one object per request):

* the request path pays only a random draw when a request is not sampled, and a JSON re-parse of the
  already-validated body plus a list append when it is (``bench/capture.py`` measures both);
* records stay in the execution environment's memory and go out as ONE object when ``max_records`` are
  buffered or the oldest is ``max_age_seconds`` old, checked at the end of an invocation; so S3 sees one PUT
  per batch (at 5% sampling and 500 records, one PUT per ~10,000 requests) and the drift job reads few
  objects. Firehose would add a stream per model, an IAM role and a per-GB charge for the same result;
* a flush is skipped while the invocation's remaining time is below ``FLUSH_MARGIN_MS`` (the PUT's own
  timeout budget), so capture never makes a request time out: the records wait for the next invocation.

What can be lost, on purpose: records still buffered when Lambda reclaims an idle environment (at most
``max_records`` of them, and none older than ``max_age_seconds`` while traffic flows), and a batch whose PUT
failed. Both are counted (``CaptureErrors``, ``CaptureDroppedRecords``) and logged; a sample that misses a
random slice of its records is still an unbiased sample, so drift statistics are unaffected. Capture never
raises into the handler: the client's answer never depends on it.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

BUCKET_ENV = "CAPTURE_S3_BUCKET"
PREFIX_ENV = "CAPTURE_S3_PREFIX"
PERCENT_ENV = "CAPTURE_SAMPLE_PERCENT"
MAX_RECORDS_ENV = "CAPTURE_MAX_RECORDS"
MAX_AGE_ENV = "CAPTURE_MAX_AGE_SECONDS"
DEFAULT_MAX_RECORDS = 500
DEFAULT_MAX_AGE_SECONDS = 60.0
#: The capture client's worst case per flush: 1 s to connect + 2 s to read, 2 attempts, plus slack.
FLUSH_MARGIN_MS = 7_000
#: Records kept when flushes keep being skipped or failing: beyond this the oldest are dropped (and counted).
BUFFER_LIMIT_FACTOR = 4

MetricSink = Callable[[str, float], None]


@dataclass(frozen=True, kw_only=True)
class CaptureSettings:
    """Where and how much to capture; ``percent`` 0 (or no bucket) turns capture off."""

    bucket: str | None = None
    prefix: str = ""
    percent: float = 0.0
    max_records: int = DEFAULT_MAX_RECORDS
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS

    @property
    def enabled(self) -> bool:
        return bool(self.bucket) and self.percent > 0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "CaptureSettings":
        """Raises ValueError naming the variable when a value is out of range."""
        try:
            percent = float(environ.get(PERCENT_ENV) or 0)
            max_records = int(environ.get(MAX_RECORDS_ENV) or DEFAULT_MAX_RECORDS)
            max_age = float(environ.get(MAX_AGE_ENV) or DEFAULT_MAX_AGE_SECONDS)
        except ValueError as exc:
            raise ValueError(f"capture settings are not numbers: {exc}") from None
        if not 0 <= percent <= 100:
            raise ValueError(f"{PERCENT_ENV} {percent:g} is outside 0..100")
        if max_records < 1 or max_age <= 0:
            raise ValueError(f"{MAX_RECORDS_ENV} must be at least 1 and {MAX_AGE_ENV} above 0")
        prefix = (environ.get(PREFIX_ENV) or "").strip("/")
        return cls(bucket=environ.get(BUCKET_ENV) or None, prefix=f"{prefix}/" if prefix else "", percent=percent,
                   max_records=max_records, max_age_seconds=max_age)


def _default_client() -> Any:
    import boto3  # provided by the Lambda runtime; imported at the first flush, never on an unsampled path
    from botocore.config import Config

    # Tight timeouts and few retries: a slow S3 may cost a flush, never seconds of a client's request.
    return boto3.client("s3", config=Config(connect_timeout=1, read_timeout=2,
                                            retries={"max_attempts": 2, "mode": "standard"}))


class RequestCapture:
    """Samples answered requests into an in-memory buffer and writes it to S3 in batches."""

    def __init__(self, settings: CaptureSettings, *, positive_class: int = 1, on_metric: MetricSink | None = None,
                 log_error: Callable[[str], None] | None = None, s3_client_factory: Callable[[], Any] = _default_client,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.positive_class = positive_class
        self._on_metric = on_metric or (lambda name, value: None)
        self._log_error = log_error or (lambda message: None)
        self._client_factory = s3_client_factory
        self._client: Any = None
        self._clock = clock
        self._random = (rng or random.Random()).random
        self._threshold = settings.percent / 100.0
        self._buffer: list[str] = []
        self._oldest: float | None = None
        self._environment = uuid.uuid4().hex[:12]
        self._sequence = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # -- the request path ---------------------------------------------------------------------------------------
    def offer(self, event: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        """Maybe buffer one answered request (only 200s). Never raises."""
        if not self.settings.enabled or self._random() >= self._threshold:
            return
        try:
            records = self._records(event, response)
        except Exception as exc:  # noqa: BLE001 - capture must never cost the client its answer
            self._failed(f"capture skipped a request: {type(exc).__name__}: {exc}", dropped=1)
            return
        if records:
            if self._oldest is None:
                self._oldest = self._clock()
            self._buffer.extend(records)
            overflow = len(self._buffer) - self.settings.max_records * BUFFER_LIMIT_FACTOR
            if overflow > 0:
                del self._buffer[:overflow]
                self._failed(f"capture buffer full: dropped the {overflow} oldest record(s)", dropped=overflow)

    def _records(self, event: Mapping[str, Any], response: Mapping[str, Any]) -> list[str]:
        if response.get("statusCode") != 200:
            return []
        body = event["body"]
        if event.get("isBase64Encoded"):
            import base64

            body = base64.b64decode(body)
        request = json.loads(body)
        answer = json.loads(response["body"])
        request_id = str((event.get("requestContext") or {}).get("requestId") or uuid.uuid4())
        if request.get("features") is not None:
            rows, answers, ids = [request["features"]], [answer], [request_id]
        else:
            rows, answers = request["instances"], answer["predictions"]
            ids = [f"{request_id}:{index}" for index in range(len(rows))]
        if len(rows) != len(answers):
            raise ValueError(f"{len(rows)} rows but {len(answers)} answers")
        return [json.dumps({"inference_id": identifier, "features": row, "score": self._score(item)},
                           separators=(",", ":"))
                for identifier, row, item in zip(ids, rows, answers)]

    def _score(self, item: Mapping[str, Any]) -> float:
        confidence = float(item["confidence"])
        return confidence if int(item["prediction"]) == self.positive_class else round(1.0 - confidence, 6)

    # -- the end of an invocation -------------------------------------------------------------------------------
    def due(self) -> bool:
        if not self._buffer:
            return False
        return (len(self._buffer) >= self.settings.max_records
                or self._clock() - (self._oldest or 0.0) >= self.settings.max_age_seconds)

    def flush_if_due(self, context: Any = None) -> int:
        """Write the buffer as one object when it is full or old enough and the invocation has time left.

        Returns the number of records written (0 when nothing was due, skipped or failed). Never raises."""
        if not self.due():
            return 0
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is not None and remaining() < FLUSH_MARGIN_MS:
            return 0  # kept for the next invocation: capture never makes a request time out
        records, self._buffer, self._oldest = self._buffer, [], None
        try:
            key = self._key()
            if self._client is None:
                self._client = self._client_factory()
            self._client.put_object(Bucket=self.settings.bucket, Key=key,
                                    Body=("\n".join(records) + "\n").encode("utf-8"),
                                    ContentType="application/x-ndjson")
        except Exception as exc:  # noqa: BLE001 - network, permissions, throttling: log, count, serve on
            self._failed(f"capture flush failed, {len(records)} record(s) lost: {type(exc).__name__}: {exc}",
                         dropped=len(records))
            return 0
        self._on_metric("CapturedRecords", len(records))
        return len(records)

    def _key(self) -> str:
        self._sequence += 1
        now = dt.datetime.now(dt.timezone.utc)
        return (f"{self.settings.prefix}{now:%Y/%m/%d/%H}/"
                f"{now:%Y%m%dT%H%M%S}-{self._environment}-{self._sequence:06d}.jsonl")

    def _failed(self, message: str, *, dropped: int) -> None:
        try:
            self._log_error(message)
            self._on_metric("CaptureErrors", 1)
            self._on_metric("CaptureDroppedRecords", dropped)
        except Exception:  # noqa: BLE001 - not even a broken logger may reach the client
            pass


def from_environment(environ: Mapping[str, str], **kwargs: Any) -> RequestCapture:
    """The capture the environment asks for; a bad setting logs one error and turns capture off (the function
    still serves: capture is an observer, not part of the answer)."""
    try:
        settings = CaptureSettings.from_environment(environ)
    except ValueError as exc:
        log_error = kwargs.get("log_error")
        if log_error:
            log_error(f"capture disabled: {exc}")
        settings = CaptureSettings()
    return RequestCapture(settings, **kwargs)
