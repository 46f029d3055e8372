#!/usr/bin/env python3
"""The CDK app: one stack per enabled deployment pattern, checked by cdk-nag's AwsSolutions pack."""
from __future__ import annotations

import sys
from pathlib import Path

# Bytecode caches in .build/pycache (where the Makefile puts them), whatever the shell says: with
# PYTHONDONTWRITEBYTECODE set (some CI images and containers set it), every `cdk` command compiled aws_cdk
# and the constructs from source again. Set before the imports below; never next to the sources, which
# include folders CDK packages as assets.
sys.pycache_prefix = sys.pycache_prefix or str(Path(__file__).resolve().parent / ".build" / "pycache")
sys.dont_write_bytecode = False

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from stacks.app_builder import build_stacks  # noqa: E402
from stacks.deployment import deployment_from_context  # noqa: E402


def main() -> None:
    """Synthesize every enabled stack; a configuration mistake exits with code 2 and a message, no traceback."""
    app = cdk.App()
    try:
        context = app.node.get_all_context()
        build_stacks(app, deployment_from_context(context), context=context)
    except ValueError as exc:  # ConfigError, ModelArtifactsError and construct validation all are ValueErrors
        print(f"\n{exc}\n", file=sys.stderr)
        sys.exit(2)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
