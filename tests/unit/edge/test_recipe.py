"""The recipe builder and the version scheme, as plain Python (no synth)."""
from __future__ import annotations

import dataclasses
import re

import pytest

from ml_constructs.edge.recipe import (
    SEMVER_PATTERN, Artifacts, ComponentSpec, Platform, Topics, build_recipe, content_digest, derive_version)

TOPICS = Topics(input="in/t", output="out/t", error="err/t")
SPEC = ComponentSpec(name="com.example.Detector", version_prefix="1.0", description="scores rows",
                     publisher="team", topics=TOPICS, score_threshold=0.5)
ARTIFACTS = Artifacts(program_uri="s3://bucket/" + "a" * 64 + ".zip", program_file="a" * 64 + ".zip",
                      model_uri="s3://bucket/" + "b" * 64 + ".onnx", model_file="b" * 64 + ".onnx",
                      model_version="v1-abc", requirements_sha256="c" * 64)


def test_version_is_prefix_plus_a_31_bit_patch():
    # GIVEN the largest possible digest
    version = derive_version("2.5", "f" * 64)
    # THEN the version is semver with the chosen MAJOR.MINOR and a patch that fits a Java int
    assert re.fullmatch(SEMVER_PATTERN, version)
    assert version == f"2.5.{2**31 - 1}"
    assert derive_version("2.5", "0" * 64) == "2.5.0"


@pytest.mark.parametrize("prefix", ["1", "1.0.0", "01.0", "v1.0", ""])
def test_version_prefix_must_be_major_minor(prefix):
    with pytest.raises(ValueError, match="MAJOR.MINOR"):
        derive_version(prefix, "0" * 64)


def test_digest_is_stable_and_ignores_where_the_bucket_is():
    # GIVEN the same content whose URIs point at another bucket (another account or region)
    elsewhere = dataclasses.replace(ARTIFACTS, program_uri="s3://other/" + ARTIFACTS.program_file,
                                    model_uri="s3://other/" + ARTIFACTS.model_file)
    # THEN the digest, and so the version, is the same
    assert content_digest(SPEC, ARTIFACTS) == content_digest(SPEC, elsewhere)


CHANGES = {
    "threshold": (dataclasses.replace(SPEC, score_threshold=0.6), ARTIFACTS),
    "name": (dataclasses.replace(SPEC, name="com.example.Other"), ARTIFACTS),
    "description": (dataclasses.replace(SPEC, description="other"), ARTIFACTS),
    "publisher": (dataclasses.replace(SPEC, publisher="other"), ARTIFACTS),
    "topic": (dataclasses.replace(SPEC, topics=dataclasses.replace(TOPICS, output="out/v2")), ARTIFACTS),
    "platforms": (dataclasses.replace(SPEC, platforms=(Platform(os="linux", architecture="aarch64"),)), ARTIFACTS),
    "program": (SPEC, dataclasses.replace(ARTIFACTS, program_file="d" * 64 + ".zip")),
    "model": (SPEC, dataclasses.replace(ARTIFACTS, model_file="e" * 64 + ".onnx")),
    "model version": (SPEC, dataclasses.replace(ARTIFACTS, model_version="v2")),
    "requirements": (SPEC, dataclasses.replace(ARTIFACTS, requirements_sha256="f" * 64)),
}


@pytest.mark.parametrize("spec, artifacts", CHANGES.values(), ids=CHANGES.keys())
def test_any_content_change_changes_the_version(spec, artifacts):
    # GIVEN one change to what the recipe says or what the artifacts contain
    # THEN the derived version differs from the original's
    assert derive_version("1.0", content_digest(spec, artifacts)) != derive_version(
        "1.0", content_digest(SPEC, ARTIFACTS))


def test_zip_unpacks_to_its_file_name_without_extension():
    recipe = build_recipe(SPEC, version="1.0.7", artifacts=ARTIFACTS)
    run = recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"]
    # THEN the program path is {artifacts:decompressedPath}/<zip stem>/main.py
    assert f'"{{artifacts:decompressedPath}}/{"a" * 64}/main.py"' in run
    # AND the venv is named after the requirements content
    assert '"{work:path}/venv-cccccccccccc/bin/python"' in run


def test_description_is_omitted_when_empty():
    recipe = build_recipe(dataclasses.replace(SPEC, description=""), version="1.0.0", artifacts=ARTIFACTS)
    assert "ComponentDescription" not in recipe


def test_spec_reports_every_problem_at_once():
    # GIVEN a spec with four independent mistakes
    spec = ComponentSpec(name="aws.greengrass.Mine", version_prefix="1.0.0", publisher="", score_threshold=1.5,
                         topics=Topics(input="a/#", output="same", error="same"))
    # THEN each is reported, with the field it concerns
    problems = spec.problems()
    assert [problem.split(":")[0] for problem in problems] == [
        "name", "version", "publisher", "score_threshold", "topics.input", "topics"]
