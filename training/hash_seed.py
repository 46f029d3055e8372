"""The interpreter's hash seed, which the ONNX bytes depend on.

skl2onnx names some graph nodes in hash-seed-dependent order (measured: the same pipeline converted under
PYTHONHASHSEED=0 and =1 gives different bytes), so the commands that convert re-execute themselves with the
seed pinned. This module imports only the standard library: a command calls :func:`reexec_pinned` before its
heavy imports (scikit-learn, skl2onnx, onnxruntime: about 2 s), so the user pays for them once, not twice.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

REQUIRED_HASH_SEED = "0"


def is_pinned() -> bool:
    """True when this interpreter started with ``PYTHONHASHSEED=0``."""
    return sys.flags.hash_randomization == 0


def reexec_pinned(module: str, argv: Optional[Sequence[str]] = None) -> None:
    """Replace this process with ``python -m <module> <argv>`` under ``PYTHONHASHSEED=0``; a no-op when the
    seed is already pinned. ``argv`` defaults to this process's own arguments."""
    if is_pinned():
        return
    forwarded = list(sys.argv[1:] if argv is None else argv)
    env = {**os.environ, "PYTHONHASHSEED": REQUIRED_HASH_SEED}
    os.execve(sys.executable, [sys.executable, "-m", module, *forwarded], env)
