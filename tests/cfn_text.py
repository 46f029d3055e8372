"""CloudFormation string expressions (Fn::Join of literals, Ref, Fn::GetAtt, Fn::Sub) flattened to text."""
from __future__ import annotations

from typing import Any, Callable


def dollar_token(name: str) -> str:
    """``Ref``/``Fn::GetAtt`` shown as ``${Logical.Attr}``, the way Fn::Sub writes them."""
    return "${" + name + "}"


def render(value: Any, *, token: Callable[[str], str] = dollar_token,
           find_in_map: Callable[[list[str]], str] | None = None) -> str:
    """Text of ``value`` with each Ref/GetAtt replaced by ``token(name)``; anything else unknown raises TypeError."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part, token=token, find_in_map=find_in_map) for part in parts)
    if "Ref" in value:
        return token(value["Ref"])
    if "Fn::GetAtt" in value:
        return token(".".join(value["Fn::GetAtt"]))
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"]
    if "Fn::FindInMap" in value and find_in_map is not None:
        return find_in_map([render(part, token=token, find_in_map=find_in_map) for part in value["Fn::FindInMap"]])
    raise TypeError(f"cannot render {value!r}")
