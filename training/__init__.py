"""Builds the demo fraud detector and its artifacts from seeded synthetic data.

Run ``python -m training.build`` from the repository root. Every file it writes
is a pure function of the seed and the pinned library versions: two runs on the
same toolchain give byte-identical folders, so a changed model always gets a new
content-hash version and an unchanged one never triggers a redeploy.
"""

from training.data import FEATURE_NAMES, LABEL_NAME

__all__ = ["FEATURE_NAMES", "LABEL_NAME"]
