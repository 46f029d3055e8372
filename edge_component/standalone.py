"""Standalone mode: JSON Lines in (stdin or a file), one JSON result per non-blank line out (stdout).

Lets the program be tried on a laptop without a Greengrass nucleus. Results and errors keep the input
order, so line N of the output answers the N-th non-blank input line.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Iterable, TextIO


def score_lines(handle: Callable[[Any], Any], lines: Iterable[str | bytes], out: TextIO) -> tuple[int, int]:
    """Score each non-blank line (text, or raw bytes the predictor decodes) with ``handle``; returns (scored, rejected)."""
    scored = rejected = 0
    for line in lines:
        if not line.strip():
            continue
        outcome = handle(line)
        out.write(json.dumps(outcome.body, separators=(",", ":")) + "\n")
        if outcome.ok:
            scored += 1
        else:
            rejected += 1
    out.flush()
    return scored, rejected
