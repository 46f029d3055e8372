"""The FraudDetector-Edge template: component recipe, artifacts as assets, device policy, optional deployment."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from aws_cdk.assertions import Match, Template

from ml_constructs.edge.recipe import SEMVER_PATTERN
from tests.conftest import REPO_ROOT, build_app
from tests.unit.edge.conftest import COMPONENT_TYPE, STACK_NAME, edge_only, render_recipe, synth_edge

ASSET_BUCKET = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"
PROGRAM_DIR = REPO_ROOT / "edge_component"
MODEL_PATH = REPO_ROOT / "artifacts" / "fraud-detector" / "model.onnx"
THING_GROUP_ARN = "arn:aws:iot:eu-west-1:123456789012:thinggroup/fraud-cameras"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def asset_uri(asset: dict) -> str:
    [destination] = asset["destinations"].values()
    return f"s3://{destination['bucketName']}/{destination['objectKey']}"


def object_key(asset: dict) -> str:
    [destination] = asset["destinations"].values()
    return destination["objectKey"]


def test_one_component_named_and_versioned_from_config(edge_template, edge_recipe):
    # GIVEN the default config (component com.example.FraudDetector, version 1.0)
    edge_template.resource_count_is(COMPONENT_TYPE, 1)
    # THEN the recipe names the component and its publisher, and the version is 1.0.<derived patch>
    assert edge_recipe["RecipeFormatVersion"] == "2020-01-25"
    assert edge_recipe["ComponentName"] == "com.example.FraudDetector"
    assert edge_recipe["ComponentPublisher"] == "ml-deploy-patterns"
    version = edge_recipe["ComponentVersion"]
    assert re.fullmatch(SEMVER_PATTERN, version) and version.startswith("1.0.")
    assert int(version.split(".")[2]) < 2**31, "the nucleus parses version numbers as Java ints"
    edge_template.has_output("ComponentVersion", {"Value": version})


def test_artifact_uris_are_the_uploaded_assets(edge_recipe, edge_assets):
    # GIVEN the file assets the CDK CLI uploads for this stack
    program, model = edge_assets["Component/ProgramArtifact"], edge_assets["Component/ModelArtifact"]
    # THEN every manifest downloads exactly those two objects from the bootstrap bucket
    for manifest in edge_recipe["Manifests"]:
        assert [artifact["URI"] for artifact in manifest["Artifacts"]] == [asset_uri(program), asset_uri(model)]
        assert [artifact["Unarchive"] for artifact in manifest["Artifacts"]] == ["ZIP", "NONE"]
    assert asset_uri(program).startswith(f"s3://{ASSET_BUCKET}/")


def test_program_asset_is_exactly_the_edge_component_folder(edge_assembly, edge_assets):
    # GIVEN the zip the CLI uploads as the program artifact
    program = edge_assets["Component/ProgramArtifact"]
    with zipfile.ZipFile(edge_assembly / program["source"]["path"]) as archive:
        names = sorted(archive.namelist())
        # THEN it holds the program modules and requirements.txt at its root, byte for byte, with fixed dates
        expected = sorted(p.relative_to(PROGRAM_DIR).as_posix() for p in PROGRAM_DIR.rglob("*")
                          if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
        assert names == expected and {"main.py", "requirements.txt", "predictor.py", "ipc_bridge.py"} <= set(names)
        assert all(archive.read(name) == (PROGRAM_DIR / name).read_bytes() for name in names)
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    # AND the model asset is the training artifacts' model.onnx
    model = edge_assets["Component/ModelArtifact"]
    assert (edge_assembly / model["source"]["path"]).read_bytes() == MODEL_PATH.read_bytes()


def test_assets_are_published_before_the_stack_deploys(edge_assembly):
    # GIVEN the cloud assembly the CLI deploys from
    manifest = json.loads((edge_assembly / "manifest.json").read_text())
    # THEN the stack depends on its asset manifest: the CLI uploads the artifacts before CloudFormation
    # creates the component version (Greengrass reads them at CreateComponentVersion)
    assert f"{STACK_NAME}.assets" in manifest["artifacts"][STACK_NAME]["dependencies"]


def test_lifecycle_installs_into_a_venv_and_runs_the_program(edge_recipe, edge_assets):
    folder = PurePosixPath(object_key(edge_assets["Component/ProgramArtifact"])).stem
    program = f"{{artifacts:decompressedPath}}/{folder}"
    for manifest in edge_recipe["Manifests"]:
        install, run = manifest["Lifecycle"]["Install"], manifest["Lifecycle"]["Run"]
        # THEN Install creates a venv in the work folder and pip-installs the zip's requirements into it
        venv = re.search(r'python3 -m venv "(\{work:path\}/venv-[0-9a-f]{12})"', install["Script"]).group(1)
        assert f'"{venv}/bin/pip" install' in install["Script"]
        assert f'--requirement "{program}/requirements.txt"' in install["Script"]
        # AND it is skipped once done (the nucleus reruns Install at every start, maybe offline)
        assert install["Script"].endswith(f'touch "{venv}/.installed"')
        assert install["Skipif"] == f"exists {venv}/.installed" and install["Timeout"] >= 600
        # AND Run starts main.py from the unpacked zip with the venv's python in greengrass mode
        assert run["Script"].startswith(f'exec "{venv}/bin/python" -u "{program}/main.py" greengrass ')
        assert not install["RequiresPrivilege"] and not run["RequiresPrivilege"]


def test_run_reads_every_setting_from_the_default_configuration(edge_recipe, edge_assets):
    defaults = edge_recipe["ComponentConfiguration"]["DefaultConfiguration"]
    run = edge_recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"]
    # THEN each {configuration:/key} the Run script uses exists, with the configured values
    used = set(re.findall(r"\{configuration:/(\w+)\}", run))
    assert used == {"modelPath", "modelVersion", "scoreThreshold", "inputTopic", "outputTopic", "errorTopic"}
    assert used <= set(defaults)
    assert defaults["modelPath"] == object_key(edge_assets["Component/ModelArtifact"])
    assert '--artifacts-dir "{artifacts:path}"' in run
    # the built model's version (content-derived: read, never pinned)
    metadata = json.loads((REPO_ROOT / "artifacts" / "fraud-detector" / "metadata.json").read_text())
    assert defaults["modelVersion"] == metadata["model_version"]
    assert defaults["scoreThreshold"] == "0.5"
    assert (defaults["inputTopic"], defaults["outputTopic"], defaults["errorTopic"]) == (
        "fraud-detector/requests", "fraud-detector/predictions", "fraud-detector/errors")


def test_ipc_access_is_limited_to_its_own_topics(edge_recipe):
    defaults = edge_recipe["ComponentConfiguration"]["DefaultConfiguration"]
    policies = defaults["accessControl"]["aws.greengrass.ipc.pubsub"]
    # THEN only pub/sub is granted: subscribe to the input topic, publish to the output and error topics
    assert set(defaults["accessControl"]) == {"aws.greengrass.ipc.pubsub"}
    granted = sorted((op, resource) for policy in policies.values()
                     for op in policy["operations"] for resource in policy["resources"])
    assert granted == [
        ("aws.greengrass#PublishToTopic", defaults["errorTopic"]),
        ("aws.greengrass#PublishToTopic", defaults["outputTopic"]),
        ("aws.greengrass#SubscribeToTopic", defaults["inputTopic"]),
    ]
    assert all(name.startswith("com.example.FraudDetector:pubsub:") for name in policies)


def test_manifests_cover_linux_x86_64_and_aarch64(edge_recipe):
    manifests = edge_recipe["Manifests"]
    # THEN there is one manifest per architecture, identical apart from the platform
    assert [m["Platform"] for m in manifests] == [{"os": "linux", "architecture": "amd64"},
                                                  {"os": "linux", "architecture": "aarch64"}]
    assert manifests[0]["Lifecycle"] == manifests[1]["Lifecycle"]
    assert manifests[0]["Artifacts"] == manifests[1]["Artifacts"]


def test_device_role_may_only_download_the_two_artifacts(edge_template, edge_assets):
    keys = [object_key(edge_assets[name]) for name in ("Component/ProgramArtifact", "Component/ModelArtifact")]
    bucket_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Fn::Sub": ASSET_BUCKET}]]}
    # THEN a managed policy on the configured token exchange role allows exactly these two actions
    [policy] = edge_template.find_resources("AWS::IAM::ManagedPolicy").values()
    [role_id] = edge_template.find_resources("AWS::IAM::Role", {"Properties": {
        "RoleName": "FraudDetector-GreengrassTokenExchange"}})
    assert policy["Properties"]["Roles"] == [{"Ref": role_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [(s["Effect"], s["Action"]) for s in statements] == [("Allow", "s3:GetBucketLocation"),
                                                                ("Allow", "s3:GetObject")]
    assert statements[0]["Resource"] == bucket_arn
    objects = [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Fn::Sub": ASSET_BUCKET}, f"/{key}"]]}
               for key in keys]
    assert sorted(map(json.dumps, statements[1]["Resource"])) == sorted(map(json.dumps, objects))
    assert "*" not in json.dumps(statements)
    # AND nothing else in the stack grants permissions or deploys (the token exchange role's own policy
    # only lets devices write Greengrass logs; see test_token_exchange_role.py)
    edge_template.resource_count_is("AWS::IAM::Policy", 1)
    edge_template.resource_count_is("AWS::IAM::Role", 1)
    edge_template.resource_count_is("AWS::GreengrassV2::Deployment", 0)


@pytest.fixture(scope="module")
def deployed_variant(tmp_path_factory):
    """Same component, deployed to a thing group, with a customer managed bootstrap key."""
    return synth_edge(tmp_path_factory, **{
        "deployment.enabled": True, "deployment.thing_group_arn": THING_GROUP_ARN,
        "deployment.additional_components": [{"name": "aws.greengrass.Cli", "version": "2.12.0"}],
        "bootstrap_key_arn": KEY_ARN})


def test_deployment_targets_the_thing_group_with_this_version(deployed_variant):
    _, template = deployed_variant
    [logical_id] = template.find_resources(COMPONENT_TYPE)
    # THEN one deployment targets the group, pins this component version by GetAtt (so it is created
    # first) and keeps the other listed component; failures roll back
    template.has_resource_properties("AWS::GreengrassV2::Deployment", {
        "TargetArn": THING_GROUP_ARN,
        "DeploymentName": "com.example.FraudDetector",
        "Components": {
            "com.example.FraudDetector": {"ComponentVersion": {"Fn::GetAtt": [logical_id, "ComponentVersion"]}},
            "aws.greengrass.Cli": {"ComponentVersion": "2.12.0"},
        },
        "DeploymentPolicies": {"FailureHandlingPolicy": "ROLLBACK",
                               "ComponentUpdatePolicy": {"Action": "NOTIFY_COMPONENTS", "TimeoutInSeconds": 60}},
    })
    template.has_output("DeploymentId", {})


def test_customer_managed_bootstrap_key_is_granted_through_s3_only(deployed_variant):
    _, template = deployed_variant
    # THEN kms:Decrypt is added on that key, only when called by S3
    template.has_resource_properties("AWS::IAM::ManagedPolicy", {"PolicyDocument": {"Statement": Match.array_with([{
        "Sid": "ArtifactDecrypt", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARN,
        "Condition": {"StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"},
                                                                             ".amazonaws.com"]]}}}}])}})


def test_same_content_keeps_its_version(edge_recipe, deployed_variant):
    # GIVEN a second, independent synth whose recipe inputs are unchanged (only deployment settings differ)
    _, template = deployed_variant
    # THEN the component version is the same: nothing is republished
    assert render_recipe(template)["ComponentVersion"] == edge_recipe["ComponentVersion"]


@pytest.mark.parametrize("change", ["threshold", "topic", "model"])
def test_changed_content_gets_a_new_version(tmp_path_factory, edge_recipe, change):
    # GIVEN a change that alters the recipe or an artifact: the model's threshold (repackaged), a topic, the model
    if change == "threshold":
        from tests.unit.config.conftest import packaged_copy

        folder = packaged_copy(tmp_path_factory.mktemp("repackaged") / "fraud-detector", decision_threshold=0.7)
        overrides = {"deploy.model.artifacts_dir": str(folder)}
    else:
        overrides = {"topic": {"deploy.edge.topics.error": "fraud-detector/rejected"},
                     "model": {"deploy.model.artifacts_dir": "artifacts/fraud-detector-v2",
                               "deploy.model.name": "fraud-detector"}}[change]
    _, stacks = build_app(overrides={**edge_only(), **overrides},
                          outdir=str(tmp_path_factory.mktemp("cdk-out-edge")))
    template = Template.from_stack(stacks["edge"])
    # THEN the component gets another version under the same MAJOR.MINOR
    changed = render_recipe(template)["ComponentVersion"]
    assert changed != edge_recipe["ComponentVersion"] and changed.startswith("1.0.")


