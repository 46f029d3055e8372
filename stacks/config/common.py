"""Configuration shared by every pattern: the model, alerting, the target account and storage lifecycles."""
from __future__ import annotations

from ml_constructs.common.model_package import FRAMEWORK_SKLEARN_VERSIONS
from ml_constructs.common.secure_storage import Lifecycle, ObjectExpiry
from stacks.config.base import ConfigModel, setting

MODEL_NAME_PATTERN = r"[A-Za-z][A-Za-z0-9-]{0,39}"
MODEL_NAME_HELP = "a letter then up to 39 letters, digits or hyphens"
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
DEFAULT_FRAMEWORK_VERSION = "1.2-1"
DEFAULT_ARTIFACTS_DIR = "artifacts/fraud-detector"


class ModelConfig(ConfigModel):
    """Which packaged model to deploy (``python -m training.package --out <dir>``) and its serving framework.

    Everything else about the model (its name, features, version, decision threshold) is read from the
    folder's ``metadata.json``; names of stacks and resources derive from the model's name.
    """

    artifacts_dir: str = setting(DEFAULT_ARTIFACTS_DIR, pattern=r".*\S.*", help="a folder path")
    """The packaged model every pattern deploys."""
    name: str | None = setting(None, pattern=MODEL_NAME_PATTERN, help=MODEL_NAME_HELP)
    """Overrides the name in metadata.json (stack names, endpoint, job prefix, component, topics derive from it)."""
    candidate_dir: str | None = setting(None, pattern=r".*\S.*", help="a folder path")
    """A second packaged model served by the real-time variants marked ``model: candidate`` (canary or shadow);
    null deploys one model. It must be trained on the same feature list."""
    framework_version: str = DEFAULT_FRAMEWORK_VERSION

    def problems(self) -> list[str]:
        found = []
        if self.framework_version not in FRAMEWORK_SKLEARN_VERSIONS:
            found.append(f"framework_version: {self.framework_version!r} is not supported; allowed values are "
                         + ", ".join(sorted(FRAMEWORK_SKLEARN_VERSIONS)))
        if self.candidate_dir is not None and self.candidate_dir.rstrip("/") == self.artifacts_dir.rstrip("/"):
            found.append("candidate_dir: is the same folder as artifacts_dir; a candidate is a different model")
        return found


class AlertsConfig(ConfigModel):
    """Where alarms go: an encrypted SNS topic per stack, optionally with an email subscription."""

    email: str | None = setting(None, pattern=EMAIL_PATTERN, help="an email address")


class DeployTarget(ConfigModel):
    """Account and region to deploy to; null means the CLI's environment (or environment-agnostic synth)."""

    account: str | None = setting(None, pattern=r"\d{12}", help="a 12-digit AWS account id")
    region: str | None = setting(None, pattern=r"[a-z]{2}(-[a-z]+)+-\d", help="an AWS region such as eu-west-1")


class StorageConfig(ConfigModel):
    """Lifecycle of the buckets the stacks create (data capture, uploads, predictions)."""

    capture_expiry_days: int = setting(90, ge=1, le=3650, help="days captured requests and responses are kept")
    noncurrent_version_expiry_days: int = setting(30, ge=1, le=3650,
                                                  help="days an overwritten or deleted object version is kept")
    abort_incomplete_upload_days: int = setting(7, ge=1, le=365,
                                                help="days before an unfinished multipart upload is removed")


    def lifecycle(self, *expirations: ObjectExpiry) -> Lifecycle:
        """The bucket lifecycle these settings describe, plus prefixes whose current objects expire."""
        return Lifecycle(noncurrent_version_expiry_days=self.noncurrent_version_expiry_days,
                         abort_incomplete_upload_days=self.abort_incomplete_upload_days, expirations=expirations)


__all__ = ["ModelConfig", "AlertsConfig", "DeployTarget", "StorageConfig", "MODEL_NAME_PATTERN"]
