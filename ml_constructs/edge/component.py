"""A Greengrass v2 component as code: program and ONNX model as S3 assets, a generated recipe, device access.

Only L1 resources exist for Greengrass v2 (``CfnComponentVersion``, ``CfnDeployment``). Greengrass
reads the artifacts when it creates the component version, so they must be in S3 first: they are CDK
file assets, which the CDK CLI (and CDK Pipelines) publish to the bootstrap bucket before CloudFormation
runs the stack (the stack artifact depends on its ``.assets`` artifact in the cloud assembly).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Mapping

import aws_cdk as cdk
from aws_cdk import aws_greengrassv2 as greengrassv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ml_constructs.common.archive import deterministic_zip, files_under, write_content_addressed
from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata
from ml_constructs.edge.recipe import (
    PROGRAM_ENTRY, REQUIREMENTS_FILE, SEMVER_PATTERN, Artifacts, ComponentSpec, build_recipe, content_digest,
    derive_version)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROGRAM_DIR = REPO_ROOT / "edge_component"
DEFAULT_BUILD_DIR = REPO_ROOT / ".build" / "edge-component"
PROGRAM_ARCHIVE_NAME = "program.zip"
ONNX_FILE = "model.onnx"
#: What edge_component/predictor.py feeds and reads.
ONNX_INPUT_NAME = "features"
ONNX_OUTPUT_NAME = "probabilities"
#: The model version travels inside the Run script, so it must not need quoting.
MODEL_VERSION_PATTERN = r"[A-Za-z0-9._:+-]{1,128}"
THING_GROUP_ARN_PATTERN = r"arn:aws[a-z-]*:iot:[a-z0-9-]+:\d{12}:thinggroup/[A-Za-z0-9:_-]{1,128}"
DEFAULT_UPDATE_TIMEOUT_S = 60


class GreengrassComponentError(ValueError):
    """The component cannot be built as asked; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("Greengrass component: " + "; ".join(self.problems))


@dataclass(frozen=True, kw_only=True)
class EdgeModel:
    """The ONNX file the component ships and the version it reports in every prediction."""

    path: Path
    version: str

    @classmethod
    def from_artifacts(cls, artifacts_dir: Path | str) -> "EdgeModel":
        """``model.onnx`` and ``metadata.json`` from a training artifacts folder, checked against the program."""
        metadata = ModelMetadata.load(artifacts_dir)
        path = metadata.require_file(ONNX_FILE)
        onnx = metadata.raw.get("onnx") or {}
        expected = {"input_name": ONNX_INPUT_NAME, "probabilities_output": ONNX_OUTPUT_NAME}
        wrong = [f"{key} is {onnx[key]!r}, the edge program needs {value!r}"
                 for key, value in expected.items() if key in onnx and onnx[key] != value]
        if wrong:
            raise ModelArtifactsError(f"{path}: " + "; ".join(wrong) + " (re-export the model with those names)")
        return cls(path=path, version=metadata.model_version)


class GreengrassComponent(Construct):
    """One Greengrass component version: the program zip and the model as S3 artifacts, the recipe inline.

    The version is ``<spec.version_prefix>.<patch>`` with the patch derived from the recipe and the
    artifacts (see :mod:`ml_constructs.edge.recipe`): content that changes always gets a new
    version, and unchanged content keeps its version, so nothing is republished.
    """

    def __init__(self, scope: Construct, construct_id: str, *, spec: ComponentSpec, model: EdgeModel,
                 program_dir: Path = DEFAULT_PROGRAM_DIR, build_dir: Path = DEFAULT_BUILD_DIR) -> None:
        super().__init__(scope, construct_id)
        _validate(spec=spec, model=model, program_dir=program_dir)
        self.spec = spec
        self.model = model
        program = files_under(program_dir)
        self.program_members = tuple(sorted(program))
        archive_path = write_content_addressed(deterministic_zip(program), build_dir=build_dir,
                                               file_name=PROGRAM_ARCHIVE_NAME)
        self.program_asset = s3_assets.Asset(self, "ProgramArtifact", path=str(archive_path))
        self.model_asset = s3_assets.Asset(self, "ModelArtifact", path=str(model.path))
        self.artifacts = Artifacts(
            program_uri=self.program_asset.s3_object_url, program_file=_literal_file_name(self.program_asset),
            model_uri=self.model_asset.s3_object_url, model_file=_literal_file_name(self.model_asset),
            model_version=model.version,
            requirements_sha256=hashlib.sha256((program_dir / REQUIREMENTS_FILE).read_bytes()).hexdigest())
        self.content_digest = content_digest(spec, self.artifacts)
        self.version = derive_version(spec.version_prefix, self.content_digest)
        self.recipe = build_recipe(spec, version=self.version, artifacts=self.artifacts)
        # Every recipe change replaces this resource (InlineRecipe is create-only); the derived version
        # makes the replacement a new version instead of a conflict with the existing one.
        self.component_version = greengrassv2.CfnComponentVersion(
            self, "ComponentVersion", inline_recipe=cdk.Stack.of(self).to_json_string(self.recipe))

    @property
    def component_name(self) -> str:
        return self.spec.name

    @property
    def component_arn(self) -> str:
        """ARN of this component version (``...:components:<name>:versions:<version>``)."""
        return self.component_version.attr_arn

    @property
    def artifact_object_arns(self) -> list[str]:
        return [asset.bucket.arn_for_objects(asset.s3_object_key) for asset in (self.program_asset, self.model_asset)]

    def grant_artifact_read(self, role: iam.IRole, *, artifact_key: kms.IKey | None = None) -> iam.ManagedPolicy:
        """A customer managed policy on ``role`` (the core devices' token exchange role) to download the artifacts.

        Only ``s3:GetBucketLocation`` on the artifact bucket and ``s3:GetObject`` on the two artifact
        objects. ``artifact_key`` is needed only when the bootstrap bucket uses a customer managed KMS key
        whose key policy does not already let account principals decrypt through S3.
        """
        stack = cdk.Stack.of(self)
        buckets: dict[str, str] = {}
        for asset in (self.program_asset, self.model_asset):
            buckets.setdefault(str(stack.resolve(asset.bucket.bucket_arn)), asset.bucket.bucket_arn)
        statements = [
            iam.PolicyStatement(sid="ArtifactBucketLocation", actions=["s3:GetBucketLocation"],
                                resources=list(buckets.values())),
            iam.PolicyStatement(sid="ArtifactObjects", actions=["s3:GetObject"], resources=self.artifact_object_arns),
        ]
        if artifact_key is not None:
            statements.append(iam.PolicyStatement(
                sid="ArtifactDecrypt", actions=["kms:Decrypt"], resources=[artifact_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}}))
        return iam.ManagedPolicy(
            self, f"ArtifactRead{len([c for c in self.node.children if isinstance(c, iam.ManagedPolicy)])}",
            # No version in the description: a changed description replaces a managed policy.
            description=f"Core devices download the {self.spec.name} component artifacts", statements=statements,
            roles=[role])


class ThingGroupDeployment(Construct):
    """Deploys a component version to every core device in a thing group.

    A thing group has one current deployment: this one replaces whatever was deployed to the group
    before, so list every other component the devices must keep in ``additional_components``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, component: GreengrassComponent, thing_group_arn: str,
                 deployment_name: str | None = None, additional_components: Mapping[str, str] | None = None,
                 update_timeout_s: int = DEFAULT_UPDATE_TIMEOUT_S) -> None:
        super().__init__(scope, construct_id)
        additional = dict(additional_components or {})
        problems = []
        if not re.fullmatch(THING_GROUP_ARN_PATTERN, thing_group_arn):
            problems.append(f"thing_group_arn: {thing_group_arn!r} is not a thing group ARN "
                            "(arn:aws:iot:<region>:<account>:thinggroup/<name>)")
        if component.component_name in additional:
            problems.append(f"additional_components: {component.component_name} is the deployed component itself")
        problems.extend(f"additional_components[{name}]: {version!r} is not MAJOR.MINOR.PATCH"
                        for name, version in additional.items() if not re.fullmatch(SEMVER_PATTERN, version))
        if problems:
            raise GreengrassComponentError(problems)
        components = {name: greengrassv2.CfnDeployment.ComponentDeploymentSpecificationProperty(component_version=v)
                      for name, v in sorted(additional.items())}
        # GetAtt (not the literal version) makes CloudFormation create the component version first.
        components[component.component_name] = greengrassv2.CfnDeployment.ComponentDeploymentSpecificationProperty(
            component_version=component.component_version.attr_component_version)
        self.deployment = greengrassv2.CfnDeployment(
            self, "Deployment", target_arn=thing_group_arn, deployment_name=deployment_name or component.component_name,
            components=components,
            deployment_policies=greengrassv2.CfnDeployment.DeploymentPoliciesProperty(
                failure_handling_policy="ROLLBACK",
                component_update_policy=greengrassv2.CfnDeployment.DeploymentComponentUpdatePolicyProperty(
                    action="NOTIFY_COMPONENTS", timeout_in_seconds=update_timeout_s)))

    @property
    def deployment_id(self) -> str:
        return self.deployment.attr_deployment_id


def _literal_file_name(asset: s3_assets.Asset) -> str:
    key = asset.s3_object_key
    if cdk.Token.is_unresolved(key):
        raise GreengrassComponentError([
            f"{asset.node.path}: the stack synthesizer names asset objects only at deploy time; the recipe needs "
            "the literal file name (the folder a ZIP artifact unpacks to). Use the DefaultStackSynthesizer."])
    return PurePosixPath(key).name


def _validate(*, spec: ComponentSpec, model: EdgeModel, program_dir: Path) -> None:
    problems = list(spec.problems())
    for name in (PROGRAM_ENTRY, REQUIREMENTS_FILE):
        if not (program_dir / name).is_file():
            problems.append(f"program_dir: {program_dir / name} not found")
    if not model.path.is_file():
        problems.append(f"model: {model.path} not found")
    if not re.fullmatch(MODEL_VERSION_PATTERN, model.version):
        problems.append(f"model: version {model.version!r} must match {MODEL_VERSION_PATTERN}")
    if problems:
        raise GreengrassComponentError(problems)


__all__ = ["EdgeModel", "GreengrassComponent", "GreengrassComponentError", "ThingGroupDeployment"]
