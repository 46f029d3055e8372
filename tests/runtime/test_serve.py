"""`python -m serve`: the real model behind the local server, answering as the SageMaker container does."""
from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import joblib
import numpy as np
import pytest

from serve import container, staging
from tests.runtime.conftest import ARTIFACTS_DIR, INFERENCE_PATH, REPO_ROOT, expected_probabilities, start_server

CSV_FOR_CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}


def test_ping_answers_200_with_an_empty_body(local_server):
    # GIVEN the server started from the artifacts; WHEN SageMaker's health check calls /ping
    status, _, body = local_server.request("GET", "/ping")
    # THEN it is healthy
    assert (status, body) == (200, b"")


def test_csv_row_gets_the_models_probability_and_version(local_server, reference_estimator, sample_rows):
    # GIVEN one CSV row; WHEN it is posted for CSV
    status, headers, body = local_server.request("POST", "/invocations", sample_rows[0].encode(), CSV_FOR_CSV)
    # THEN the body is predict_proba's probability; the version rides in the CustomAttributes header
    metadata = json.loads((ARTIFACTS_DIR / "metadata.json").read_text())
    assert status == 200
    assert headers["content-type"].startswith("text/csv")
    assert float(body) == expected_probabilities(reference_estimator, sample_rows[:1])[0]
    assert headers["x-amzn-sagemaker-custom-attributes"] == f"model_version={metadata['model_version']}"


def test_multi_row_csv_answers_line_for_line(local_server, reference_estimator, many_rows):
    # GIVEN 3000 rows; WHEN posted as one CSV request
    payload = ("\n".join(many_rows) + "\n").encode()
    status, _, body = local_server.request("POST", "/invocations", payload, CSV_FOR_CSV)
    # THEN there is one probability per row, in order
    assert status == 200
    assert [float(line) for line in body.decode().splitlines()] == expected_probabilities(reference_estimator, many_rows)


def test_json_request_gets_json_predictions(local_server, reference_estimator, sample_rows):
    # GIVEN the sample JSON request; WHEN posted as JSON for JSON
    payload = (ARTIFACTS_DIR / "samples" / "request.json").read_bytes()
    status, headers, body = local_server.request(
        "POST", "/invocations", payload, {"Content-Type": "application/json", "Accept": "application/json"})
    # THEN every instance has the model's probability
    assert (status, headers["content-type"]) == (200, "application/json")
    probabilities = [p["probability"] for p in json.loads(body)["predictions"]]
    assert probabilities == expected_probabilities(reference_estimator, sample_rows)


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_missing_or_any_accept_means_the_containers_default_json(local_server, sample_rows, accept):
    # GIVEN a CSV request without a specific Accept
    headers = {"Content-Type": "text/csv", **({"Accept": accept} if accept else {})}
    # WHEN posted THEN, as in the container (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT unset), the answer is JSON
    status, response_headers, body = local_server.request("POST", "/invocations", sample_rows[0].encode(), headers)
    assert (status, response_headers["content-type"]) == (200, "application/json")
    assert len(json.loads(body)["predictions"]) == 1


def test_bad_input_gets_the_same_4xx_through_http(local_server, bad_input):
    # GIVEN a client mistake; WHEN posted to the server
    case, body = bad_input
    status, headers, payload = local_server.request(
        "POST", "/invocations", body, {"Content-Type": case.content_type, "Accept": case.accept})
    # THEN the status is a 4xx with the JSON reason (never a 500 that would count as the model's fault)
    document = json.loads(payload)
    assert (status, headers["content-type"]) == (case.status, "application/json")
    assert {key: document.get(key) for key in case.fields} == case.fields


@pytest.mark.parametrize("method, path, status", [("GET", "/invocations", 405), ("POST", "/ping", 405),
                                                  ("GET", "/predict", 404)])
def test_routes_are_the_containers(local_server, method, path, status):
    assert local_server.request(method, path)[0] == status


def _corrupt_model_tar(tmp_path: Path) -> Path:
    """A model.tar.gz (model files + code/inference.py) whose classifier has 13 coefficients for 12 features."""
    estimator = joblib.load(ARTIFACTS_DIR / "model.joblib")
    classifier = estimator.steps[-1][1]
    classifier.coef_ = np.hstack([classifier.coef_, [[0.5]]])
    package = tmp_path / "package"
    (package / "code").mkdir(parents=True)
    joblib.dump(estimator, package / "model.joblib")
    shutil.copy(ARTIFACTS_DIR / "metadata.json", package / "metadata.json")
    shutil.copy(INFERENCE_PATH, package / "code" / "inference.py")
    tar_path = tmp_path / "model.tar.gz"
    with tarfile.open(tar_path, "w:gz") as archive:
        for name in ("model.joblib", "metadata.json", "code/inference.py"):
            archive.add(package / name, arcname=name)
    return tar_path


def test_an_exception_in_the_model_is_a_500_like_the_container(tmp_path, sample_rows):
    # GIVEN a model.tar.gz whose model raises on predict_proba, served from the tar as SageMaker would
    server = start_server("--model-tar", str(_corrupt_model_tar(tmp_path)), log=tmp_path / "serve.log")
    try:
        # WHEN a valid row is posted
        status, _, _ = server.request("POST", "/invocations", sample_rows[0].encode(), CSV_FOR_CSV)
        ping_status = server.request("GET", "/ping")[0]
        # ... and a client mistake is posted
        bad_status = server.request("POST", "/invocations", b"1,2", CSV_FOR_CSV)[0]
    finally:
        log = server.stop()
    # THEN the model's failure is a 500 (as in the container), the worker stays up, a client mistake stays a 400
    assert (status, ping_status, bad_status) == (500, 200, 400)
    assert "ValueError" in log


# --- The container's request semantics, checked on the app directly with a recording transform_fn ---

class Recorder:
    def __init__(self, result):
        self.result = result
        self.calls = []

    def __call__(self, model, content, content_type, accept):
        self.calls.append((content, content_type, accept))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def asgi_post(app, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    scope = {"type": "http", "method": "POST", "path": "/invocations",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return (sent[0]["status"], {k.decode(): v.decode() for k, v in sent[0]["headers"]}, sent[1]["body"])


@pytest.mark.parametrize("headers, expected", [
    ({"Content-Type": "text/csv"}, ("1,2", "text/csv", "application/json")),
    ({"Content-Type": "text/csv; charset=utf-8", "Accept": "*/*"}, (b"1,2", "text/csv; charset=utf-8", "application/json")),
    ({"ContentType": "text/csv", "Content-Type": "application/json", "Accept": "text/csv"}, ("1,2", "text/csv", "text/csv")),
    ({}, ("1,2", "application/json", "application/json")),
])
def test_transform_fn_sees_what_the_container_passes(headers, expected):
    # GIVEN the app around a transform_fn that records its arguments
    recorder = Recorder(("ok", "text/csv"))
    app = container.ContainerApp(transform_fn=recorder, model=object())
    # WHEN a request arrives with these headers
    asgi_post(app, headers, b"1,2")
    # THEN body type, Content-Type (ContentType first, JSON by default) and Accept (*/* = default) are the container's
    assert recorder.calls == [expected]


def test_default_accept_comes_from_the_environment_variable():
    recorder = Recorder(("ok", "text/csv"))
    app = container.ContainerApp(transform_fn=recorder, model=object(), default_accept="text/csv")
    asgi_post(app, {"Content-Type": "text/csv", "Accept": "*/*"}, b"1")
    assert recorder.calls[0][2] == "text/csv"


def test_tuple_results_become_200_and_exceptions_become_500():
    # GIVEN a hook returning the legacy (body, content_type) tuple, and one that raises
    ok = container.ContainerApp(transform_fn=Recorder(("0.5\n", "text/csv")), model=object())
    broken = container.ContainerApp(transform_fn=Recorder(KeyError("boom")), model=object())
    # WHEN each is invoked
    ok_status, ok_headers, ok_body = asgi_post(ok, {"Content-Type": "text/csv"}, b"1")
    broken_status, broken_headers, _ = asgi_post(broken, {"Content-Type": "text/csv"}, b"1")
    # THEN the tuple is a 200 of that type; the exception is Flask's HTML 500
    assert (ok_status, ok_headers["content-type"], ok_body) == (200, "text/csv; charset=utf-8", b"0.5\n")
    assert (broken_status, broken_headers["content-type"]) == (500, "text/html; charset=utf-8")


def test_an_entry_point_with_transform_fn_and_input_fn_is_refused(tmp_path):
    # GIVEN code/ whose entry point defines both styles of hooks (the container refuses this mix)
    (tmp_path / "inference.py").write_text(
        "def model_fn(d): return 1\ndef transform_fn(m, b, c, a): return b, c\ndef input_fn(b, c): return b\n")
    environ = {container.PROGRAM_ENV: "inference.py", container.SUBMIT_DIRECTORY_ENV: str(tmp_path)}
    # WHEN serve loads it THEN it refuses with the container's message
    with pytest.raises(container.UserModuleError, match="Cannot use transform_fn"):
        container.create_app(model_dir=str(tmp_path), environ=environ)


def test_a_model_tar_that_escapes_its_directory_is_refused(tmp_path):
    # GIVEN a tar with a member outside the extraction directory
    tar_path = tmp_path / "evil.tar.gz"
    with tarfile.open(tar_path, "w:gz") as archive:
        data = b"x"
        member = tarfile.TarInfo("../escaped.txt")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    # WHEN it is staged THEN extraction is refused and nothing lands outside
    with pytest.raises(staging.StagingError, match="cannot unpack") as refused:
        staging.stage_from_tar(model_tar=tar_path, destination=tmp_path / "model")
    assert isinstance(refused.value.__cause__, tarfile.TarError)
    assert not (tmp_path / "escaped.txt").exists()


def run_serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serve", "--workers", "1", *args], cwd=REPO_ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--model-dir", "no-such-dir"], "error: model directory no-such-dir does not exist"),
    (["--model-tar", "no-such.tar.gz"], "error: model tar no-such.tar.gz does not exist"),
    (["--code-dir", "no-such-code"], "missing no-such-code/inference.py"),
    (["--port", "0"], "argument --port: port must be between 1 and 65535, got 0"),
    (["--workers", "-1"], "argument --workers: must be 0 (one per CPU) or more, got -1"),
])
def test_a_user_mistake_is_one_line_and_exit_2(args, message):
    # WHEN `python -m serve` is given a path that does not exist or an impossible number
    result = run_serve(*args)
    # THEN it says what is wrong on one line of stderr and exits 2, without a traceback
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) <= 1


def test_a_tar_that_is_not_a_tar_is_a_user_mistake(tmp_path):
    (tmp_path / "model.tar.gz").write_bytes(b"not a tar")
    result = run_serve("--model-tar", str(tmp_path / "model.tar.gz"))
    assert result.returncode == 2 and "error: cannot unpack" in result.stderr and "Traceback" not in result.stderr


def test_an_entry_point_the_container_would_refuse_is_a_user_mistake(tmp_path):
    # GIVEN code/ whose entry point has no transform_fn
    (tmp_path / "inference.py").write_text("def model_fn(d): return 1\n")
    result = run_serve("--model-dir", str(ARTIFACTS_DIR), "--code-dir", str(tmp_path))
    assert result.returncode == 2 and "supports entry points that define transform_fn" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_that_crashes_while_loading_keeps_its_traceback(tmp_path):
    # GIVEN well-formed artifacts whose model.joblib is corrupt: a real failure, not a wrong argument
    shutil.copy2(ARTIFACTS_DIR / "metadata.json", tmp_path / "metadata.json")
    (tmp_path / "model.joblib").write_bytes(b"corrupt")
    result = run_serve("--model-dir", str(tmp_path))
    # THEN the process fails with the full traceback, for whoever debugs it
    assert result.returncode != 0
    assert "Traceback" in result.stderr


# --- Bounded request bodies: an early Content-Length check and a body timeout ---

def asgi_call(app, headers: dict[str, str], receive) -> tuple[int, dict[str, str], bytes]:
    scope = {"type": "http", "method": "POST", "path": "/invocations",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return (sent[0]["status"], {k.decode(): v.decode() for k, v in sent[0]["headers"]}, sent[1]["body"])


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_read():
    # GIVEN an app whose model takes at most 1000 bytes, and a request declaring 120 MB
    recorder = Recorder(("ok", "text/csv"))
    app = container.ContainerApp(transform_fn=recorder, model=object(), max_body_bytes=1000)
    reads = []

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    # WHEN it arrives
    status, headers, body = asgi_call(app, {"Content-Type": "text/csv", "Content-Length": str(120 * 2**20)}, receive)
    # THEN it is refused at once with inference.py's 413 document, nothing read or buffered
    assert status == 413 and reads == [] and recorder.calls == []
    assert json.loads(body) == {"error": f"request body is {120 * 2**20} bytes; the limit is 1000",
                                "code": "payload_too_large", "limit_bytes": 1000}


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit():
    # GIVEN a body with no Content-Length that keeps streaming 64 KiB chunks
    app = container.ContainerApp(transform_fn=Recorder(("ok", "text/csv")), model=object(), max_body_bytes=100_000)
    reads = []

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 65536, "more_body": len(reads) < 2000}

    # WHEN it arrives THEN the server stops reading at the second chunk and answers 413
    status, _, body = asgi_call(app, {"Content-Type": "text/csv"}, receive)
    assert (status, json.loads(body)["code"], len(reads)) == (413, "payload_too_large", 2)


def test_a_body_that_stops_arriving_is_408_after_the_body_timeout():
    # GIVEN a request that sends 70 bytes of a declared 5000, then nothing
    recorder = Recorder(("ok", "text/csv"))
    app = container.ContainerApp(transform_fn=recorder, model=object(), body_timeout_s=0.2)
    sent_first = []

    async def receive():
        if not sent_first:
            sent_first.append(1)
            return {"type": "http.request", "body": b"1" * 70, "more_body": True}
        await asyncio.sleep(3600)

    # WHEN it is served THEN the answer is 408 after the timeout (not a socket held for minutes), hook never called
    status, headers, body = asgi_call(app, {"Content-Type": "text/csv", "Content-Length": "5000"}, receive)
    assert (status, json.loads(body)["code"], headers["connection"]) == (408, "body_timeout", "close")
    assert recorder.calls == []


def test_the_local_server_answers_a_stalled_body_within_its_body_timeout(tmp_path):
    # GIVEN `python -m serve --body-timeout 1`, and a client that declares 5000 bytes and sends 70
    server = start_server("--model-dir", str(ARTIFACTS_DIR), "--body-timeout", "1", log=tmp_path / "serve.log")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
            client.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                           b"Content-Length: 5000\r\n\r\n" + b"1" * 70)
            started = time.monotonic()
            answer = client.recv(65536)
            waited = time.monotonic() - started
    finally:
        server.stop()
    # THEN it answers 408 after about a second, instead of holding the socket
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert waited < 10


def test_the_local_server_refuses_an_oversized_declared_length_without_reading_it(local_server):
    # GIVEN the server (1 MiB limit) and a client that declares 120 MB but sends none of it
    with socket.create_connection(("127.0.0.1", local_server.port), timeout=30) as client:
        client.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                       + f"Content-Length: {120 * 2**20}\r\n\r\n".encode())
        # WHEN it waits THEN the 413 comes at once, before any body byte was sent
        answer = b""
        while b"payload_too_large" not in answer:
            chunk = client.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer
