"""Fixtures for the training tests: one real build per session, run the way users run it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
VERSION_FOLDERS = ("fraud-detector", "fraud-detector-v2")


def run_build(out: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run ``python -m training.build`` from the repo root, as the Makefile does (caller's PYTHONHASHSEED
    unset: the build pins its own)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONHASHSEED"}
    return subprocess.run(
        [sys.executable, "-m", "training.build", "--out", str(out), *extra],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True, timeout=120,
    )


@pytest.fixture(scope="session")
def build_into():
    """``run_build`` for tests that need a build of their own."""
    return run_build


@pytest.fixture(scope="session")
def build_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("artifacts")
    return out, run_build(out)


@pytest.fixture(scope="session")
def artifacts(build_run) -> Path:
    return build_run[0]


@pytest.fixture(scope="session", params=VERSION_FOLDERS)
def model_folder(request, artifacts) -> Path:
    return artifacts / request.param


@pytest.fixture(scope="session")
def model_metadata(model_folder) -> dict:
    return json.loads((model_folder / "metadata.json").read_text())
