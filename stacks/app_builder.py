"""Builds one stack per enabled pattern from the deployment (configuration plus model)."""
from __future__ import annotations

import aws_cdk as cdk

from stacks.batch_stack import BatchStack
from stacks.deployment import Deployment
from stacks.edge_stack import EdgeStack
from stacks.realtime_stack import RealtimeStack
from stacks.serverless_stack import ServerlessStack


def build_stacks(app: cdk.App, deployment: Deployment) -> dict[str, cdk.Stack]:
    """Add the enabled pattern stacks to ``app``; returns them by pattern name.

    Stack names read ``<Model>-<Pattern>``, or ``<Model>-<Env>-<Pattern>`` with ``-c env=<env>``.
    """
    config, model = deployment.config, deployment.model_name
    env = cdk.Environment(account=config.target.account, region=config.target.region)
    where = f" ({deployment.env})" if deployment.env else ""
    stacks: dict[str, cdk.Stack] = {}
    if config.realtime.enabled:
        stacks["realtime"] = RealtimeStack(app, deployment.stack_name("Realtime"), deployment=deployment, env=env,
                                           description=f"{model}{where}: SageMaker real-time endpoint")
    if config.batch.enabled:
        stacks["batch"] = BatchStack(app, deployment.stack_name("Batch"), deployment=deployment, env=env,
                                     description=f"{model}{where}: scheduled SageMaker Batch Transform")
    if config.edge.enabled:
        stacks["edge"] = EdgeStack(app, deployment.stack_name("Edge"), deployment=deployment, env=env,
                                   description=f"{model}{where}: Greengrass v2 component (ONNX on the device)")
    if config.serverless.enabled:
        stacks["serverless"] = ServerlessStack(app, deployment.stack_name("Serverless"), deployment=deployment,
                                               env=env, description=f"{model}{where}: Lambda (ONNX) behind API "
                                                                    "Gateway, S3 upload trigger")
    for stack in stacks.values():
        cdk.Tags.of(stack).add("project", "ml-deploy-patterns")
        cdk.Tags.of(stack).add("model", model)
        if deployment.env:
            cdk.Tags.of(stack).add("environment", deployment.env)
    return stacks
