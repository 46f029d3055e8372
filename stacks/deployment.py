"""What one synth deploys: the validated configuration, the selected environment and the model(s) it names.

The model is an input: its folder's ``metadata.json`` gives its name, features and decision threshold, and
every name that is not set in the configuration derives from the model's name (and the environment's).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata
from ml_constructs.common.naming import pascal_case
from stacks.config import AppConfig, ConfigError
from stacks.config.batch import JOB_NAME_PREFIX_PATTERN, MAX_JOB_NAME_PREFIX
from stacks.config.common import MODEL_NAME_HELP, MODEL_NAME_PATTERN


@dataclass(frozen=True, kw_only=True)
class EdgeTopics:
    input: str
    output: str
    error: str


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """The configuration plus the facts read from the model(s); the stacks' only input."""

    config: AppConfig
    env: str | None
    model: ModelMetadata
    candidate: ModelMetadata | None = None

    @property
    def model_name(self) -> str:
        """``deploy.model.name`` if set, else the name in the model's metadata.json."""
        return self.config.model.name or self.model.model_name

    @property
    def decision_threshold(self) -> float:
        return self.model.decision_threshold

    @property
    def base_name(self) -> str:
        """``fraud-detector``, or ``fraud-detector-staging`` with ``-c env=staging``: the root of fixed names."""
        return f"{self.model_name}-{self.env}" if self.env else self.model_name

    @property
    def stack_prefix(self) -> str:
        """``FraudDetector`` or ``FraudDetector-Staging``: stack names read ``<prefix>-Realtime``."""
        prefix = pascal_case(self.model_name)
        return f"{prefix}-{pascal_case(self.env)}" if self.env else prefix

    def stack_name(self, pattern: str) -> str:
        return f"{self.stack_prefix}-{pattern}"

    @property
    def endpoint_name(self) -> str:
        return self.config.realtime.endpoint_name or f"{self.base_name}-realtime"

    @property
    def batch_job_prefix(self) -> str:
        """Lower case: SageMaker lower-cases job names in ARNs, and the IAM policy built from it must match."""
        return self.config.batch.job_name_prefix or self.base_name.lower()

    @property
    def component_name(self) -> str:
        suffix = f".{pascal_case(self.env)}" if self.env else ""
        return self.config.edge.component_name or f"com.example.{pascal_case(self.model_name)}{suffix}"

    @property
    def edge_topics(self) -> EdgeTopics:
        topics, root = self.config.edge.topics, self.model_name.lower()
        return EdgeTopics(input=topics.input or f"{root}/requests", output=topics.output or f"{root}/predictions",
                          error=topics.error or f"{root}/errors")

    @property
    def metrics_namespace(self) -> str:
        return self.config.serverless.metrics_namespace or f"MLDeployPatterns/{pascal_case(self.model_name)}"

    def problems(self) -> list[str]:
        """Checks between the configuration and the model(s); paths are the keys a user would change."""
        found = []
        if not re.fullmatch(MODEL_NAME_PATTERN, self.model_name):
            # Every derived name would be wrong too: report the cause only.
            return [f"deploy.model.name: the model's metadata.json names it {self.model_name!r}, which cannot "
                    f"name stacks and resources ({MODEL_NAME_HELP}); set deploy.model.name"]
        if not 0.0 < self.decision_threshold < 1.0:
            found.append(f"deploy.model.artifacts_dir: the model's decision_threshold is {self.decision_threshold}; "
                         "it must be between 0 and 1: repackage with `python -m training.package --threshold`")
        if self.candidate is not None and self.candidate.feature_names != self.model.feature_names:
            found.append(
                f"deploy.model.candidate_dir: the candidate was trained on {self.candidate.n_features} features "
                f"{list(self.candidate.feature_names)[:5]}{'...' if self.candidate.n_features > 5 else ''} but the "
                f"model on {self.model.n_features} {list(self.model.feature_names)[:5]}"
                f"{'...' if self.model.n_features > 5 else ''}; both must take the same features in the same order "
                "(one endpoint serves one request format)")
        config = self.config
        if config.batch.enabled and config.batch.job_name_prefix is None and (
                len(self.batch_job_prefix) > MAX_JOB_NAME_PREFIX
                or not re.fullmatch(JOB_NAME_PREFIX_PATTERN, self.batch_job_prefix)):
            where = f"deploy.environments.{self.env}.batch.job_name_prefix" if self.env else \
                "deploy.batch.job_name_prefix"
            found.append(f"deploy.batch.job_name_prefix: {self.batch_job_prefix!r} (from the model name"
                         f"{' and environment' if self.env else ''}) cannot prefix transform job names (lower-case "
                         f"letters, digits and hyphens, max {MAX_JOB_NAME_PREFIX}); set {where}")
        if config.realtime.endpoint_name is None and len(self.endpoint_name) > 63:
            found.append(f"deploy.realtime.endpoint_name: {self.endpoint_name!r} is longer than 63 characters; set "
                         "a shorter endpoint_name")
        return found


def resolve(config: AppConfig, env: str | None = None) -> Deployment:
    """Load the model(s) the configuration names and check them against it; every problem at once."""
    problems: list[str] = []
    loaded: dict[str, ModelMetadata | None] = {}
    for key, folder in (("artifacts_dir", config.model.artifacts_dir), ("candidate_dir", config.model.candidate_dir)):
        loaded[key] = None
        if folder is None:
            continue
        try:
            loaded[key] = ModelMetadata.load(folder)
        except ModelArtifactsError as exc:
            problems.append(f"deploy.model.{key}: {exc}")
    if loaded["artifacts_dir"] is None:
        raise ConfigError(problems)
    deployment = Deployment(config=config, env=env, model=loaded["artifacts_dir"], candidate=loaded["candidate_dir"])
    problems += deployment.problems()
    if problems:
        raise ConfigError(problems)
    return deployment


def deployment_from_context(context) -> Deployment:
    """The whole input of a synth: configuration (with environment and overrides) and the model(s) it names."""
    from stacks.config import config_from_context, environment_from_context

    return resolve(config_from_context(context), environment_from_context(context))


__all__ = ["Deployment", "EdgeTopics", "deployment_from_context", "resolve"]
