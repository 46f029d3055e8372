"""cdk-nag findings of a synthesized app, as test assertions read them."""
from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk


def unacknowledged_findings(app: cdk.App, outdir: str | Path) -> list[str]:
    """Synthesize ``app`` (its AwsSolutions plugin attached, writing to ``outdir``) and list what cdk-nag reported.

    Findings make synth raise ValidationFailed and leave ``validation-report.json``; any other error propagates.
    """
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
    report = Path(outdir) / "validation-report.json"
    if not report.exists():
        return []
    return [f"{violation['ruleName']}: {construct['constructPath']}"
            for plugin in json.loads(report.read_text())["pluginReports"]
            for violation in plugin["violations"] for construct in violation["violatingConstructs"]]
