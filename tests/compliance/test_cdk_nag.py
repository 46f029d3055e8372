"""cdk-nag's AwsSolutions pack over every stack: zero unacknowledged findings, every acknowledgement explained."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import build_app

MIN_REASON_LENGTH = 40


@pytest.fixture(scope="module")
def nag_report(tmp_path_factory) -> dict:
    # GIVEN the default app, bundled for real, with the AwsSolutions plugin attached exactly as app.py does
    outdir = tmp_path_factory.mktemp("cdk-out-nag")
    app, _ = build_app(outdir=str(outdir), nag=True, bundle=True)
    # WHEN it is synthesized (findings make synth raise ValidationFailed and leave a report)
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
    report_path = Path(outdir) / "validation-report.json"
    return json.loads(report_path.read_text()) if report_path.exists() else {"pluginReports": []}


def test_no_unacknowledged_findings(nag_report):
    # THEN no plugin reports a violation, of any severity
    findings = [
        f"{violation['ruleName']} ({violation['severity']}): {construct['constructPath']} - {violation['description']}"
        for plugin in nag_report["pluginReports"] for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]]
    assert findings == [], "cdk-nag findings:\n" + "\n".join(findings)


def test_every_acknowledgement_has_a_specific_reason(default_app):
    # GIVEN every construct of the default app
    app, _ = default_app
    reasons = []
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                reasons.extend((construct.node.path, rule, reason) for rule, reason in entry.data.items())
    # THEN acknowledgements exist and each explains itself in a sentence, not a placeholder
    assert reasons, "expected the acknowledgements made next to the code that causes them"
    short = [(path, rule, reason) for path, rule, reason in reasons if len(reason.strip()) < MIN_REASON_LENGTH]
    assert short == []
