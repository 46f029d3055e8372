"""A self-mutating CDK pipeline: GitHub (CodeConnections) -> test + synth -> staging -> approval -> production."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import pipelines
from constructs import Construct

from ml_constructs.common.naming import nag_resource_name
from ml_constructs.common.secure_storage import DataKey, SecureBucket

CONNECTION_ARN_PATTERN = re.compile(
    r"arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}")
#: What the pipeline runs before it deploys anything: the README's two commands.
DEFAULT_SYNTH_COMMANDS = ("make test", "make synth")


@dataclass(frozen=True, kw_only=True)
class PipelineSource:
    """Where the pipeline pulls from: a GitHub repository through an existing CodeConnections connection."""

    repository: str
    connection_arn: str
    branch: str = "main"

    def problems(self) -> list[str]:
        problems = []
        if not re.fullmatch(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}", self.repository):
            problems.append(f"repository: {self.repository!r} is not of the form owner/repo")
        if not CONNECTION_ARN_PATTERN.fullmatch(self.connection_arn):
            problems.append(f"connection_arn: {self.connection_arn!r} is not a CodeConnections connection ARN")
        if not self.branch:
            problems.append("branch: must not be empty")
        return problems


@dataclass(frozen=True, kw_only=True)
class PipelineEnvironment:
    """One deployment target: its name (as in `-c env=<name>`) and whether a person approves it first."""

    name: str
    account: str | None = None
    region: str | None = None
    requires_approval: bool = False


#: Builds the pattern stacks of one environment inside the given stage.
StageBuilder = Callable[[cdk.Stage, PipelineEnvironment], None]


class DeliveryPipeline(Construct):
    """CDK Pipelines' ``CodePipeline`` with one stage per environment, in order, each after its approval."""

    def __init__(self, scope: Construct, construct_id: str, *, source: PipelineSource,
                 environments: tuple[PipelineEnvironment, ...], build_stage: StageBuilder,
                 synth_commands: tuple[str, ...] = DEFAULT_SYNTH_COMMANDS) -> None:
        super().__init__(scope, construct_id)
        problems = source.problems() + ([] if environments else ["environments: name at least one"])
        if problems:
            raise ValueError("pipeline: " + "; ".join(problems))
        self.synth = pipelines.ShellStep(
            "TestAndSynth",
            input=pipelines.CodePipelineSource.connection(source.repository, source.branch,
                                                          connection_arn=source.connection_arn),
            commands=list(synth_commands), primary_output_directory="cdk.out")
        # Our own artifact bucket: KMS (target accounts get grants on key and bucket per deploy action),
        # TLS-only, versioned, access-logged and retained like every data bucket here.
        self.artifact_key = DataKey(self, "ArtifactKey", description="CDK pipeline artifacts")
        self.artifact_storage = SecureBucket(self, "Artifacts", encryption_key=self.artifact_key.key)
        self.pipeline = pipelines.CodePipeline(
            self, "Pipeline", synth=self.synth, self_mutation=True,
            artifact_bucket=self.artifact_storage.bucket, docker_enabled_for_synth=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=codebuild.LinuxBuildImage.STANDARD_7_0)))
        self.stages: dict[str, cdk.Stage] = {}
        for environment in environments:
            stage = cdk.Stage(self, environment.name.capitalize(),
                              env=cdk.Environment(account=environment.account, region=environment.region))
            build_stage(stage, environment)
            pre = [pipelines.ManualApprovalStep(f"Approve{environment.name.capitalize()}",
                                                comment=f"Deploy to {environment.name}?")] \
                if environment.requires_approval else []
            self.pipeline.add_stage(stage, pre=pre)
            self.stages[environment.name] = stage
        self.pipeline.build_pipeline()
        self._acknowledge_generated_grants()

    def _acknowledge_generated_grants(self) -> None:
        """CDK Pipelines writes these policies itself; each wildcard is scoped to this pipeline's own resources."""
        stack = cdk.Stack.of(self)

        def arn(**parts) -> str:  # the way cdk-nag prints an ARN in a finding id
            return nag_resource_name(stack.resolve(stack.format_arn(**parts)))

        artifact_grants = {
            "Action::s3:GetObject*": "read of this pipeline's artifact objects (CDK's grantRead action group)",
            "Action::s3:GetBucket*": "bucket metadata of this pipeline's artifact bucket (CDK's grantRead)",
            "Action::s3:List*": "listing this pipeline's artifact bucket (CDK's grantRead)",
            "Action::s3:DeleteObject*": "overwriting this pipeline's own artifacts (CDK's grantReadWrite)",
            "Action::s3:Abort*": "aborting this pipeline's own multipart artifact uploads (CDK's grantReadWrite)",
            "Action::kms:ReEncrypt*": "re-encrypting with the pipeline's own artifact key only (CDK's key grant)",
            "Action::kms:GenerateDataKey*": "data keys of the pipeline's own artifact key only (CDK's key grant)",
            "Resource::" + nag_resource_name(stack.resolve(self.artifact_storage.bucket.arn_for_objects("*"))):
                "objects of this pipeline's artifact bucket, whose keys CodePipeline chooses",
        }
        for role in (self.pipeline.pipeline.role, self.pipeline.synth_project.role,
                     self.pipeline.self_mutation_project.role):
            self._acknowledge(role, artifact_grants)
        for project in (self.pipeline.synth_project, self.pipeline.self_mutation_project):
            name = project.project_name
            self._acknowledge(project.role, {
                "Resource::" + arn(service="logs", resource="log-group", resource_name=f"/aws/codebuild/{name}:*",
                                   arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME):
                    "log streams of this CodeBuild project's own log group, named by CodeBuild at run time",
                "Resource::" + arn(service="codebuild", resource="report-group", resource_name=f"{name}-*"):
                    "test report groups CodeBuild creates for this project, named after it",
            })
        self._acknowledge(self.pipeline.self_mutation_project.role, {
            "Resource::" + arn(service="iam", region="", resource="role", resource_name="*", partition="*"):
                "self-mutation assumes the CDK bootstrap roles of this account (their names carry a qualifier "
                "chosen at bootstrap); the bootstrap roles' own trust policies limit who may assume them",
            "Resource::*": "cloudformation:DescribeStacks and s3:ListBucket on stacks/buckets named only at deploy "
                           "time; both are read-only",
        })
        # The asset-publishing project exists when a stage has file assets (the model archives, the Lambda).
        assets = self.pipeline.node.try_find_child("Assets")
        file_role = assets.node.try_find_child("FileRole") if assets is not None else None
        if file_role is not None:
            self._acknowledge(file_role, {
                **artifact_grants,
                "Resource::" + arn(service="logs", resource="log-group", resource_name="/aws/codebuild/*",
                                   arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME):
                    "the asset projects' log groups, named by CodeBuild after projects CDK Pipelines creates per asset",
                "Resource::" + arn(service="codebuild", resource="report-group", resource_name="*"):
                    "report groups of the per-asset CodeBuild projects, named at run time",
                "Resource::*": "codebuild:StartBuild/BatchGetBuilds/StopBuild for the asset projects CDK Pipelines "
                               "generates; it grants them before their names exist",
            })
        source_action_role = self.pipeline.pipeline.node.try_find_child("Source")
        if source_action_role is not None:
            for child in source_action_role.node.find_all():
                if isinstance(child, iam.Role):
                    self._acknowledge(child, artifact_grants)

    @staticmethod
    def _acknowledge(role: iam.IRole, findings: dict[str, str]) -> None:
        policy = role.node.try_find_child("DefaultPolicy") if role is not None else None
        if policy is None:
            return
        for finding, reason in findings.items():
            cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]",
                                                                      reason=reason))
