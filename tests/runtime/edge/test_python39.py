"""The component under Python 3.9, the oldest Python the README promises on core devices.

Runs a separate 3.9 interpreter: ``$EDGE_PYTHON39`` if set, else ``python3.9`` on PATH, else a pyenv 3.9 install
(pyenv's ``python3.9`` shim is on PATH but fails unless 3.9 is the selected version). Which checks run depends
on what that interpreter has installed:

* always: every ``edge_component/*.py`` compiled by the 3.9 parser; ``standalone.py`` and ``ipc_bridge.py``
  imported and exercised (with a two-class stand-in for ``awsiot.greengrasscoreipc.model`` when awsiotsdk is
  missing), so 3.10-only calls made at import or message time (e.g. ``dataclass(kw_only=True)``) fail here;
* with numpy and onnxruntime importable: ``predictor.py`` and ``main.py`` imported too, and ``main.py standalone``
  scores the sample rows, matching the same program on the test interpreter.

To run everything, point ``EDGE_PYTHON39`` at a 3.9 virtual environment with ``edge_component/requirements.txt``
installed (what the component's Install step builds on a device).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime.edge.conftest import ARTIFACTS_DIR, MODEL_PATH, PROGRAM_DIR

DEVICE_PYTHON = (3, 9)
TIMEOUT_S = 120
SAMPLE_ROWS = ARTIFACTS_DIR / "samples" / "rows.jsonl"
PARITY_ATOL = 1e-5

# Runs under the 3.9 interpreter with the program folder as argv[1]; prints a JSON report as its last line.
CHECK_SCRIPT = r'''
import importlib, json, pathlib, sys, types

program_dir = pathlib.Path(sys.argv[1])
sys.path.insert(0, str(program_dir))
report = {"compiled": [], "imported": [], "stubbed": []}
for path in sorted(program_dir.glob("*.py")):
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
    report["compiled"].append(path.name)


def importable(name):
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


if not importable("awsiot.greengrasscoreipc.model"):
    class _Message:
        def __init__(self, **fields):
            self.__dict__.update(fields)

    stub = types.ModuleType("awsiot.greengrasscoreipc.model")
    stub.JsonMessage = stub.PublishMessage = _Message
    for name in ("awsiot", "awsiot.greengrasscoreipc"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules[stub.__name__] = stub
    report["stubbed"].append("awsiot")

import standalone
import ipc_bridge
report["imported"] += ["standalone", "ipc_bridge"]


class Client:
    def __init__(self):
        self.published = []

    def subscribe_to_topic(self, **kwargs):
        self.subscribed = kwargs

    def publish_to_topic(self, *, topic=None, publish_message=None):
        self.published.append((topic, publish_message.json_message.message))


class Outcome:
    def __init__(self, ok, body):
        self.ok, self.body = ok, body


client = Client()
bridge = ipc_bridge.IpcBridge(client, lambda payload: Outcome("features" in payload, {"echo": payload}),
                              topics=ipc_bridge.Topics(input="in", output="out", error="err"))
bridge.start()
for payload in ({"features": [1]}, {"other": 1}):
    bridge.on_message(types.SimpleNamespace(json_message=types.SimpleNamespace(message=payload)))
report["bridge_published"] = client.published

lines = []
class Sink:
    write = lines.append
    def flush(self):
        pass
report["standalone_counts"] = list(standalone.score_lines(lambda line: Outcome(True, {"line": line.strip()}),
                                                          ["a\n", " \n", "b\n"], Sink()))

report["model_runtime"] = importable("numpy") and importable("onnxruntime")
if report["model_runtime"]:
    import predictor
    import main
    report["imported"] += ["predictor", "main"]
report["version"] = list(sys.version_info[:2])
print(json.dumps(report))
'''


def _probe(candidate: str) -> bool:
    try:
        result = subprocess.run([candidate, "-c", "import sys; print(tuple(sys.version_info[:2]))"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == str(DEVICE_PYTHON)


def _find_python39() -> str | None:
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [os.environ.get("EDGE_PYTHON39"), shutil.which("python3.9"),
                  *sorted(str(path) for path in pyenv_root.glob("versions/3.9*/bin/python3.9"))]
    return next((candidate for candidate in candidates if candidate and _probe(candidate)), None)


@pytest.fixture(scope="module")
def python39() -> str:
    interpreter = _find_python39()
    if interpreter is None:
        pytest.skip("no working Python 3.9 interpreter (EDGE_PYTHON39, python3.9 on PATH or a pyenv 3.9 install)")
    return interpreter


@pytest.fixture(scope="module")
def report39(python39) -> dict:
    result = subprocess.run([python39, "-B", "-c", CHECK_SCRIPT, str(PROGRAM_DIR)], capture_output=True, text=True,
                            timeout=TIMEOUT_S, cwd=PROGRAM_DIR)
    assert result.returncode == 0, f"the program's modules fail under {python39}:\n{result.stderr}"
    return json.loads(result.stdout.splitlines()[-1])


def test_every_module_compiles_and_runs_on_python39(report39):
    # GIVEN the component's modules run by a Python 3.9 interpreter
    # THEN all of them compile, and the modules that need no model runtime import and do their job
    assert report39["version"] == list(DEVICE_PYTHON)
    assert report39["compiled"] == sorted(path.name for path in PROGRAM_DIR.glob("*.py"))
    assert {"standalone", "ipc_bridge"} <= set(report39["imported"])
    assert report39["bridge_published"] == [["out", {"echo": {"features": [1]}}], ["err", {"echo": {"other": 1}}]]
    assert report39["standalone_counts"] == [2, 0]
    # AND predictor/main import too wherever numpy and onnxruntime are installed
    if report39["model_runtime"]:
        assert {"predictor", "main"} <= set(report39["imported"])


def test_standalone_prediction_on_python39(python39, report39, predictor):
    if not report39["model_runtime"]:
        pytest.skip(f"{python39} has no numpy/onnxruntime, so predictor.py and main.py were only compiled there; "
                    "set EDGE_PYTHON39 to a 3.9 venv with edge_component/requirements.txt installed")
    # GIVEN the sample rows and a line whose finite extremes make the model return NaN
    rows = [line for line in SAMPLE_ROWS.read_text().splitlines() if line.strip()]
    stdin = "\n".join([*rows, json.dumps({"id": "extreme", "features": [3e38] * 12})]) + "\n"
    # WHEN main.py scores them standalone under Python 3.9
    result = subprocess.run([python39, "-B", str(PROGRAM_DIR / "main.py"), "standalone", "--model", str(MODEL_PATH),
                             "--model-version", "v1-test"], input=stdin, capture_output=True, text=True,
                            timeout=TIMEOUT_S, cwd=PROGRAM_DIR)
    # THEN it answers every line as the program does on the test interpreter
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [predictor.handle(line).body for line in stdin.splitlines()]
    assert len(answers) == len(expected) == len(rows) + 1
    for answer, reference in zip(answers, expected):
        assert answer.keys() == reference.keys()
        if "error" in reference:
            assert answer["error"] == reference["error"] and "non-finite score" in answer["error"]
        else:
            assert answer["prediction"] == reference["prediction"]
            assert answer["confidence"] == pytest.approx(reference["confidence"], abs=PARITY_ATOL)
