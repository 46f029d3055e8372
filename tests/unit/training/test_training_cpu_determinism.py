"""The demo build writes the same bytes whatever BLAS kernel or thread count runs it (issue #10)."""

import os
import subprocess
import sys

import pytest

from tests.unit.training.conftest import REPO_ROOT

# Kernels OpenBLAS picks on common CPUs; before quantizing, each gave another model.joblib.
KERNELS = ("Prescott", "Haswell")


def _folder_bytes(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _build(out, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "PYTHONHASHSEED")}
    env.update(env_overrides)
    subprocess.run([sys.executable, "-m", "training.build", "--out", str(out)], cwd=REPO_ROOT, env=env,
                   capture_output=True, text=True, check=True, timeout=180)
    return _folder_bytes(out)


@pytest.mark.parametrize("overrides", [{"OPENBLAS_CORETYPE": kernel} for kernel in KERNELS]
                         + [{"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}],
                         ids=[*KERNELS, "two-threads"])
def test_build_is_byte_identical_under_another_blas_kernel(artifacts, tmp_path, overrides):
    # GIVEN the session's build (OPENBLAS_CORETYPE unset)
    reference = _folder_bytes(artifacts)
    # WHEN building again in a process forced onto another kernel or thread count
    again = _build(tmp_path, **overrides)
    # THEN every file, model.joblib and metadata.json included, is the same bytes
    assert sorted(again) == sorted(reference)
    different = [name for name in reference if again[name] != reference[name]]
    assert different == []
