"""The program run as a process in standalone mode: JSON Lines in, one JSON result per line out."""
from __future__ import annotations

import io
import json
import subprocess
import sys

from tests.runtime.edge.conftest import ARTIFACTS_DIR, PROGRAM_DIR

SAMPLE_ROWS = ARTIFACTS_DIR / "samples" / "rows.jsonl"
TIMEOUT_S = 60


def run_program(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROGRAM_DIR / "main.py"), *args], input=stdin, text=True,
                          capture_output=True, timeout=TIMEOUT_S, cwd=PROGRAM_DIR)


def test_scores_the_sample_file():
    # GIVEN the sample rows shipped with the training artifacts
    rows = [line for line in SAMPLE_ROWS.read_text().splitlines() if line.strip()]
    # WHEN the program runs standalone on that file, the model given relative to --artifacts-dir
    result = run_program("standalone", "--model", "model.onnx", "--artifacts-dir", str(ARTIFACTS_DIR),
                         "--model-version", "v1-sample", "--input", str(SAMPLE_ROWS))
    # THEN it exits 0 and prints one prediction per row, in order, with logs on stderr only
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(rows)
    assert all(answer["model_version"] == "v1-sample" and answer["prediction"] in (0, 1) for answer in answers)
    assert "scored 5 message(s), rejected 0" in result.stderr


def test_bad_lines_on_stdin_are_answered_in_place():
    # GIVEN stdin mixing a good row, garbage, a blank line and a short row
    good = SAMPLE_ROWS.read_text().splitlines()[0]
    stdin = "\n".join([good, "{oops", "", '{"id": "short", "features": [1]}', good]) + "\n"
    # WHEN the program reads it
    result = run_program("standalone", "--model", str(ARTIFACTS_DIR / "model.onnx"), stdin=stdin)
    # THEN it keeps going: four answers for four non-blank lines, errors where the bad lines were
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert ["error" in answer for answer in answers] == [False, True, True, False]
    assert answers[2]["id"] == "short"
    assert answers[0]["model_version"].startswith("sha256:")


def test_missing_model_fails_cleanly():
    # GIVEN a model path that does not exist
    result = run_program("standalone", "--model", "missing.onnx", stdin="")
    # THEN the program exits 2 with one clear log line and no traceback
    assert result.returncode == 2
    assert "cannot load the model" in result.stderr and "Traceback" not in result.stderr


def test_missing_input_file_fails_cleanly(tmp_path):
    # GIVEN an --input file that does not exist
    missing = tmp_path / "no-such-rows.jsonl"
    result = run_program("standalone", "--model", str(ARTIFACTS_DIR / "model.onnx"), "--input", str(missing))
    # THEN the program exits 2 with one line naming the file and the reason, no traceback, no output
    assert result.returncode == 2, result.stderr
    assert f"cannot read the input file {missing}: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_score_lines_counts_and_skips_blanks(standalone_module, predictor):
    # GIVEN three lines, one blank and one bad
    out = io.StringIO()
    # WHEN scored in process
    counts = standalone_module.score_lines(predictor.handle, ['{"features": [1]}\n', "   \n",
                                                               (SAMPLE_ROWS.read_text().splitlines()[1])], out)
    # THEN one result per non-blank line, counted as (scored, rejected)
    assert counts == (1, 1)
    assert len(out.getvalue().splitlines()) == 2


def test_greengrass_mode_without_a_nucleus_exits_with_a_clear_error():
    # GIVEN no Greengrass nucleus (no IPC socket or SVCUID in the environment), and a single connection attempt
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import main; main.CONNECT_ATTEMPTS = 1; "
              "sys.exit(main.main(sys.argv[2:]))")
    result = subprocess.run(
        [sys.executable, "-c", script, str(PROGRAM_DIR), "greengrass", "--model", str(ARTIFACTS_DIR / "model.onnx"),
         "--input-topic", "a", "--output-topic", "b", "--error-topic", "c"],
        text=True, capture_output=True, timeout=TIMEOUT_S,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
    # THEN it exits 1 (Greengrass would restart it) with one explanatory line, not a traceback
    assert result.returncode == 1, result.stderr
    assert "cannot connect to the Greengrass nucleus" in result.stderr and "Traceback" not in result.stderr


def test_an_input_file_with_non_utf8_bytes_is_answered_line_by_line(tmp_path):
    # GIVEN an --input file whose second line holds bytes that are not UTF-8, between two good rows
    good = SAMPLE_ROWS.read_bytes().splitlines()[0]
    rows = tmp_path / "mixed.jsonl"
    rows.write_bytes(good + b"\n" + b'{"features": [\xff\xfe]}' + b"\n" + good + b"\n")
    # WHEN the program scores the file
    result = subprocess.run([sys.executable, str(PROGRAM_DIR / "main.py"), "standalone", "--model",
                             str(ARTIFACTS_DIR / "model.onnx"), "--input", str(rows)],
                            capture_output=True, timeout=TIMEOUT_S, cwd=PROGRAM_DIR)
    # THEN it exits 0 with one answer per line: the bad line is an error saying it is not UTF-8, no traceback
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert ["error" in answer for answer in answers] == [False, True, False]
    assert "not UTF-8" in answers[1]["error"]
    assert b"Traceback" not in result.stderr
