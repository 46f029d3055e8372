"""Builds one stack per enabled pattern from the configuration."""
from __future__ import annotations

import aws_cdk as cdk

from ml_constructs.common.naming import pascal_case
from stacks.batch_stack import BatchStack
from stacks.config import AppConfig
from stacks.edge_stack import EdgeStack
from stacks.realtime_stack import RealtimeStack
from stacks.serverless_stack import ServerlessStack


def build_stacks(app: cdk.App, config: AppConfig) -> dict[str, cdk.Stack]:
    """Add the enabled pattern stacks to ``app``; returns them by pattern name."""
    env = cdk.Environment(account=config.target.account, region=config.target.region)
    prefix = pascal_case(config.model.name)  # stack names read `<Model>-Realtime`
    stacks: dict[str, cdk.Stack] = {}
    if config.realtime.enabled:
        stacks["realtime"] = RealtimeStack(app, f"{prefix}-Realtime", config=config, env=env,
                                           description=f"{config.model.name}: SageMaker real-time endpoint")
    if config.batch.enabled:
        stacks["batch"] = BatchStack(app, f"{prefix}-Batch", config=config, env=env,
                                     description=f"{config.model.name}: scheduled SageMaker Batch Transform")
    if config.edge.enabled:
        stacks["edge"] = EdgeStack(app, f"{prefix}-Edge", config=config, env=env,
                                   description=f"{config.model.name}: Greengrass v2 component (ONNX on the device)")
    if config.serverless.enabled:
        stacks["serverless"] = ServerlessStack(app, f"{prefix}-Serverless", config=config, env=env,
                                               description=f"{config.model.name}: Lambda (ONNX) behind API Gateway, "
                                                           "S3 upload trigger")
    for stack in stacks.values():
        cdk.Tags.of(stack).add("project", "ml-deploy-patterns")
        cdk.Tags.of(stack).add("model", config.model.name)
    return stacks
