"""Cold start: the model is read from S3 (the object CDK uploads) or a local path; a bad model fails the init."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import boto3
import numpy as np
import pytest

from ml_constructs.common.model_metadata import ModelMetadata
from ml_constructs.serverless.model_function import model_archive
from tests.moto_aws import mocked_aws
from tests.runtime.serverless.conftest import ARTIFACTS_DIR, HANDLER_ENV, LAMBDA_SRC, METADATA

BUCKET = "cdk-hnb659fds-assets-123456789012-us-east-1"


@pytest.fixture
def model_module(handler_module):
    return sys.modules["serverless_inference.model"]


@pytest.fixture
def deployed_archive(tmp_path):
    """The zip exactly as the stack uploads it (built by the construct's own function)."""
    return model_archive(ModelMetadata.load(ARTIFACTS_DIR), build_dir=tmp_path)


@pytest.fixture
def s3_bucket(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mocked_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_the_uploaded_archive_loads_from_s3(model_module, deployed_archive, s3_bucket):
    # GIVEN the model archive in the asset bucket, named by the function's environment
    s3_bucket.put_object(Bucket=BUCKET, Key="c46f0d9a.zip", Body=deployed_archive.read_bytes())
    environ = {"MODEL_S3_BUCKET": BUCKET, "MODEL_S3_KEY": "c46f0d9a.zip", "MODEL_VERSION": METADATA["model_version"]}
    # WHEN the function initializes
    model = model_module.load_model(environ, s3_client=s3_bucket)
    # THEN it serves the model that the metadata describes
    assert model.model_version == METADATA["model_version"]
    assert model.n_features == len(METADATA["feature_names"])
    assert model.predict(np.zeros((1, model.n_features), dtype=np.float32))[0]["prediction"] in (0, 1)


def test_the_archive_holds_only_the_onnx_model_and_metadata(deployed_archive):
    # GIVEN the uploaded archive  THEN no pickle (joblib) travels to Lambda
    assert sorted(zipfile.ZipFile(deployed_archive).namelist()) == ["metadata.json", "model.onnx"]


def test_a_zip_path_works_as_the_local_override(model_module, deployed_archive):
    model = model_module.load_model({"MODEL_LOCAL_PATH": str(deployed_archive)})
    assert model.model_version == METADATA["model_version"]


@pytest.mark.parametrize("environ, message", [
    ({}, "no model configured"),
    ({"MODEL_LOCAL_PATH": "/nonexistent/model"}, "cannot load the model from /nonexistent/model"),
    ({"MODEL_LOCAL_PATH": str(ARTIFACTS_DIR), "MODEL_VERSION": "v9-other"}, "deployed for 'v9-other'"),
])
def test_unloadable_models_raise_a_clear_error(model_module, environ, message):
    with pytest.raises(model_module.ModelLoadError, match=message):
        model_module.load_model(environ)


def test_a_missing_s3_object_names_its_location(model_module, s3_bucket):
    environ = {"MODEL_S3_BUCKET": BUCKET, "MODEL_S3_KEY": "gone.zip"}
    with pytest.raises(model_module.ModelLoadError, match=f"s3://{BUCKET}/gone.zip: .*NoSuchKey"):
        model_module.load_model(environ, s3_client=s3_bucket)


def test_metadata_that_disagrees_with_the_graph_is_refused(model_module, tmp_path):
    # GIVEN metadata claiming 13 features for a 12-feature ONNX graph
    metadata = {**METADATA, "feature_names": [*METADATA["feature_names"], "extra"]}
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    (tmp_path / "model.onnx").write_bytes((ARTIFACTS_DIR / "model.onnx").read_bytes())
    with pytest.raises(model_module.ModelLoadError, match="takes 12 features, metadata lists 13"):
        model_module.load_model({"MODEL_LOCAL_PATH": str(tmp_path)})


def test_the_init_fails_with_one_clear_log_line_when_the_model_cannot_load(tmp_path):
    # GIVEN a fresh Python process (a Lambda cold start) whose model path does not exist
    env = {**os.environ, **HANDLER_ENV, "MODEL_LOCAL_PATH": str(tmp_path / "missing")}
    # WHEN the handler module is imported (Lambda's INIT phase)
    result = subprocess.run([sys.executable, "-c", "import handler"], cwd=LAMBDA_SRC, env=env, capture_output=True,
                            text=True, timeout=120)
    # THEN the init fails, and the structured log says why
    assert result.returncode != 0
    errors = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    errors = [line for line in errors if line.get("level") == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["message"].startswith(f"init failed: cannot load the model from {tmp_path / 'missing'}")
    assert "ModelLoadError" in result.stderr


def test_tracing_is_built_only_inside_lambda(handler_module):
    tracing = sys.modules["serverless_inference.tracing"]
    # GIVEN no Lambda environment  THEN the handler runs with identity decorators (no X-Ray SDK import)
    assert isinstance(handler_module.tracer, tracing.NoTracer)
    assert tracing.tracing_active({"LAMBDA_TASK_ROOT": "/var/task"})
    assert not tracing.tracing_active({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"})
    assert not tracing.tracing_active({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"})
    assert not tracing.tracing_active({})
