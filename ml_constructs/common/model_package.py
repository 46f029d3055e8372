"""A SageMaker model package: ``model.tar.gz`` (model + ``code/inference.py``) as an S3 asset."""
from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ml_constructs.common.archive import deterministic_tar_gz, files_under, write_content_addressed
from ml_constructs.common.image_registry import SKLEARN_REGISTRY, SKLEARN_REPOSITORY, sklearn_image_uri
from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INFERENCE_CODE_DIR = REPO_ROOT / "inference"
DEFAULT_BUILD_DIR = REPO_ROOT / ".build" / "model-packages"
#: The scikit-learn each container framework version runs; a pickle from another version may not load.
FRAMEWORK_SKLEARN_VERSIONS = {"1.2-1": "1.2.1", "1.4-2": "1.4.2"}
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
#: The container imports SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY (container issues #77, #82).
CODE_DIR_IN_CONTAINER = "/opt/ml/model/code"


def check_framework_compatibility(metadata: ModelMetadata, framework_version: str) -> None:
    """Fail synth when the model was pickled with a scikit-learn the container does not run."""
    expected = FRAMEWORK_SKLEARN_VERSIONS.get(framework_version)
    if expected is None:
        raise ModelArtifactsError(f"framework_version {framework_version!r} is not supported; allowed values are "
                                  + ", ".join(sorted(FRAMEWORK_SKLEARN_VERSIONS)))
    built_with = metadata.library_versions.get("scikit_learn")
    if built_with != expected:
        raise ModelArtifactsError(
            f"{metadata.artifacts_dir / METADATA_FILE}: model was built with scikit-learn {built_with}, but "
            f"framework_version {framework_version} serves scikit-learn {expected}; retrain with scikit-learn "
            f"{expected} or choose the framework version that matches")


class ModelPackage(Construct):
    """A trained model and the inference code, packaged the way the scikit-learn container loads them.

    ``model.tar.gz`` holds ``model.joblib``, ``metadata.json`` and ``code/`` (the contents of
    ``inference_code_dir``). The archive is byte-reproducible, so its asset hash only changes
    when the model or the code does.
    """

    def __init__(self, scope: Construct, construct_id: str, *, artifacts_dir: Path | str,
                 framework_version: str = "1.2-1", inference_code_dir: Path = DEFAULT_INFERENCE_CODE_DIR,
                 build_dir: Path = DEFAULT_BUILD_DIR) -> None:
        super().__init__(scope, construct_id)
        self.metadata = ModelMetadata.load(artifacts_dir)
        check_framework_compatibility(self.metadata, framework_version)
        self.framework_version = framework_version
        if not (inference_code_dir / "inference.py").is_file():
            raise ModelArtifactsError(f"{inference_code_dir / 'inference.py'} not found")
        members = {
            MODEL_FILE: self.metadata.require_file(MODEL_FILE),
            METADATA_FILE: self.metadata.require_file(METADATA_FILE),
            **files_under(inference_code_dir, prefix="code/"),
        }
        self.archive_path = write_content_addressed(deterministic_tar_gz(members), build_dir=build_dir,
                                                    file_name="model.tar.gz")
        self.asset = s3_assets.Asset(self, "Archive", path=str(self.archive_path))
        self.image_uri = sklearn_image_uri(self, framework_version)
        self.environment = {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIR_IN_CONTAINER,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            # One thread per worker: thread pools only add tail latency for single-row requests.
            "OMP_NUM_THREADS": "1",
            "MODEL_VERSION": self.metadata.model_version,
        }

    @property
    def model_data_url(self) -> str:
        return self.asset.s3_object_url

    @property
    def model_version(self) -> str:
        return self.metadata.model_version

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Read this archive (only this object) and pull the serving image."""
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[self.asset.bucket.arn_for_objects(self.asset.s3_object_key)]))
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[SKLEARN_REGISTRY.repository_arn(self, SKLEARN_REPOSITORY)]))


__all__ = ["ModelPackage", "ModelArtifactsError", "check_framework_compatibility"]
