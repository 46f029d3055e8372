"""Fixtures for the runtime code: inference.py loaded by path, the real model, the local server."""
from __future__ import annotations

import http.client
import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import joblib
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
INFERENCE_PATH = REPO_ROOT / "inference" / "inference.py"
#: Both the in-process model and the test server run with a 1 MiB payload limit so "too large" is cheap to hit.
MAX_PAYLOAD_MB = "1"
SERVER_START_TIMEOUT_S = 60.0


def load_inference(name: str | None = None):
    """A fresh copy of inference/inference.py, imported by file path as the container does."""
    spec = importlib.util.spec_from_file_location(name or f"inference_{uuid.uuid4().hex}", INFERENCE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def inference():
    return load_inference()


@pytest.fixture(scope="session")
def loaded_model(inference):
    """model_fn on the real artifacts, with the tests' payload limit."""
    previous = os.environ.get("INFERENCE_MAX_PAYLOAD_MB")
    os.environ["INFERENCE_MAX_PAYLOAD_MB"] = MAX_PAYLOAD_MB
    try:
        return inference.model_fn(str(ARTIFACTS_DIR))
    finally:
        if previous is None:
            os.environ.pop("INFERENCE_MAX_PAYLOAD_MB")
        else:
            os.environ["INFERENCE_MAX_PAYLOAD_MB"] = previous


@pytest.fixture(scope="session")
def reference_estimator():
    """The pipeline loaded independently of inference.py: the source of expected probabilities."""
    return joblib.load(ARTIFACTS_DIR / "model.joblib")


@pytest.fixture(scope="session")
def sample_rows() -> list[str]:
    return [line for line in (ARTIFACTS_DIR / "samples" / "request.csv").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def many_rows(sample_rows) -> list[str]:
    """3000 distinct rows (enough to take the bulk CSV path), formatted like the samples."""
    base = np.loadtxt(sample_rows, delimiter=",", ndmin=2)
    rng = np.random.default_rng(7)
    tiled = np.tile(base, (600, 1)) * rng.uniform(0.5, 1.5, size=(600 * len(base), base.shape[1]))
    return [",".join(f"{value:.4f}" for value in row) for row in tiled]


def expected_probabilities(estimator, rows: list[str]) -> list[float]:
    return estimator.predict_proba(np.loadtxt(rows, delimiter=",", ndmin=2))[:, 1].tolist()


@dataclass(frozen=True)
class BadInput:
    """A client mistake, the status it must get, and fields its JSON error document must carry."""
    name: str
    content_type: str
    body: Callable[[list[str], list[str]], bytes]  # (sample_rows, many_rows) -> body
    status: int
    fields: dict = field(default_factory=dict)
    accept: str = "application/json"


def _csv(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _replace_value(row: str, column: int, value: str) -> str:
    values = row.split(",")
    values[column - 1] = value
    return ",".join(values)


BAD_INPUTS = [
    BadInput("csv_extra_value_line_2", "text/csv", lambda s, m: _csv([s[0], s[1] + ",1"]), 400,
             {"code": "wrong_feature_count", "line": 2, "got": 13, "expected": 12}),
    BadInput("csv_missing_value_line_1", "text/csv", lambda s, m: _csv([s[0].rsplit(",", 1)[0]]), 400,
             {"code": "wrong_feature_count", "line": 1, "got": 11, "expected": 12}),
    BadInput("csv_word_line_3", "text/csv", lambda s, m: _csv([s[0], s[1], _replace_value(s[2], 4, "abc")]), 400,
             {"code": "not_a_number", "line": 3, "column": 4}),
    BadInput("csv_header_row", "text/csv", lambda s, m: _csv([",".join(f"f{i}" for i in range(12)), s[0]]), 400,
             {"code": "not_a_number", "line": 1, "column": 1}),
    BadInput("csv_nan", "text/csv", lambda s, m: _csv([_replace_value(s[0], 2, "nan")]), 400,
             {"code": "not_finite", "line": 1, "column": 2}),
    BadInput("csv_infinity", "text/csv", lambda s, m: _csv([s[0], _replace_value(s[1], 12, "-inf")]), 400,
             {"code": "not_finite", "line": 2, "column": 12}),
    BadInput("csv_empty_value", "text/csv", lambda s, m: _csv([_replace_value(s[0], 5, "")]), 400,
             {"code": "empty_value", "line": 1, "column": 5}),
    BadInput("csv_blank_line_inside", "text/csv", lambda s, m: _csv([s[0], "", s[1]]), 400,
             {"code": "empty_line", "line": 2}),
    BadInput("csv_invalid_utf8", "text/csv", lambda s, m: _csv([s[0]]).replace(b"1", b"\xff", 1), 400,
             {"code": "not_a_number", "line": 1}),
    BadInput("csv_empty_body", "text/csv", lambda s, m: b"", 400, {"code": "empty_body"}),
    BadInput("csv_blank_body", "text/csv", lambda s, m: b"\n \n", 400, {"code": "empty_body"}),
    # 3000 lines take the pyarrow path; the error must still name the exact line.
    BadInput("bulk_csv_word_line_2500", "text/csv",
             lambda s, m: _csv(m[:2499] + [_replace_value(m[2499], 7, "x7")] + m[2500:]), 400,
             {"code": "not_a_number", "line": 2500, "column": 7}),
    BadInput("bulk_csv_short_line_3000", "text/csv", lambda s, m: _csv(m[:2999] + [m[2999].rsplit(",", 1)[0]]), 400,
             {"code": "wrong_feature_count", "line": 3000, "got": 11}),
    BadInput("bulk_csv_nan_line_1234", "text/csv",
             lambda s, m: _csv(m[:1233] + [_replace_value(m[1233], 3, "NaN")] + m[1234:]), 400,
             {"code": "not_finite", "line": 1234, "column": 3}),
    BadInput("bulk_csv_blank_line_10", "text/csv", lambda s, m: _csv(m[:9] + [""] + m[9:]), 400,
             {"code": "empty_line", "line": 10}),
    BadInput("json_short_row_2", "application/json", lambda s, m: b'{"instances": [[%s], [1, 2]]}' % s[0].encode(),
             400, {"code": "wrong_feature_count", "row": 2, "got": 2, "expected": 12}),
    BadInput("json_string_value", "application/json",
             lambda s, m: b'[[%s]]' % _replace_value(s[0], 3, '"12.5"').encode(), 400,
             {"code": "not_a_number", "row": 1, "column": 3}),
    BadInput("json_boolean_value", "application/json",
             lambda s, m: b'[[%s]]' % _replace_value(s[0], 9, "true").encode(), 400,
             {"code": "not_a_number", "row": 1, "column": 9}),
    BadInput("json_nan", "application/json", lambda s, m: b'[%s]' % _replace_value(s[0], 1, "NaN").encode(), 400,
             {"code": "not_finite", "row": 1, "column": 1}),
    BadInput("json_not_json", "application/json", lambda s, m: b"{instances: [[1]]}", 400, {"code": "invalid_json"}),
    BadInput("json_no_instances", "application/json", lambda s, m: b'{"rows": [[1]]}', 400,
             {"code": "missing_instances"}),
    BadInput("json_empty_list", "application/json", lambda s, m: b'{"instances": []}', 400, {"code": "empty_body"}),
    BadInput("json_row_not_list", "application/json", lambda s, m: b'{"instances": [{"amount": 1}]}', 400,
             {"code": "invalid_row", "row": 1}),
    BadInput("unsupported_content_type", "text/plain", lambda s, m: _csv([s[0]]), 415,
             {"code": "unsupported_content_type"}),
    BadInput("unsupported_accept", "text/csv", lambda s, m: _csv([s[0]]), 406, {"code": "unsupported_accept"},
             accept="text/html"),
    BadInput("too_large", "text/csv", lambda s, m: _csv(m * 7), 413, {"code": "payload_too_large"}),
]


@pytest.fixture(params=BAD_INPUTS, ids=[case.name for case in BAD_INPUTS])
def bad_input(request, sample_rows, many_rows) -> tuple[BadInput, bytes]:
    case = request.param
    return case, case.body(sample_rows, many_rows)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalServer:
    """A `python -m serve` subprocess and a keep-alive-free client for it."""
    process: subprocess.Popen
    port: int
    log: Path

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def stop(self) -> str:
        """Stop the server; returns what it logged."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text()


def start_server(*args: str, log: Path, env: dict[str, str] | None = None) -> LocalServer:
    """Start `python -m serve <args>` on a free port (output to ``log``) and wait until /ping answers 200."""
    port = free_port()
    with log.open("w") as sink:  # a file, not a pipe: nobody drains a pipe while tests run
        process = subprocess.Popen(
            [sys.executable, "-m", "serve", "--port", str(port), "--workers", "1", *args],
            cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
            stdout=sink, stderr=subprocess.STDOUT)
    server = LocalServer(process, port, log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if server.request("GET", "/ping")[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"serve did not answer /ping within {SERVER_START_TIMEOUT_S} s:\n{server.stop()[-3000:]}")


@pytest.fixture(scope="session")
def local_server(tmp_path_factory):
    """`python -m serve --model-dir artifacts/fraud-detector`, as `make serve` runs it."""
    server = start_server("--model-dir", str(ARTIFACTS_DIR), log=tmp_path_factory.mktemp("serve") / "serve.log",
                          env={"INFERENCE_MAX_PAYLOAD_MB": MAX_PAYLOAD_MB})
    yield server
    server.stop()
