"""Packages scikit-learn models into deployable folders, and builds the demo fraud detector.

``python -m training.package`` packages a user's saved estimator; ``python -m training.build``
fits the demo from seeded synthetic data and packages it with the same code. Every file written
is a pure function of the inputs and the pinned library versions: two runs give byte-identical
folders on any CPU, so a changed model always gets a new content-hash version and an unchanged
one never triggers a redeploy.

This package's ``__init__`` imports nothing: the CDK app imports ``training.contract`` (pydantic
and the standard library only) without loading numpy or scikit-learn.
"""
