"""``<Model>-Pipeline``: the optional CDK pipeline that deploys the pattern stacks environment by environment."""
from __future__ import annotations

from typing import Callable

import aws_cdk as cdk
from constructs import Construct

from ml_constructs.cicd.delivery_pipeline import DeliveryPipeline, PipelineEnvironment, PipelineSource
from stacks.config.cicd import PipelineConfig


class PipelineStack(cdk.Stack):
    """Self-mutating; each stage holds the pattern stacks of one ``deploy.environments.<name>``."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineConfig,
                 environments: tuple[PipelineEnvironment, ...],
                 build_stage: Callable[[cdk.Stage, PipelineEnvironment], None], **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.delivery = DeliveryPipeline(
            self, "Delivery", source=PipelineSource(repository=settings.repository or "",
                                                    connection_arn=settings.connection_arn or "",
                                                    branch=settings.branch),
            environments=environments, build_stage=build_stage)
