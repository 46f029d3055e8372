"""The drift job's runtime modules, imported from the folder that ships in the Lambda (as the runtime does)."""
from __future__ import annotations

import importlib
import sys

import pytest

from tests.unit.monitoring.demo import RUNTIME_DIR, demo_baseline

if str(RUNTIME_DIR) not in sys.path:
    sys.path.append(str(RUNTIME_DIR))


@pytest.fixture(scope="session")
def stats():
    return importlib.import_module("drift_stats")


@pytest.fixture(scope="session")
def readers():
    return importlib.import_module("drift_readers")


@pytest.fixture(scope="session")
def quality():
    return importlib.import_module("drift_quality")


@pytest.fixture(scope="session")
def handler_module():
    return importlib.import_module("drift_handler")


@pytest.fixture(scope="session")
def baseline() -> dict:
    return demo_baseline()
