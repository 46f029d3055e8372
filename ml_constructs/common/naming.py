"""Names derived from user input and from synthesized tokens, shared by every construct."""
from __future__ import annotations

import re


def pascal_case(name: str) -> str:
    """`fraud-v2` -> `FraudV2`, for construct ids derived from user-chosen names."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def nag_resource_name(resolved: object) -> str:
    """The way cdk-nag prints a resolved resource in a finding id: ``<Logical.Attr>`` and ``<AWS::Region>``."""
    if isinstance(resolved, str):
        return resolved
    if isinstance(resolved, dict) and "Fn::GetAtt" in resolved:
        return "<" + ".".join(resolved["Fn::GetAtt"]) + ">"
    if isinstance(resolved, dict) and "Ref" in resolved:
        return "<" + resolved["Ref"] + ">"
    if isinstance(resolved, dict) and "Fn::Join" in resolved:
        separator, parts = resolved["Fn::Join"]
        return separator.join(nag_resource_name(part) for part in parts)
    raise TypeError(f"cannot name {resolved!r} the way cdk-nag does")
