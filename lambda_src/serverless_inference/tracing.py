"""A Powertools Tracer where it can trace (inside Lambda, tracing on); identity decorators elsewhere.

Constructing ``Tracer()`` imports ``aws_xray_sdk.core``, which imports botocore: about 300 ms on a
2-vCPU machine, even when Powertools then disables tracing because it runs outside Lambda. Inside
Lambda that import is paid anyway (the model is fetched from S3 with boto3 at init); outside it, in
local runs and benchmarks, it would only inflate the cold start, so the tracer is not built there.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping

TRUTHY = {"1", "true", "yes", "on"}


class NoTracer:
    """The subset of ``Tracer`` the handler uses, doing nothing."""

    disabled = True

    def capture_lambda_handler(self, function: Callable | None = None, **_: Any) -> Callable:
        return function if function is not None else (lambda inner: inner)

    def capture_method(self, function: Callable | None = None, **_: Any) -> Callable:
        return function if function is not None else (lambda inner: inner)


def tracing_active(environ: Mapping[str, str]) -> bool:
    """Powertools' own rule: only inside Lambda (not SAM local or Chalice) and not switched off."""
    return (bool(environ.get("LAMBDA_TASK_ROOT")) and not environ.get("AWS_SAM_LOCAL")
            and not environ.get("AWS_CHALICE_CLI_MODE")
            and environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in TRUTHY)


def build_tracer(environ: Mapping[str, str] = os.environ) -> Any:
    """A Powertools Tracer patching botocore (S3 calls become subsegments), or :class:`NoTracer`."""
    if not tracing_active(environ):
        return NoTracer()
    from aws_lambda_powertools import Tracer

    return Tracer(patch_modules=("botocore",))
