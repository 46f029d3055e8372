"""Lambda entry point ``handler.lambda_handler``: API Gateway ``POST /predict`` and S3 uploads under ``incoming/``.

Init (the cold start) loads the ONNX model named by the environment (see ``serverless_inference.model``).
A model that cannot be loaded, or an inconsistent configuration, logs one line starting
``init failed: cannot load the model from ...`` and re-raises, so Lambda reports an init error and the
function never serves without a model.

Powertools: structured JSON logs with the API Gateway request id (or the S3 request id) as correlation
id, EMF metrics (``Predictions``, ``PredictionLatency``, ``ClientErrors``, ``Errors``, files predicted and
rejected, ``ColdStart``) and X-Ray tracing (built only inside Lambda: see ``serverless_inference.tracing``).
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from serverless_inference import capture
from serverless_inference.api import RequestLimits, handle_predict, is_api_gateway_event, json_response
from serverless_inference.model import ModelLoadError, load_model
from serverless_inference.tracing import build_tracer
from serverless_inference.uploads import UploadSettings, handle_s3_event, is_s3_event

logger = Logger()
metrics = Metrics()


def _initialize():
    try:
        model = load_model(os.environ)
        limits = RequestLimits.from_environment(os.environ)
        uploads = UploadSettings.from_environment(os.environ)
    except (ModelLoadError, ValueError) as exc:
        logger.error(f"init failed: {exc}")
        raise
    logger.info("model loaded", extra={"model_name": model.model_name, "model_version": model.model_version,
                                       "n_features": model.n_features})
    return model, limits, uploads


MODEL, LIMITS, UPLOADS = _initialize()
# Built after the model is loaded: it patches botocore, and an S3 call made during init has no X-Ray
# segment to attach to (the SDK would log "cannot find the current segment").
tracer = build_tracer()
_s3_client = None
# Sampled requests and answers for the drift job (off unless CAPTURE_* is set); never fails a request.
CAPTURE = capture.from_environment(
    os.environ, positive_class=int(MODEL.metadata.get("positive_class", 1)), log_error=logger.error,
    on_metric=lambda name, value: metrics.add_metric(name=name, unit=MetricUnit.Count, value=value))


def _s3() -> Any:
    global _s3_client
    if _s3_client is None:
        import boto3  # provided by the Lambda runtime; only the S3 path pays for its import

        _s3_client = boto3.client("s3")
    return _s3_client


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: Any, context: Any) -> Any:
    if is_api_gateway_event(event):
        response = _predict_api(event)
        CAPTURE.flush_if_due(context)
        return response
    if is_s3_event(event):
        return _predict_uploads(event)
    if isinstance(event, dict) and event.get("Event") == "s3:TestEvent":
        return {"ignored": "s3:TestEvent"}
    metrics.add_metric(name="UnsupportedEvents", unit=MetricUnit.Count, value=1)
    logger.error("unsupported event", extra={"event_keys": sorted(map(str, event))[:20]
                                                           if isinstance(event, dict) else type(event).__name__})
    raise ValueError("unsupported event: expected an API Gateway proxy event or an S3 notification")


def _predict_api(event: dict[str, Any]) -> dict[str, Any]:
    context = event.get("requestContext")
    # A direct invoke can send anything here; only API Gateway's object carries a request id.
    request_id = context.get("requestId") if isinstance(context, dict) else None
    logger.set_correlation_id(request_id)
    started = time.perf_counter()
    try:
        outcome = handle_predict(event, MODEL, LIMITS)
    except Exception:  # a fault of ours, not the client's: log it, count it, answer 500 without internals
        logger.exception("prediction failed")
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
        return json_response(500, {"error": "internal error", "code": "internal_error", "request_id": request_id})
    if outcome.error_code:
        metrics.add_metric(name="ClientErrors", unit=MetricUnit.Count, value=1)
        logger.info("request refused", extra={"code": outcome.error_code,
                                              "status": outcome.response["statusCode"]})
    else:
        metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=outcome.rows)
        metrics.add_metric(name="PredictionLatency", unit=MetricUnit.Milliseconds,
                           value=(time.perf_counter() - started) * 1000)
        CAPTURE.offer(event, outcome.response)
    return outcome.response


@tracer.capture_method(capture_response=False)
def _predict_uploads(event: dict[str, Any]) -> dict[str, Any]:
    first = event["Records"][0]
    logger.set_correlation_id((first.get("responseElements") or {}).get("x-amz-request-id"))
    try:
        outcomes = handle_s3_event(event, model=MODEL, settings=UPLOADS, s3=_s3())
    except Exception:
        logger.exception("upload processing failed; the event will be retried, then sent to the failure queue")
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
        raise
    for outcome in outcomes:
        logger.info(f"upload {outcome.status}", extra=asdict(outcome))
        if outcome.status == "predicted":
            metrics.add_metric(name="FilesPredicted", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=outcome.rows)
        elif outcome.status == "rejected":
            metrics.add_metric(name="FilesRejected", unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name="FilesIgnored", unit=MetricUnit.Count, value=1)
    return {"files": [asdict(outcome) for outcome in outcomes]}
