#!/usr/bin/env python3
"""The CDK app: one stack per enabled deployment pattern, checked by cdk-nag's AwsSolutions pack."""
from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.app_builder import build_stacks
from stacks.deployment import deployment_from_context


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
