"""One hash-normalized CloudFormation snapshot per stack: reviewers see the real template diff.

Update after an intended change with ``UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/snapshot``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

SNAPSHOT_DIR = Path(__file__).parent / "__snapshots__"
ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def normalize(template: dict) -> str:
    """Pretty JSON with every 64-hex asset hash replaced, wherever it appears (keys, Fn::Sub, Fn::Join)."""
    return ASSET_HASH.sub("<ASSET_HASH>", json.dumps(template, indent=2, sort_keys=True)) + "\n"


def test_normalize_replaces_hashes_inside_intrinsics():
    # GIVEN an asset key embedded in an Fn::Join and a Fn::Sub
    digest = "a" * 64
    template = {"Key": {"Fn::Join": ["", [f"{digest}.zip"]]}, "Sub": {"Fn::Sub": f"cdk-${{Q}}-{digest}"}}
    # WHEN normalized  THEN no hash survives
    assert digest not in normalize(template)
    assert normalize(template).count("<ASSET_HASH>") == 2


def test_stack_matches_snapshot(default_app, default_templates):
    _, stacks = default_app
    update = os.environ.get("UPDATE_SNAPSHOTS") == "1"
    mismatches = []
    for pattern, template in default_templates.items():
        path = SNAPSHOT_DIR / f"{stacks[pattern].stack_name}.json"
        actual = normalize(template.to_json())
        if update:
            SNAPSHOT_DIR.mkdir(exist_ok=True)
            path.write_text(actual)
        elif not path.exists():
            mismatches.append(f"{path.name}: no snapshot (create it with UPDATE_SNAPSHOTS=1)")
        elif path.read_text() != actual:
            mismatches.append(f"{path.name}: template changed (review, then UPDATE_SNAPSHOTS=1)")
    if mismatches:
        pytest.fail("\n".join(mismatches))
