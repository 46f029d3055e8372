"""Lambda SnapStart as the cold-start answer that costs nothing while idle, at construct level."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from ml_constructs.common.secure_storage import DataKey
from ml_constructs.serverless.model_function import FunctionSizing, LambdaModelFunction


def _function_template(sizing: FunctionSizing) -> Template:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Probe")
    key = DataKey(stack, "Key", description="probe").key
    model = LambdaModelFunction(stack, "Model", artifacts_dir="artifacts/fraud-detector", encryption_key=key,
                                service_name="probe", sizing=sizing)
    model.function.current_version  # publishes a version, as the stack does for its alias
    return Template.from_stack(stack)


def test_snapstart_applies_to_published_versions():
    template = _function_template(FunctionSizing(snap_start=True))
    template.has_resource_properties("AWS::Lambda::Function", {"SnapStart": {"ApplyOn": "PublishedVersions"}})


def test_no_snapstart_by_default():
    (function,) = _function_template(FunctionSizing()).find_resources("AWS::Lambda::Function").values()
    assert "SnapStart" not in function["Properties"]


def test_snapstart_with_provisioned_concurrency_is_refused():
    with pytest.raises(ValueError, match="snap_start cannot be combined with provisioned_concurrency"):
        _function_template(FunctionSizing(snap_start=True, provisioned_concurrency=1))
