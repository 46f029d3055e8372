"""One convention for ops.traffic, ops.batch and ops.labels (ops/cli.py): exit codes, one-line errors, --help.

    0 ok, 1 the operation ran and failed, 2 usage/config, 3 AWS/credentials/network.

Each command runs as a process (``python -m ops.<name>``) with no AWS credentials or region unless the case
gives them, so no call can leave the machine. Exit 1 needs an operation that ran: those cases are in each
command's own tests (a failed batch run, a wait that gave up, a failed traffic update).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

STATE_MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:fraud-detector-batch"
NO_REGION: dict[str, str] = {}
REGION_ONLY = {"AWS_DEFAULT_REGION": "eu-west-1"}


def run(module: str, argv: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true", **env_extra})
    return subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def labels_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    path.write_text("inference_id,label\ntxn-1,1\n")
    return str(path)


CASES = [
    # module, argv, environment, exit code, what stderr says
    ("ops.traffic", ["status", "--endpoint", "e"], NO_REGION, 3, "error: no AWS region configured"),
    ("ops.traffic", ["status", "--endpoint", "e"], REGION_ONLY, 3, "error: Unable to locate credentials"),
    ("ops.traffic", ["shift", "--endpoint", "e", "--weights", "v1"], NO_REGION, 2, "error: bad weight 'v1'"),
    ("ops.traffic", ["shift", "--endpoint", "e", "--weights", "v1=1", "--poll-interval", "-5"], REGION_ONLY, 2,
     "--poll-interval: must be a number of seconds above 0"),
    ("ops.batch", ["run", "--input", "notanuri"], NO_REGION, 2, "error: --input must be an S3 URI"),
    ("ops.batch", ["run", "--input", "s3://input-bucket/x/", "--state-machine-arn", STATE_MACHINE], NO_REGION, 3,
     "error: no AWS region configured"),
    ("ops.batch", ["run", "--input", "s3://input-bucket/x/", "--state-machine-arn", STATE_MACHINE], REGION_ONLY, 3,
     "Unable to locate credentials"),
    ("ops.batch", ["run", "--input", "s3://input-bucket/x/", "--poll-seconds", "x"], NO_REGION, 2,
     "invalid float value"),
    ("ops.labels", ["format", "--file", "/nonexistent/labels.csv"], NO_REGION, 2, "file not found"),
    ("ops.labels", ["upload", "--file", "{labels}", "--bucket", "s3://not-a-name"], NO_REGION, 2,
     "is not an S3 bucket name"),
    ("ops.labels", ["upload", "--file", "{labels}", "--bucket", "capture-bucket"], REGION_ONLY, 3,
     "error: could not reach S3: Unable to locate credentials"),
]


@pytest.mark.parametrize("module, argv, env, code, says", CASES,
                         ids=[f"{case[0]}-{case[3]}-{index}" for index, case in enumerate(CASES)])
def test_exit_codes_and_error_lines_follow_the_table(labels_csv, module, argv, env, code, says):
    # GIVEN a command line and an environment without credentials (and maybe without a region)
    argv = [labels_csv if arg == "{labels}" else arg for arg in argv]
    # WHEN the command runs as a process
    result = run(module, argv, env)
    # THEN its exit code is the table's, its reason is on stderr, and there is no traceback
    assert result.returncode == code, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    # AND our own errors are exactly one line "error: ..." (argparse's end with its "prog: error: ..." line)
    lines = result.stderr.strip().splitlines()
    if lines[0].startswith("error: "):
        assert len(lines) == 1
    else:
        assert lines[-1].startswith(f"python -m {module}") and ": error: " in lines[-1]


@pytest.mark.parametrize("module, argv", [("ops.traffic", []), ("ops.traffic", ["shift"]), ("ops.batch", []),
                                          ("ops.batch", ["run"]), ("ops.labels", []), ("ops.labels", ["upload"])])
def test_help_exits_0_with_an_example(module, argv):
    result = run(module, [*argv, "--help"], NO_REGION)
    assert result.returncode == 0
    assert f"python -m {module} " in result.stdout.split("example")[-1]


def test_data_commands_offer_json(labels_csv):
    # GIVEN the commands whose output is data  THEN each takes --json
    for module, argv in (("ops.traffic", ["status"]), ("ops.batch", ["run"]), ("ops.labels", ["upload"])):
        assert "--json" in run(module, [*argv, "--help"], NO_REGION).stdout, module


def test_labels_json_is_one_document(labels_csv):
    result = run("ops.labels", ["upload", "--file", labels_csv, "--bucket", "capture-bucket", "--dry-run", "--json",
                                "--time", "2025-01-31T14:00Z"], NO_REGION)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["labels"] == 1 and document["uploaded"] is False
    assert document["uri"].startswith("s3://capture-bucket/monitoring/ground-truth/2025/01/31/14/labels-")
