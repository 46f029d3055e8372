"""``POST /predict`` behind an API Gateway REST proxy integration: validate, predict, answer.

Request  ``{"features": [x1, ..., xn]}`` (one row, the seed's shape) or ``{"instances": [[...], ...]}``.
Response 200 ``{"prediction", "confidence", "model_version"}`` for ``features``; ``{"predictions": [...]}``
         with one such object per row for ``instances``.
Errors   400 ``{"error": "<reason>", "code": "<machine code>", "details": [...]}`` for anything the client
         sent: malformed JSON, wrong shape or feature count, non-numbers, NaN/inf, values beyond float32,
         too many rows, an oversized body. Validation is pydantic's (v2, strict numbers), not hand-rolled.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any, Mapping

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from serverless_inference.model import FLOAT32_MAX, OnnxModel, ScoreError

MAX_REQUEST_BYTES_ENV = "MAX_REQUEST_BYTES"
MAX_INSTANCES_ENV = "MAX_INSTANCES"
DEFAULT_MAX_REQUEST_BYTES = 256 * 1024
DEFAULT_MAX_INSTANCES = 1000
MAX_ERROR_DETAILS = 10
ROUTE_METHOD, ROUTE_PATH = "POST", "/predict"
JSON_HEADERS = {"Content-Type": "application/json"}


def _fits_float32(value: float) -> float:
    if abs(value) > FLOAT32_MAX:
        raise PydanticCustomError("float32_range", "Input should be between -3.4e38 and 3.4e38 (the model takes float32)")
    return value


#: A JSON number (not a string or boolean), finite, representable as float32.
Feature = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_fits_float32)]


class PredictRequest(BaseModel):
    """The request body. Needs validation context ``{"n_features": int, "max_instances": int}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: list[Feature] | None = None
    instances: list[list[Feature]] | None = None

    @model_validator(mode="after")
    def _check_shape(self, info: ValidationInfo) -> "PredictRequest":
        n_features, max_instances = info.context["n_features"], info.context["max_instances"]
        if (self.features is None) == (self.instances is None):
            raise PydanticCustomError("request_shape", "send exactly one of 'features' (one row) or 'instances' "
                                                       "(a list of rows)")
        if self.features is not None and len(self.features) != n_features:
            raise PydanticCustomError("feature_count", "'features' has {got} values, the model takes {expected}",
                                      {"got": len(self.features), "expected": n_features})
        if self.instances is not None:
            if not self.instances:
                raise PydanticCustomError("no_rows", "'instances' is empty")
            if len(self.instances) > max_instances:
                raise PydanticCustomError("too_many_rows", "'instances' has {got} rows, at most {limit} are accepted",
                                          {"got": len(self.instances), "limit": max_instances})
            wrong = [index for index, row in enumerate(self.instances) if len(row) != n_features]
            if wrong:
                shown = ", ".join(str(index) for index in wrong[:MAX_ERROR_DETAILS])
                raise PydanticCustomError("feature_count", "rows at index {rows} of 'instances' do not have {expected} values",
                                          {"rows": shown, "expected": n_features})
        return self

    def rows(self) -> np.ndarray:
        """The rows as the float32 ``(n, n_features)`` array the model takes."""
        return np.asarray([self.features] if self.features is not None else self.instances, dtype=np.float32)


@dataclass(frozen=True, kw_only=True)
class RequestLimits:
    """What a single request may carry; set by the stack from configuration."""

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_instances: int = DEFAULT_MAX_INSTANCES

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "RequestLimits":
        return cls(max_request_bytes=int(environ.get(MAX_REQUEST_BYTES_ENV, DEFAULT_MAX_REQUEST_BYTES)),
                   max_instances=int(environ.get(MAX_INSTANCES_ENV, DEFAULT_MAX_INSTANCES)))


class ClientError(Exception):
    """A request the client must fix: answered with a 4xx JSON body, never a 500."""

    def __init__(self, message: str, code: str, *, status: int = 400, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.status, self.details = message, code, status, details or []

    def response(self, request_id: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.details:
            body["details"] = self.details
        if request_id:
            body["request_id"] = request_id
        return json_response(self.status, body)


@dataclass(frozen=True)
class ApiOutcome:
    """What the handler needs for metrics and logs besides the response itself."""

    response: dict[str, Any]
    rows: int = 0
    error_code: str | None = None


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway proxy integration response."""
    return {"statusCode": status, "headers": {**JSON_HEADERS, **(headers or {})},
            "body": json.dumps(body, separators=(",", ":")), "isBase64Encoded": False}


def is_api_gateway_event(event: Any) -> bool:
    return isinstance(event, dict) and "httpMethod" in event and "requestContext" in event


def handle_predict(event: Mapping[str, Any], model: OnnxModel, limits: RequestLimits) -> ApiOutcome:
    """Answer one API Gateway proxy event; client mistakes become 4xx outcomes."""
    request_id = _request_id(event)
    try:
        _check_route(event)
        request = parse_request(_body_bytes(event, limits), model=model, limits=limits)
        rows = request.rows()
        try:
            predictions = model.predict(rows)
        except ScoreError as exc:
            raise ClientError(str(exc), "out_of_range") from None
    except ClientError as exc:
        return ApiOutcome(exc.response(request_id), error_code=exc.code)
    body = predictions[0] if request.features is not None else {"predictions": predictions}
    return ApiOutcome(json_response(200, body, {"X-Model-Version": model.model_version}), rows=len(predictions))


def parse_request(body: bytes, *, model: OnnxModel, limits: RequestLimits) -> PredictRequest:
    """Validate a JSON body against the model's feature count; :class:`ClientError` with every problem."""
    try:
        return PredictRequest.model_validate_json(
            body, context={"n_features": model.n_features, "max_instances": limits.max_instances})
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
        if any(problem["type"] == "json_invalid" for problem in problems):
            raise ClientError(f"the body is not valid JSON: {problems[0]['msg']}", "invalid_json") from None
        details = [_describe(problem) for problem in problems]
        summary = details[0] if len(details) == 1 else f"{len(details)} problems, first: {details[0]}"
        raise ClientError(f"invalid request: {summary}", "invalid_request",
                          details=details[:MAX_ERROR_DETAILS]) from None


def _describe(problem: Mapping[str, Any]) -> str:
    location = ""
    for part in problem["loc"]:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
    return f"{location}: {problem['msg']}" if location else str(problem["msg"])


def _check_route(event: Mapping[str, Any]) -> None:
    method, resource = event.get("httpMethod"), event.get("resource") or event.get("path")
    if resource != ROUTE_PATH:
        raise ClientError(f"no route {resource!r}: use {ROUTE_METHOD} {ROUTE_PATH}", "not_found", status=404)
    if method != ROUTE_METHOD:
        raise ClientError(f"method {method!r} is not allowed: use {ROUTE_METHOD} {ROUTE_PATH}", "method_not_allowed",
                          status=405)


def _body_bytes(event: Mapping[str, Any], limits: RequestLimits) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        raise ClientError("the request has no body: send a JSON object with 'features' or 'instances'", "empty_body")
    if not isinstance(body, str):
        raise ClientError("the request body is not text", "invalid_body")
    # A base64 body is ~4/3 of its decoded size: refuse what cannot fit before decoding it.
    if len(body) > limits.max_request_bytes * (4 / 3 if event.get("isBase64Encoded") else 1) + 4:
        raise ClientError(f"the body exceeds {limits.max_request_bytes} bytes", "body_too_large")
    try:
        data = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode("utf-8")
    except UnicodeEncodeError:  # a subclass of ValueError: test it first
        raise ClientError("the body is not valid UTF-8 text", "invalid_body") from None
    except (binascii.Error, ValueError):
        raise ClientError("the body is flagged base64 but is not valid base64", "invalid_body") from None
    if len(data) > limits.max_request_bytes:
        raise ClientError(f"the body exceeds {limits.max_request_bytes} bytes", "body_too_large")
    return data


def _request_id(event: Mapping[str, Any]) -> str | None:
    context = event.get("requestContext")
    return context.get("requestId") if isinstance(context, dict) else None
