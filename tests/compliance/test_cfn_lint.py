"""cfn-lint over every synthesized template: zero errors."""
from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import lint


#: Regions the templates are checked against; the mapping of image accounts covers more, but cfn-lint's
#: resource catalogue lags for newer regions, so we check the ones this project documents as tested.
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]


@pytest.fixture(scope="module")
def templates(default_app) -> list[Path]:
    app, _ = default_app
    assembly = app.synth()
    paths = sorted(Path(assembly.directory).glob("*.template.json"))
    assert paths, "the app synthesized no templates"
    return paths


def test_every_template_is_lint_clean(templates):
    # GIVEN every template the app synthesizes
    errors = []
    for path in templates:
        # WHEN cfn-lint checks it
        for match in lint(path.read_text(), regions=LINT_REGIONS):
            # THEN there is no error (warnings and informational notes are listed but allowed)
            if match.rule.id.startswith("E"):
                errors.append(f"{path.name}: {match}")
    assert errors == [], "\n".join(errors)
