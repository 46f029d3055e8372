"""The Lambda package, bundled for real with pip (no Docker): what goes in, its size, and that it runs.

The first run installs the pinned wheels into ``~/.cache/ml-deploy-patterns/lambda-deps/`` (about 30 s per architecture with a
warm pip cache); later runs copy from there.
"""
from __future__ import annotations

import importlib.metadata
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import aws_cdk as cdk
import pytest

from ml_constructs.common import lambda_bundling
from ml_constructs.common.lambda_bundling import (
    LambdaPackageSpec, LocalPipBundling, find_interpreter, host_architecture)
from ml_constructs.common.secure_storage import DataKey
from ml_constructs.serverless.model_function import LambdaModelFunction

REPO_ROOT = Path(__file__).resolve().parents[3]
LAMBDA_SRC = REPO_ROOT / "lambda_src"
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
RUNTIME_SIM_DIR = REPO_ROOT / ".build" / "lambda-runtime-sim"
MAX_ZIP_MB = 40
LAMBDA_UNZIPPED_LIMIT_MB = 250
#: ELF e_machine values: what the shared libraries were compiled for.
ELF_MACHINE = {"x86_64": 62, "arm64": 183}
NATIVE_DISTRIBUTIONS = ("onnxruntime", "numpy", "pydantic_core", "wrapt")
PINNED = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (LAMBDA_SRC / "requirements.txt").read_text(), re.M))


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def distribution(dist_info: Path) -> tuple[str, str]:
    """``numpy-2.5.5.dist-info`` -> ``("numpy", "2.5.5")``."""
    name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
    return normalize(name), version


@pytest.fixture(scope="module", params=["arm64", "x86_64"])
def package(request, tmp_path_factory) -> tuple[str, Path]:
    """The package as CDK's local bundling produces it, for each architecture."""
    architecture = request.param
    output = tmp_path_factory.mktemp(f"bundle-{architecture}")
    bundled = LocalPipBundling(LambdaPackageSpec(source_dir=LAMBDA_SRC, architecture=architecture)).try_bundle(
        str(output))
    # THEN local bundling reports success, so CDK never falls back to Docker
    assert bundled is True
    return architecture, output


def zipped_size(folder: Path) -> int:
    """An upper bound on the size of the zip CDK uploads: deflate at its fastest level (30.0 MiB in 1.2 s for the
    x86_64 package, against 27.5 MiB in 3.2 s at zlib's default level 6; CDK deflates harder still)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.tell()


def test_every_pinned_requirement_is_installed_at_its_version(package):
    _, folder = package
    installed = dict(distribution(path) for path in folder.glob("*.dist-info"))
    assert installed == {normalize(name): version for name, version in PINNED.items()}


def test_wheels_are_for_cpython_312_on_the_function_architecture(package):
    # GIVEN each installed distribution's WHEEL file
    architecture, folder = package
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    other = {"arm64": "x86_64", "x86_64": "aarch64"}[architecture]
    tags = {distribution(wheel.parent)[0]: re.findall(r"^Tag: (\S+)$", wheel.read_text(), re.M)
            for wheel in folder.glob("*.dist-info/WHEEL")}
    assert set(NATIVE_DISTRIBUTIONS) <= set(tags)
    for name, wheel_tags in tags.items():
        assert wheel_tags, f"{name} has no Tag lines"
        if name in NATIVE_DISTRIBUTIONS:
            # THEN compiled wheels target manylinux on this architecture, for CPython 3.12 (or the stable ABI)
            assert all(machine in tag and "manylinux" in tag and other not in tag for tag in wheel_tags), wheel_tags
            assert all(tag.startswith("cp312-cp312-") or "-abi3-" in tag for tag in wheel_tags), wheel_tags
        else:
            assert all(tag.endswith("-none-any") for tag in wheel_tags), (name, wheel_tags)


def test_shared_libraries_are_compiled_for_the_function_architecture(package):
    architecture, folder = package
    libraries = [path for path in folder.rglob("*.so*") if path.is_file()]
    assert any("onnxruntime_pybind11_state" in path.name for path in libraries)
    machines = {int.from_bytes(path.read_bytes()[18:20], "little") for path in libraries
                if path.read_bytes()[:4] == b"\x7fELF"}
    assert machines == {ELF_MACHINE[architecture]}


def test_no_locally_compiled_bytecode_by_default(package):
    _, folder = package
    # THEN the package has no .pyc files: its bytes do not depend on which Pythons the build machine has
    assert not list(folder.rglob("*.pyc"))
    assert not [path for path in folder.rglob("__pycache__")]
    assert LambdaPackageSpec(source_dir=LAMBDA_SRC).bytecode_tag == "none"


def test_opt_in_bytecode_is_only_for_the_runtimes_python(tmp_path, monkeypatch):
    # GIVEN bytecode switched on, on a machine with a CPython 3.12 (skipped where there is none), and an
    # already installed dependency folder (installing the real wheels again is covered above)
    if not find_interpreter("3.12"):
        pytest.skip("no CPython 3.12 here: opt-in bytecode is compiled only by the runtime's minor version")
    dependencies = tmp_path / "deps"
    (dependencies / "dependency").mkdir(parents=True)
    (dependencies / "dependency" / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(lambda_bundling, "install_dependencies", lambda spec: dependencies)
    spec = LambdaPackageSpec(source_dir=LAMBDA_SRC, architecture="x86_64", compile_bytecode=True)
    # WHEN bundled
    output = tmp_path / "out"
    LocalPipBundling(spec).try_bundle(str(output))
    compiled = list(output.rglob("*.pyc"))
    # THEN the function's sources ship 3.12 bytecode, in __pycache__ only, and the hash names the release
    assert compiled and all(path.parent.name == "__pycache__" and path.name.endswith(".cpython-312.pyc")
                            for path in compiled)
    assert (output / "serverless_inference" / "__pycache__" / "api.cpython-312.pyc").is_file()
    assert re.fullmatch(r"cpython-3\.12\.\d+", spec.bytecode_tag)


def test_package_is_the_handler_plus_runtime_dependencies_only(package):
    _, folder = package
    assert (folder / "handler.py").read_bytes() == (LAMBDA_SRC / "handler.py").read_bytes()
    top_level = {path.name for path in folder.iterdir()}
    # THEN no scikit-learn/scipy/pickle stack, no boto3 (the runtime has it), no tests, tools or console scripts
    assert not top_level & {"sklearn", "scipy", "joblib", "boto3", "botocore", "bin"}
    assert not [path for path in folder.rglob("tests") if path.is_dir()]
    assert not (folder / "onnxruntime" / "tools").exists()
    assert not list((folder / "onnxruntime" / "capi").glob("libonnxruntime.so*"))


def test_package_zips_under_40_mb(package):
    architecture, folder = package
    unzipped = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    zipped = zipped_size(folder)
    print(f"{architecture}: {zipped / 2**20:.1f} MiB zipped, {unzipped / 2**20:.1f} MiB unzipped")
    assert zipped < MAX_ZIP_MB * 2**20
    assert unzipped < LAMBDA_UNZIPPED_LIMIT_MB * 2**20


def runtime_sim(interpreter: str) -> Path:
    """boto3 for CPython 3.12 in a folder of its own: what the Lambda runtime adds to the package's path."""
    version = importlib.metadata.version("boto3")
    target = RUNTIME_SIM_DIR / f"boto3-{version}-py312"
    if not target.is_dir():
        staging = target.with_name(target.name + f".{os.getpid()}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--only-binary=:all:", "--python-version",
                        "3.12", "--implementation", "cp", "--target", str(staging), f"boto3=={version}"],
                       check=True, capture_output=True, timeout=600)
        staging.rename(target)
    return target


SMOKE = r"""
import json, os, sys, time
bundle, runtime = sys.argv[1], sys.argv[2]
sys.path[:0] = [bundle, runtime]
started = time.perf_counter()
import handler
init_ms = (time.perf_counter() - started) * 1000
import numpy, onnxruntime, pydantic
class Context:
    function_name, function_version, memory_limit_in_mb = "smoke", "1", 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:smoke:live"
    aws_request_id = "smoke-1"
    def get_remaining_time_in_millis(self): return 30000
event = json.loads(sys.stdin.read())
response = handler.lambda_handler(event, Context())
print("RESULT " + json.dumps({
    "response": response, "python": list(sys.version_info[:2]), "init_ms": init_ms,
    "tracer": type(handler.tracer).__name__,
    "origins": {m.__name__: m.__file__ for m in (numpy, onnxruntime, pydantic)},
    "versions": {"numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__}}))
"""


def test_bundle_imports_and_predicts_on_python_312(package):
    # GIVEN a bundle for this machine's architecture and a local CPython 3.12 (Lambda's runtime version)
    architecture, folder = package
    interpreter = find_interpreter("3.12")
    if interpreter is None:
        pytest.skip("no CPython 3.12 on this machine (python3.12 on PATH or a pyenv 3.12.x)")
    if architecture != host_architecture():
        pytest.skip(f"this machine cannot run {architecture} code")
    event = {"resource": "/predict", "path": "/predict", "httpMethod": "POST", "isBase64Encoded": False,
             "requestContext": {"requestId": "smoke-request"},
             "body": (ARTIFACTS_DIR / "samples" / "request.json").read_text()}
    env = {"PATH": os.environ.get("PATH", ""), "MODEL_LOCAL_PATH": str(ARTIFACTS_DIR),
           "POWERTOOLS_SERVICE_NAME": "smoke", "POWERTOOLS_METRICS_NAMESPACE": "Smoke",
           # Inside Lambda: the real Powertools Tracer (bundled aws-xray-sdk + wrapt) patches botocore
           "LAMBDA_TASK_ROOT": str(folder), "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
           "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000", "AWS_REGION": "us-east-1",
           "_X_AMZN_TRACE_ID": "Root=1-6650f0e1-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0"}
    # WHEN the handler is imported from the bundle in an isolated CPython 3.12 (no site-packages) and invoked
    result = subprocess.run([interpreter, "-I", "-S", "-c", SMOKE, str(folder), str(runtime_sim(interpreter))],
                            input=json.dumps(event), capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])
    # THEN it predicts every row, with the bundle's own numpy/onnxruntime, on Python 3.12, traced
    assert report["python"] == [3, 12]
    assert all(path.startswith(str(folder)) for path in report["origins"].values()), report["origins"]
    assert report["versions"] == {"numpy": PINNED["numpy"], "onnxruntime": PINNED["onnxruntime"]}
    assert report["tracer"] == "Tracer"
    assert report["response"]["statusCode"] == 200
    assert len(json.loads(report["response"]["body"])["predictions"]) == 5


def synth_function_stack(outdir: Path) -> str:
    """A stack with just the prediction function, bundled for real; returns the code asset's S3 key."""
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "BundlingProbe")
    LambdaModelFunction(stack, "Model", artifacts_dir=ARTIFACTS_DIR, service_name="probe",
                        encryption_key=DataKey(stack, "Key", description="probe").key)
    assembly = app.synth()
    template = json.loads((Path(assembly.directory) / "BundlingProbe.template.json").read_text())
    (code_key,) = [resource["Properties"]["Code"]["S3Key"] for resource in template["Resources"].values()
                   if resource["Type"] == "AWS::Lambda::Function"]
    return code_key


def test_cdk_bundles_once_and_keeps_the_asset_hash_across_synths(tmp_path, monkeypatch):
    # GIVEN a counter on the bundling step CDK calls back into
    calls = []
    real_build = lambda_bundling.build_package
    monkeypatch.setattr(lambda_bundling, "build_package", lambda spec, out: (calls.append(out), real_build(spec, out)))
    # WHEN the same app is synthesized twice into one cdk.out (CDK's in-process cache cleared in between)
    first = synth_function_stack(tmp_path / "cdk.out")
    cdk.AssetStaging.clear_asset_hash_cache()
    second = synth_function_stack(tmp_path / "cdk.out")
    # THEN the asset hash does not change, and the second synth reuses the staged bundle
    assert first == second
    assert len(calls) == 1
    staged = tmp_path / "cdk.out" / f"asset.{first.removesuffix('.zip')}"
    assert (staged / "handler.py").is_file() and (staged / "onnxruntime").is_dir()
    # AND a fresh cdk.out gets the same hash (it is computed from the inputs, not the output)
    cdk.AssetStaging.clear_asset_hash_cache()
    assert synth_function_stack(tmp_path / "other.out") == first


def test_a_pip_failure_fails_the_synth_and_never_tries_docker(tmp_path):
    # GIVEN a function whose requirements pip cannot install
    source = tmp_path / "src"
    source.mkdir()
    (source / "handler.py").write_text("def lambda_handler(event, context):\n    return event\n")
    (source / "requirements.txt").write_text("this is not a requirement line!\n")
    spec = LambdaPackageSpec(source_dir=source, architecture="arm64", cache_dir=tmp_path / "cache")
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "Broken")
    # WHEN the function's code is staged (CDK bundles when the asset is created)
    with pytest.raises(RuntimeError) as caught:
        cdk.aws_lambda.Function(stack, "Function", runtime=cdk.aws_lambda.Runtime.PYTHON_3_12,
                                handler="handler.lambda_handler", code=lambda_bundling.lambda_code(spec))
    # THEN the error is pip's, naming the platform it was asked for; Docker is never run
    message = str(caught.value)
    assert "pip could not install" in message and "manylinux_2_28_aarch64" in message
    assert "docker" not in message.lower()


def test_asset_hash_follows_sources_requirements_and_bytecode(tmp_path, monkeypatch):
    # GIVEN a copy of lambda_src
    source = tmp_path / "src"
    source.mkdir()
    for path in LAMBDA_SRC.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            (source / path.relative_to(LAMBDA_SRC)).parent.mkdir(parents=True, exist_ok=True)
            (source / path.relative_to(LAMBDA_SRC)).write_bytes(path.read_bytes())
    spec = LambdaPackageSpec(source_dir=source, architecture="arm64", compile_bytecode=True)
    without_bytecode = LambdaPackageSpec(source_dir=source, architecture="arm64")
    hashes = {}
    # WHEN bytecode is switched on and the machine has CPython 3.12.1, 3.12.9, or no 3.12 at all
    for release in ("3.12.1", "3.12.9", None):
        monkeypatch.setattr(lambda_bundling, "probe_interpreter",
                            lambda version, release=release: (f"/opt/python{release}", release) if release else None)
        hashes[release] = spec.asset_hash()
    # THEN each package with different .pyc bytes (none, or another compiler release) has its own hash
    assert len(set(hashes.values())) == 3
    # AND the default (no bytecode) gives the bytes, and so the hash, of a machine without CPython 3.12,
    # on every machine
    assert without_bytecode.asset_hash() == hashes[None]
    monkeypatch.setattr(lambda_bundling, "probe_interpreter", lambda version: ("/opt/python", "3.12.1"))
    assert without_bytecode.asset_hash() == hashes[None]
    assert spec.asset_hash() != LambdaPackageSpec(source_dir=source, architecture="x86_64").asset_hash()
    # AND any source change changes it, and so does a requirement change
    before = spec.asset_hash()
    (source / "handler.py").write_text((source / "handler.py").read_text() + "\n# changed\n")
    after_source = spec.asset_hash()
    (source / "requirements.txt").write_text((source / "requirements.txt").read_text().replace(
        "numpy==", "numpy>="))
    assert len({before, after_source, spec.asset_hash()}) == 3


@pytest.mark.parametrize("selected", [[], ["Other"]], ids=["cdk-ls", "synth-exclusively-another-stack"])
def test_stacks_the_cli_did_not_select_are_not_bundled(tmp_path, monkeypatch, selected):
    # GIVEN the bundling-stacks context the CLI passes: [] for `cdk ls`, [name] for `cdk synth -e name`
    def refuse(spec, output_dir):
        raise AssertionError("the Lambda package was bundled")

    monkeypatch.setattr(lambda_bundling, "build_package", refuse)
    app = cdk.App(outdir=str(tmp_path / "cdk.out"), context={"aws:cdk:bundling-stacks": selected})
    stack = cdk.Stack(app, "Serverless")
    cdk.Stack(app, "Other")
    # WHEN a stack with the Lambda package is synthesized
    cdk.aws_lambda.Function(stack, "Function", runtime=cdk.aws_lambda.Runtime.PYTHON_3_12,
                            handler="handler.lambda_handler",
                            code=lambda_bundling.lambda_code(LambdaPackageSpec(source_dir=LAMBDA_SRC)))
    assembly = app.synth()
    # THEN nothing was bundled, and the template still names the package by its (input-derived) hash
    template = json.loads((Path(assembly.directory) / "Serverless.template.json").read_text())
    [code] = [resource["Properties"]["Code"] for resource in template["Resources"].values()
              if resource["Type"] == "AWS::Lambda::Function"]
    assert re.fullmatch(r"[0-9a-f]{64}\.zip", code["S3Key"])
