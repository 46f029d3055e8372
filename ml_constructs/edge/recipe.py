"""The Greengrass v2 recipe of the edge component, and its content-derived version. Plain Python, no CDK.

Versions: a component version is immutable in Greengrass, and CloudFormation replaces an
``AWS::GreengrassV2::ComponentVersion`` whenever its recipe changes (create new, then delete old), so a
changed recipe under an unchanged version fails with a conflict. The version is therefore
``MAJOR.MINOR.PATCH`` where the user picks ``MAJOR.MINOR`` and ``PATCH`` is derived from a SHA-256 of
everything that defines the component: the recipe (with the version left out) and the artifacts, whose
S3 keys are content hashes. Same content, same version; any change, another version. ``PATCH`` is kept
below 2**31 because the nucleus parses versions with semver4j, whose numbers are Java ``int``.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

RECIPE_FORMAT_VERSION = "2020-01-25"
#: MAJOR.MINOR.PATCH without pre-release or build parts (semver.org core version).
SEMVER_PATTERN = r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
VERSION_PREFIX_PATTERN = r"(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})"
COMPONENT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
#: Reserved: a component named like a public AWS component replaces it on every device that uses it.
RESERVED_NAME_PREFIXES = ("aws.greengrass", "amazon")
#: Local pub/sub topics: no MQTT wildcards, and nothing that needs quoting inside the Run script.
TOPIC_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,255}"
MAX_PATCH = 2**31 - 1
#: ``{work:path}`` needs nucleus 2.0.4 or later (recipe reference, recipe variables).
NUCLEUS_VERSION_REQUIREMENT = ">=2.0.4 <3.0.0"
INSTALL_TIMEOUT_S = 900
PROGRAM_ENTRY = "main.py"
REQUIREMENTS_FILE = "requirements.txt"
PUBSUB_SERVICE = "aws.greengrass.ipc.pubsub"
SUBSCRIBE_OPERATION = "aws.greengrass#SubscribeToTopic"
PUBLISH_OPERATION = "aws.greengrass#PublishToTopic"


@dataclass(frozen=True, kw_only=True)
class Platform:
    """One manifest's platform: Greengrass names architectures ``amd64`` (x86_64) and ``aarch64``."""

    os: str = "linux"
    architecture: str = "amd64"


DEFAULT_PLATFORMS = (Platform(os="linux", architecture="amd64"), Platform(os="linux", architecture="aarch64"))


@dataclass(frozen=True, kw_only=True)
class Topics:
    """The component subscribes to ``input`` and publishes to ``output`` and ``error``, nothing else."""

    input: str
    output: str
    error: str

    def problems(self) -> list[str]:
        found = [f"topics.{name}: {value!r} must match {TOPIC_PATTERN} (no wildcards, spaces or quotes)"
                 for name, value in (("input", self.input), ("output", self.output), ("error", self.error))
                 if not re.fullmatch(TOPIC_PATTERN, value)]
        if len({self.input, self.output, self.error}) != 3:
            found.append("topics: input, output and error must be three different topics "
                         "(publishing results to the input topic would feed them back in)")
        return found


@dataclass(frozen=True, kw_only=True)
class ComponentSpec:
    """What the user chooses about the component; artifacts and the patch version are derived."""

    name: str
    version_prefix: str = "1.0"
    description: str = ""
    publisher: str = ""
    topics: Topics
    score_threshold: float = 0.5
    platforms: tuple[Platform, ...] = field(default=DEFAULT_PLATFORMS)

    def problems(self) -> list[str]:
        found = []
        if not re.fullmatch(COMPONENT_NAME_PATTERN, self.name):
            found.append(f"name: {self.name!r} must match {COMPONENT_NAME_PATTERN} (e.g. com.example.FraudDetector)")
        elif self.name.lower().startswith(RESERVED_NAME_PREFIXES):
            found.append(f"name: {self.name!r} uses a prefix reserved for AWS-provided components "
                         f"({', '.join(RESERVED_NAME_PREFIXES)})")
        if not re.fullmatch(VERSION_PREFIX_PATTERN, self.version_prefix):
            found.append(f"version: {self.version_prefix!r} must be MAJOR.MINOR (e.g. 1.0); the patch is derived")
        if not self.publisher:
            found.append("publisher: required")
        if not 0.0 <= self.score_threshold <= 1.0:
            found.append(f"score_threshold: must be between 0 and 1, got {self.score_threshold}")
        if not self.platforms:
            found.append("platforms: at least one platform is required")
        found.extend(self.topics.problems())
        return found


@dataclass(frozen=True, kw_only=True)
class Artifacts:
    """Where the two artifacts are (URIs may hold deploy-time tokens), their literal file names, and
    what the recipe reports about them."""

    program_uri: str
    program_file: str
    model_uri: str
    model_file: str
    model_version: str
    requirements_sha256: str

    @property
    def program_folder(self) -> str:
        """A ZIP artifact unpacks to ``{artifacts:decompressedPath}/<file name without extension>/``."""
        return PurePosixPath(self.program_file).stem


def venv_dir(artifacts: Artifacts) -> str:
    """One virtual environment per requirements content, in the component's work folder.

    The work folder is shared by every version of the component, so a new version with other
    requirements gets a fresh environment instead of changing the one the old version runs from.
    """
    return "{work:path}/venv-" + artifacts.requirements_sha256[:12]


def _lifecycle(artifacts: Artifacts) -> dict[str, Any]:
    venv = venv_dir(artifacts)
    program = f"{{artifacts:decompressedPath}}/{artifacts.program_folder}"
    marker = f"{venv}/.installed"
    install = (
        # System pip refuses to install (PEP 668, externally-managed-environment): use a venv. The marker is
        # written last, so a failed pip install is retried, and Skipif makes the step a no-op afterwards:
        # the nucleus reruns Install on every start, which must keep working offline.
        f'rm -rf "{venv}" && python3 -m venv "{venv}" && '
        f'"{venv}/bin/pip" install --disable-pip-version-check --no-input --quiet '
        f'--requirement "{program}/{REQUIREMENTS_FILE}" && touch "{marker}"')
    run = (f'exec "{venv}/bin/python" -u "{program}/{PROGRAM_ENTRY}" greengrass '
           '--model "{configuration:/modelPath}" --artifacts-dir "{artifacts:path}" '
           '--model-version "{configuration:/modelVersion}" --threshold "{configuration:/scoreThreshold}" '
           '--input-topic "{configuration:/inputTopic}" --output-topic "{configuration:/outputTopic}" '
           '--error-topic "{configuration:/errorTopic}"')
    return {
        "Setenv": {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
        "Install": {"Script": install, "Skipif": f"exists {marker}", "Timeout": INSTALL_TIMEOUT_S,
                    "RequiresPrivilege": False},
        "Run": {"Script": run, "RequiresPrivilege": False},
    }


def access_control(name: str, topics: Topics) -> dict[str, Any]:
    """IPC authorization: subscribe to the input topic, publish to the output and error topics only."""
    return {PUBSUB_SERVICE: {
        f"{name}:pubsub:1": {"policyDescription": "Receive messages to score from the input topic",
                             "operations": [SUBSCRIBE_OPERATION], "resources": [topics.input]},
        f"{name}:pubsub:2": {"policyDescription": "Publish predictions and errors",
                             "operations": [PUBLISH_OPERATION], "resources": [topics.output, topics.error]},
    }}


def build_recipe(spec: ComponentSpec, *, version: str, artifacts: Artifacts) -> dict[str, Any]:
    """The recipe as a dict (serialize with the stack's ``to_json_string`` when URIs hold tokens)."""
    manifest_artifacts = [
        {"URI": artifacts.program_uri, "Unarchive": "ZIP", "Permission": {"Read": "OWNER", "Execute": "NONE"}},
        {"URI": artifacts.model_uri, "Unarchive": "NONE", "Permission": {"Read": "OWNER", "Execute": "NONE"}},
    ]
    recipe: dict[str, Any] = {
        "RecipeFormatVersion": RECIPE_FORMAT_VERSION,
        "ComponentName": spec.name,
        "ComponentVersion": version,
    }
    if spec.description:
        recipe["ComponentDescription"] = spec.description
    return {
        **recipe,
        "ComponentPublisher": spec.publisher,
        "ComponentConfiguration": {"DefaultConfiguration": {
            # The file name of a NONE artifact is the last segment of its URI; the program resolves a
            # relative modelPath against {artifacts:path}. Numbers are strings, as the recipe reference
            # advises, so that they keep their type through deployments.
            "modelPath": artifacts.model_file,
            "modelVersion": artifacts.model_version,
            "scoreThreshold": repr(float(spec.score_threshold)),
            "inputTopic": spec.topics.input,
            "outputTopic": spec.topics.output,
            "errorTopic": spec.topics.error,
            "accessControl": access_control(spec.name, spec.topics),
        }},
        "ComponentDependencies": {"aws.greengrass.Nucleus": {
            "VersionRequirement": NUCLEUS_VERSION_REQUIREMENT, "DependencyType": "SOFT"}},
        "Manifests": [
            {"Platform": {"os": platform.os, "architecture": platform.architecture},
             "Lifecycle": _lifecycle(artifacts), "Artifacts": manifest_artifacts}
            for platform in spec.platforms
        ],
    }


def content_digest(spec: ComponentSpec, artifacts: Artifacts) -> str:
    """SHA-256 over the recipe without its version and with URIs reduced to their content-hash file names."""
    literal = Artifacts(program_uri=f"s3://<artifact-bucket>/{artifacts.program_file}",
                        program_file=artifacts.program_file,
                        model_uri=f"s3://<artifact-bucket>/{artifacts.model_file}", model_file=artifacts.model_file,
                        model_version=artifacts.model_version, requirements_sha256=artifacts.requirements_sha256)
    recipe = build_recipe(spec, version="<derived>", artifacts=literal)
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def derive_version(version_prefix: str, digest: str) -> str:
    """``MAJOR.MINOR.PATCH`` with PATCH = the digest's top 31 bits (a Java int, as the nucleus requires)."""
    if not re.fullmatch(VERSION_PREFIX_PATTERN, version_prefix):
        raise ValueError(f"version prefix {version_prefix!r} must be MAJOR.MINOR")
    patch = int(digest, 16) >> (len(digest) * 4 - 31)
    return f"{version_prefix}.{patch}"


__all__ = ["Artifacts", "ComponentSpec", "DEFAULT_PLATFORMS", "Platform", "Topics", "SEMVER_PATTERN",
           "build_recipe", "content_digest", "derive_version", "access_control", "venv_dir"]
