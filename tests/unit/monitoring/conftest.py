"""A small stack holding only what ModelMonitor needs, synthesized once per configuration."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Template

from ml_constructs.common.alert_topic import AlertTopic
from ml_constructs.common.secure_storage import DataKey, SecureBucket
from ml_constructs.monitoring.model_monitor import ModelMonitor
from ml_constructs.realtime.endpoint import DataCapture
from tests.conftest import ARTIFACTS_DIR, SKIP_BUNDLING, build_app

ENDPOINT_NAME = "fraud-detector-realtime"


def monitor_stack(*, region: str | None = None, data_capture: bool = True,
                  **options: Any) -> tuple[cdk.Stack, ModelMonitor]:
    """ModelMonitor on a stand-in endpoint (the three attributes it reads), in a stack of its own."""
    app = cdk.App(context=dict(SKIP_BUNDLING))
    stack = cdk.Stack(app, "MonitorTest", env=cdk.Environment(region=region) if region else None)
    key = DataKey(stack, "DataKey", description="test")
    capture = None
    if data_capture:
        capture = DataCapture(bucket=SecureBucket(stack, "Capture", encryption_key=key.key).bucket,
                              encryption_key=key.key)
    endpoint = SimpleNamespace(
        endpoint_name=ENDPOINT_NAME, data_capture=capture,
        endpoint=sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_config_name="config", endpoint_name=ENDPOINT_NAME))
    alerts = AlertTopic(stack, "Alerts", encryption_key=key.key)
    monitor = ModelMonitor(stack, "Monitor", endpoint=endpoint, artifacts_dir=ARTIFACTS_DIR, encryption_key=key.key,
                           alert_topic=alerts, **options)
    return stack, monitor


@pytest.fixture(scope="module")
def us_east_1_template() -> Template:
    stack, _ = monitor_stack(region="us-east-1")
    return Template.from_stack(stack)


#: Model Monitor is the ``model-monitor`` engine's; the default (``builtin``) creates none of it.
MODEL_MONITOR_ENGINE = {"deploy.monitoring.engine": "model-monitor"}


@pytest.fixture(scope="session")
def realtime_template() -> Template:
    """The real-time stack with the model-monitor engine (overrides the default app's, built-in, template)."""
    _, stacks = build_app(overrides={**MODEL_MONITOR_ENGINE, "deploy.batch.enabled": False,
                                     "deploy.serverless.enabled": False, "deploy.edge.enabled": False})
    return Template.from_stack(stacks["realtime"])
