"""Builds one stack per enabled pattern from the deployment (configuration plus model)."""
from __future__ import annotations

import aws_cdk as cdk

from stacks.batch_stack import BatchStack
from stacks.deployment import Deployment
from stacks.edge_stack import EdgeStack
from stacks.github_oidc_stack import GithubOidcStack
from stacks.realtime_stack import RealtimeStack
from stacks.serverless_stack import ServerlessStack


def build_stacks(app: cdk.App | cdk.Stage, deployment: Deployment, *, context: dict | None = None,
                 cicd: bool = True) -> dict[str, cdk.Stack]:
    """Add the enabled pattern stacks to ``app``; returns them by pattern name.

    Stack names read ``<Model>-<Pattern>``, or ``<Model>-<Env>-<Pattern>`` with ``-c env=<env>``.
    """
    config, model = deployment.config, deployment.model_name
    env = cdk.Environment(account=config.target.account, region=config.target.region)
    where = f" ({deployment.env})" if deployment.env else ""
    patterns = (("realtime", "Realtime", RealtimeStack, "SageMaker real-time endpoint"),
                ("batch", "Batch", BatchStack, "scheduled SageMaker Batch Transform"),
                ("edge", "Edge", EdgeStack, "Greengrass v2 component (ONNX on the device)"),
                ("serverless", "Serverless", ServerlessStack, "Lambda (ONNX) behind API Gateway, S3 upload trigger"))
    stacks: dict[str, cdk.Stack] = {}
    for key, pattern, stack_class, what in patterns:
        if getattr(config, key).enabled:
            name = deployment.stack_name(pattern)
            # An explicit stack name: inside a pipeline stage it would otherwise gain the stage's prefix.
            stacks[key] = stack_class(app, name, stack_name=name, deployment=deployment, env=env,
                                      description=f"{model}{where}: {what}")
    if cicd and config.github_oidc.repository:
        stacks["github_oidc"] = GithubOidcStack(app, deployment.stack_name("GithubOidc"),
                                                access=config.github_oidc.to_construct(), env=env,
                                                description=f"{model}: role GitHub Actions deploys with (OIDC)")
    if cicd and config.pipeline.enabled and context is not None and not deployment.env:
        pipeline_env = cdk.Environment(account=config.pipeline.account, region=config.pipeline.region)
        stacks["pipeline"] = _pipeline_stack(app, deployment, context, pipeline_env)
    for stack in stacks.values():
        cdk.Tags.of(stack).add("project", "ml-deploy-patterns")
        cdk.Tags.of(stack).add("model", model)
        if deployment.env:
            cdk.Tags.of(stack).add("environment", deployment.env)
    return stacks


def _pipeline_stack(app: cdk.App, deployment: Deployment, context: dict, env: cdk.Environment) -> cdk.Stack:
    """One pipeline stage per ``deploy.pipeline.stages`` entry, each built as ``-c env=<stage>`` would build it."""
    from ml_constructs.cicd.delivery_pipeline import PipelineEnvironment
    from stacks.deployment import deployment_from_context
    from stacks.pipeline_stack import PipelineStack

    settings = deployment.config.pipeline
    staged = {name: deployment_from_context({**context, "env": name}) for name in settings.stages}
    environments = tuple(PipelineEnvironment(name=name, account=staged[name].config.target.account,
                                             region=staged[name].config.target.region,
                                             requires_approval=name in settings.approve_before)
                         for name in settings.stages)

    def build_stage(stage: cdk.Stage, environment: PipelineEnvironment) -> None:
        staged_deployment = staged[environment.name]
        # Inside a stage the pipeline is off: the staged app must not contain the pipeline again.
        build_stacks(stage, staged_deployment, cicd=False)

    return PipelineStack(app, deployment.stack_name("Pipeline"), settings=settings, environments=environments,
                         build_stage=build_stage, env=env,
                         description=f"{deployment.model_name}: CDK pipeline, staging -> approval -> production")
