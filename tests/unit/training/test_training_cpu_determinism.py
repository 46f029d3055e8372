"""The demo build writes the same bytes whatever machine runs it (issue #10): another OpenBLAS kernel, another
thread count, another caller's PYTHONHASHSEED, an output folder left over from an older build.

Each variation is one more full build in a subprocess (the kernel is chosen when numpy loads), so the
variations are paired up: two builds cover the two kernels that gave other bytes before the fitted parameters
were quantized, two BLAS threads, a caller's hash seed, and a stale file in the output folder."""

import os
import subprocess
import sys

import pytest

from tests.unit.training.conftest import REPO_ROOT

MACHINES = {
    # Kernels OpenBLAS picks on common CPUs; before quantizing, each gave another model.joblib.
    "Prescott kernel, caller's PYTHONHASHSEED=123": {"OPENBLAS_CORETYPE": "Prescott", "PYTHONHASHSEED": "123"},
    "Haswell kernel, two BLAS threads": {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "2",
                                         "OMP_NUM_THREADS": "2"},
}


def _folder_bytes(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("machine", MACHINES, ids=list(MACHINES))
def test_build_is_byte_identical_on_another_machine(artifacts, tmp_path, machine):
    # GIVEN the session's build (OPENBLAS_CORETYPE and PYTHONHASHSEED unset), and an output folder holding a
    # stale file from an older build
    reference = _folder_bytes(artifacts)
    out = tmp_path / "again"
    (out / "fraud-detector").mkdir(parents=True)
    (out / "fraud-detector" / "stale.txt").write_text("old")
    # WHEN building again in a process with that machine's settings
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "PYTHONHASHSEED", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    subprocess.run([sys.executable, "-m", "training.build", "--out", str(out)], cwd=REPO_ROOT,
                   env={**env, **MACHINES[machine]}, capture_output=True, text=True, check=True, timeout=180)
    again = _folder_bytes(out)
    # THEN every file, model.joblib and metadata.json included, is the same bytes, and the stale file is gone
    assert sorted(again) == sorted(reference)
    assert len(reference) == 2 * 9
    assert [name for name in reference if again[name] != reference[name]] == []
