"""One normalized CloudFormation snapshot per stack: reviewers see the real template diff.

Update after an intended change with ``UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/snapshot``.
A mismatch fails with a unified diff of the changed lines (see :mod:`tests.snapshot.normalize` for what
is normalized and how embedded JSON is laid out).
"""
from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from tests.context import WITH_CANDIDATE

from tests.snapshot.normalize import MAX_LINE, normalize

SNAPSHOT_DIR = Path(__file__).parent / "__snapshots__"
DIFF_CONTEXT_LINES = 3


def snapshot_diff(expected: str, actual: str, name: str) -> str:
    """The unified diff from the stored snapshot to the template (empty when they are equal)."""
    return "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                        fromfile=f"{name} (snapshot)", tofile=f"{name} (template)",
                                        n=DIFF_CONTEXT_LINES))


def test_normalize_replaces_hashes_inside_intrinsics():
    # GIVEN an asset key embedded in an Fn::Join and a Fn::Sub
    digest = "a" * 64
    template = {"Key": {"Fn::Join": ["", [f"{digest}.zip"]]}, "Sub": {"Fn::Sub": f"cdk-${{Q}}-{digest}"}}
    # WHEN normalized  THEN no hash survives
    assert digest not in normalize(template)
    assert normalize(template).count("<ASSET_HASH>") == 2


def test_normalize_replaces_every_content_derived_value():
    # GIVEN values that follow the model's bytes and the build's inputs: a model version, a Lambda
    # version's logical id, an API deployment's, a requirements-keyed folder and a derived component version
    recipe = {"ComponentName": "c", "ComponentVersion": "1.0.934868924", "Script": "venv-a4a9322c229e/bin/python"}
    template = {"Resources": {
        "FnCurrentVersionC505DFBFf6e6ff0746c6510f6119ca3bd3f09c74": {"Type": "AWS::Lambda::Version"},
        "ApiDeploymentFE1E728211ee782a5e4c20f0865c7e35215e3163": {"Type": "AWS::ApiGateway::Deployment"},
        "Component": {"Type": "AWS::GreengrassV2::ComponentVersion",
                      "Properties": {"InlineRecipe": json.dumps(recipe)}}},
        "Outputs": {"Version": {"Value": "v1-1a9a77bb35cd"}, "Component": {"Value": "1.0.934868924"}}}
    # WHEN normalized
    text = normalize(template)
    # THEN none of them survives, and the stable parts (construct path hash, version prefix) do
    for value in ("1a9a77bb35cd", "f6e6ff0746c6510f6119ca3bd3f09c74", "728211ee782a5e4c20f0865c7e35215e3163",
                  "934868924", "a4a9322c229e"):
        assert value not in text
    assert "FnCurrentVersionC505DFBF<CONTENT_HASH>" in text and "ApiDeploymentFE1E7282<CONTENT_HASH>" in text
    assert '"v1-<MODEL_HASH>"' in text and '"1.0.<CONTENT_VERSION>"' in text and "venv-<REQUIREMENTS_HASH>" in text
    # AND a template whose only difference is those values gives the same snapshot
    other = json.loads(json.dumps(template).replace("1a9a77bb35cd", "1299f77ab446")
                       .replace("f6e6ff0746c6510f6119ca3bd3f09c74", "0" * 32).replace("934868924", "12345"))
    assert normalize(other) == text


def test_a_one_word_change_in_embedded_json_is_a_one_line_diff():
    # GIVEN a state machine definition built with Fn::Join (JSON with intrinsics between its pieces)
    def definition(state_type: str) -> dict:
        return {"Resources": {"Machine": {"Properties": {"DefinitionString": {"Fn::Join": ["", [
            '{"StartAt":"Run","States":{"Run":{"Type":"' + state_type + '","Resource":"arn:',
            {"Ref": "AWS::Partition"}, ':states:::sagemaker:createTransformJob.sync","Next":"Done"},'
            '"Done":{"Type":"Succeed"}}}']]}}}}}
    # WHEN one word changes
    diff = snapshot_diff(normalize(definition("Task")), normalize(definition("Pass")), "Machine")
    # THEN the diff removes one line and adds one line, and the intrinsic is shown in place
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert len(changed) == 2
    assert changed[0].startswith("-") and changed[0].endswith('\\"Type\\": \\"Task\\"",')
    assert changed[1] == "+" + changed[0][1:].replace("Task", "Pass")
    assert "arn:«Ref AWS::Partition»:states:::sagemaker" in normalize(definition("Task"))


def test_long_strings_are_cut_into_short_lines():
    # GIVEN a long shell script (as in a Greengrass lifecycle) with no JSON in it, and one with an asset
    # hash where a cut would fall
    script = " && ".join(f"step-{n} --flag value" for n in range(40))
    digest = "b" * 64
    with_hash = "x" * (MAX_LINE - 30) + digest + "/requirements.txt" + " y" * 40
    # WHEN normalized  THEN no line is much longer than the limit, and the pieces join back to the script
    text = normalize({"Script": script, "Other": with_hash})
    assert max(len(line) for line in text.splitlines()) <= MAX_LINE + 20
    assert "".join(json.loads(text)["Script"]["<long string>"]) == script
    # AND the hash was replaced before the cut, so no part of it is left
    assert "bbbbbbbb" not in text and "<ASSET_HASH>/requirements.txt" in "".join(json.loads(text)["Other"]["<long string>"])


def _check_snapshots(templates: dict[str, dict], names: dict[str, str]) -> None:
    update = os.environ.get("UPDATE_SNAPSHOTS") == "1"
    mismatches = []
    for pattern, template in templates.items():
        path = SNAPSHOT_DIR / f"{names[pattern]}.json"
        actual = normalize(template)
        if update:
            SNAPSHOT_DIR.mkdir(exist_ok=True)
            path.write_text(actual, encoding="utf-8")
        elif not path.exists():
            mismatches.append(f"{path.name}: no snapshot (create it with UPDATE_SNAPSHOTS=1)")
        else:
            diff = snapshot_diff(path.read_text(encoding="utf-8"), actual, path.name)
            if diff:
                mismatches.append(f"{path.name}: template changed (review, then UPDATE_SNAPSHOTS=1):\n{diff}")
    if mismatches:
        pytest.fail("\n".join(mismatches), pytrace=False)


def test_stack_matches_snapshot(default_app, default_templates):
    _, stacks = default_app
    _check_snapshots({pattern: template.to_json() for pattern, template in default_templates.items()},
                     {pattern: stacks[pattern].stack_name for pattern in default_templates})


#: Non-default shapes reviewers should see change too: one snapshot each, of the one stack the key changes.
MODE_SNAPSHOTS = {
    "realtime-serverless": ("realtime", {"deploy.realtime.mode": "serverless"}),
    "realtime-async": ("realtime", {"deploy.realtime.mode": "async"}),
    "realtime-shadow": ("realtime", {"deploy.realtime.rollout": "shadow", **WITH_CANDIDATE}),
    "serverless-snapstart": ("serverless", {"deploy.serverless.warm": "snapstart"}),
}


@pytest.mark.parametrize("name", sorted(MODE_SNAPSHOTS))
def test_non_default_mode_matches_snapshot(name, tmp_path):
    from aws_cdk.assertions import Template

    from tests.conftest import build_app

    pattern, overrides = MODE_SNAPSHOTS[name]
    only = {f"deploy.{other}.enabled": False for other in ("realtime", "batch", "edge", "serverless") if other != pattern}
    _, stacks = build_app(overrides={**overrides, **only}, outdir=str(tmp_path))
    _check_snapshots({pattern: Template.from_stack(stacks[pattern]).to_json()},
                     {pattern: f"{stacks[pattern].stack_name}.{name}"})
