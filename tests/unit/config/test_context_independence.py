"""The suite pins its own context: a user's cdk.json (their model, their choices) cannot break ``make test``."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, cli_context
from tests.context import FEATURE_FLAGS


def test_the_pinned_feature_flags_are_the_apps():
    # GIVEN cdk.json (if the user kept its feature flags)  THEN the suite synthesizes with the same flags
    cdk_json = REPO_ROOT / "cdk.json"
    if not cdk_json.is_file():
        pytest.skip("no cdk.json")
    context = json.loads(cdk_json.read_text())["context"]
    assert {key: value for key, value in context.items() if key.startswith("@")} == FEATURE_FLAGS


def test_the_suite_does_not_read_cdk_json(tmp_path):
    # GIVEN a copy of the project whose cdk.json points at another model and changes choices, and one without
    # cdk.json at all
    for variant in ("changed", "absent"):
        project = tmp_path / variant
        shutil.copytree(REPO_ROOT / "tests", project / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        for entry in REPO_ROOT.iterdir():
            if entry.name not in ("tests", "cdk.json", ".git", "cdk.out") and not entry.name.startswith(".pytest"):
                (project / entry.name).symlink_to(entry)
        if variant == "changed":
            cdk = json.loads((REPO_ROOT / "cdk.json").read_text())
            cdk["context"]["deploy"] = {"model": {"artifacts_dir": "artifacts/churn-scorer", "name": "churn"},
                                        "realtime": {"enabled": False, "autoscaling": {"max_capacity": 1}},
                                        "alerts": {"email": "me@example.com"}}
            (project / "cdk.json").write_text(json.dumps(cdk))
        # WHEN the suite's context and the deployment its apps are built from are made in that project (no
        # construct reads cdk.json: the CLI passes it as context, and build_app passes the pinned context instead)
        script = ("from tests.conftest import cli_context; "
                  "from stacks.deployment import deployment_from_context; "
                  "d = deployment_from_context(cli_context()); "
                  "print(sorted(d.stack_name(p.capitalize()) for p in ('realtime', 'batch', 'edge', 'serverless') "
                  "if getattr(d.config, p).enabled)); "
                  "print(cli_context()['deploy']['model']['artifacts_dir'])")
        result = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True, text=True,
                                timeout=300)
        # THEN the suite still deploys the demo model's four stacks, from its pinned context
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.splitlines()[-2:] == [
            "['FraudDetector-Batch', 'FraudDetector-Edge', 'FraudDetector-Realtime', 'FraudDetector-Serverless']",
            "artifacts/fraud-detector"], variant


def test_cli_context_is_a_fresh_copy():
    first = cli_context()
    first["deploy"]["model"]["artifacts_dir"] = "elsewhere"
    assert cli_context()["deploy"]["model"]["artifacts_dir"] == "artifacts/fraud-detector"


def test_every_environment_in_cdk_json_parses():
    # GIVEN the environments cdk.json ships (or the user's)  WHEN each is selected  THEN its configuration is valid
    from stacks.config import config_from_context

    cdk_json = REPO_ROOT / "cdk.json"
    if not cdk_json.is_file():
        pytest.skip("no cdk.json")
    context = json.loads(cdk_json.read_text())["context"]
    environments = context["deploy"].get("environments", {})
    assert environments, "cdk.json ships staging and production examples"
    for name in environments:
        config = config_from_context({**context, "env": name})
        assert config.target == config_from_context({"deploy": environments[name]}).target, name
