"""The GitHub Actions workflows users copy: schema-valid, and doing what the docs say they do."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def _check(paths: list[Path]) -> subprocess.CompletedProcess:
    # check-jsonschema ships SchemaStore's GitHub workflow schema: no network needed.
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def _load(name: str) -> dict:
    # PyYAML reads the bare key `on` as True (YAML 1.1); GitHub reads it as "on".
    document = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / name).read_text())
    document["on"] = document.pop(True, document.get("on"))
    return document


def _steps_running(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_there_are_workflows_to_check():
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "deploy.yml"}


def test_every_workflow_matches_the_github_workflow_schema():
    # GIVEN the committed workflow files  WHEN validated against the GitHub workflow schema
    result = _check(WORKFLOWS)
    # THEN none has an unknown key, a wrong type or a missing required field
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    # GIVEN a workflow whose job has no runs-on and a misspelled `steps`
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    stepz:\n      - run: make test\n")
    # WHEN checked  THEN the check fails (the test above can fail)
    assert _check([broken]).returncode != 0


def test_ci_runs_the_readme_test_command_and_publishes_the_assembly():
    ci = _load("ci.yml")
    assert set(ci["on"]) == {"pull_request", "push"}
    job = ci["jobs"]["test"]
    assert "make test" in _steps_running(job)
    assert "make synth" in _steps_running(job)
    uploads = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads and uploads[0]["with"]["path"] == "cdk.out/"
    summary = next(step for step in job["steps"] if "GITHUB_STEP_SUMMARY" in step.get("run", ""))
    assert "tests/snapshot/__snapshots__" in summary["run"]
    assert ci["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("job_name, environment, condition", [
    ("staging", "staging", "github.ref == 'refs/heads/main'"),
    ("production", "production", "startsWith(github.ref, 'refs/tags/v')"),
])
def test_deploy_assumes_a_role_through_oidc_per_environment(job_name, environment, condition):
    deploy = _load("deploy.yml")
    # GIVEN the deploy workflow  THEN only the deploy jobs may request an OIDC token
    assert deploy["permissions"] == {"contents": "read"}
    job = deploy["jobs"][job_name]
    assert job["permissions"]["id-token"] == "write"
    assert job["environment"] == environment and job["if"] == condition
    credentials = [step for step in job["steps"]
                   if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert len(credentials) == 1
    # AND no long-lived keys are involved
    assert "role-to-assume" in credentials[0]["with"]
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials[0]["with"])
    assert f"make deploy ENV={environment}" in _steps_running(job)
    assert "make test" in _steps_running(job)
