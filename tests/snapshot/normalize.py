"""Turns a synthesized template into snapshot text that is the same on every machine and diffs line by line.

Two jobs, in this order:

1. **Readable structure.** JSON carried inside strings (a state machine's ``DefinitionString``, a Greengrass
   ``InlineRecipe``, any ``Fn::Join`` whose pieces form JSON) is parsed and stored pretty-printed, one JSON
   line per snapshot line, so a one-word change in a recipe is a one-line diff. Intrinsics inside a joined
   document are shown in place as ``«Ref X»``, ``«GetAtt X.Arn»`` or ``«{compact json}»``. Strings and
   lines longer than :data:`MAX_LINE` are cut into pieces (a list whose concatenation is the text).
2. **Content-derived values become placeholders.** Asset hashes, the model version's hash part
   (``v1-<12 hex>``), logical-id suffixes CDK derives from content (``...CurrentVersion<hex>``, API Gateway
   ``Deployment<hex>``), the virtualenv folder keyed by the component's requirements and the Greengrass
   component version derived from the recipe's content. They follow the trained model's bytes and the
   build's inputs; the snapshot reviews the template's shape, and other tests check those values.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

MAX_LINE = 100
JSON_LINES_KEY = "<json lines>"
LONG_STRING_KEY = "<long string>"
JOIN_JSON_LINES_KEY = "<Fn::Join json lines>"

ASSET_HASH = re.compile(r"[0-9a-f]{64}")
MODEL_VERSION = re.compile(r"\b(v\d+)-[0-9a-f]{12}\b")
#: CDK logical ids end in 8 upper-case hex (the construct path); content-hashed ones add 32 lower-case hex.
CONTENT_LOGICAL_ID = re.compile(r"([0-9A-F]{8})[0-9a-f]{32}\b")
REQUIREMENTS_VENV = re.compile(r"\bvenv-[0-9a-f]{12}\b")
_TOKEN = re.compile(r"@@INTRINSIC_(\d+)@@")


def normalize(template: dict) -> str:
    """The snapshot text of ``template``: readable structure, then every content-derived value replaced."""
    scrub = _scrubber(component_versions(template))
    # Values are scrubbed before long ones are cut (a hash must not be cut in two), keys afterwards.
    return scrub(json.dumps(_expand(template, scrub), indent=2, sort_keys=True, ensure_ascii=False)) + "\n"


def _scrubber(versions: set[str]) -> Callable[[str], str]:
    def scrub(text: str) -> str:
        for version in sorted(versions, key=len, reverse=True):  # exact values, before the generic patterns
            prefix = version.rsplit(".", 1)[0]
            text = re.sub(rf"(?<![\d.]){re.escape(version)}(?![\d.])", f"{prefix}.<CONTENT_VERSION>", text)
        text = ASSET_HASH.sub("<ASSET_HASH>", text)
        text = CONTENT_LOGICAL_ID.sub(r"\1<CONTENT_HASH>", text)
        text = MODEL_VERSION.sub(r"\1-<MODEL_HASH>", text)
        return REQUIREMENTS_VENV.sub("venv-<REQUIREMENTS_HASH>", text)
    return scrub


def component_versions(template: dict) -> set[str]:
    """The ``ComponentVersion`` of every Greengrass component recipe in ``template`` (derived from content)."""
    found = set()
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::GreengrassV2::ComponentVersion":
            continue
        recipe = resource.get("Properties", {}).get("InlineRecipe")
        text = _joined_text(recipe)[0] if isinstance(recipe, dict) else recipe
        match = re.search(r'"ComponentVersion"\s*:\s*"([^"]+)"', text or "")
        if match and re.fullmatch(r"\d+\.\d+\.\d+", match.group(1)):
            found.add(match.group(1))
    return found


def _expand(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Fn::Join"}:
            lines = _join_as_json_lines(value, scrub)
            if lines is not None:
                return {JOIN_JSON_LINES_KEY: lines}
        return {key: _expand(item, scrub) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, scrub) for item in value]
    if isinstance(value, str):
        document = _as_json_document(value)
        if document is not None:
            return {JSON_LINES_KEY: _cut(json.dumps(document, indent=2, sort_keys=True).splitlines(), scrub)}
        value = scrub(value)
        if len(value) > MAX_LINE:
            return {LONG_STRING_KEY: _pieces(value)}
    return value


def _as_json_document(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, (dict, list)) and document else None


def _joined_text(join: dict) -> tuple[str | None, list[Any]]:
    """``Fn::Join`` as one text with ``@@INTRINSIC_n@@`` where intrinsics are, and those intrinsics."""
    try:
        separator, parts = join["Fn::Join"]
    except (TypeError, ValueError):
        return None, []
    if not isinstance(separator, str) or not isinstance(parts, list):
        return None, []
    intrinsics: list[Any] = []
    pieces = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
        else:
            pieces.append(f"@@INTRINSIC_{len(intrinsics)}@@")
            intrinsics.append(part)
    return separator.join(pieces), intrinsics


def _join_as_json_lines(join: dict, scrub: Callable[[str], str]) -> list[Any] | None:
    text, intrinsics = _joined_text(join)
    document = _as_json_document(text) if text is not None else None
    if document is None:
        return None
    pretty = json.dumps(document, indent=2, sort_keys=True)
    if len(_TOKEN.findall(pretty)) != len(intrinsics):  # a token was a key or got lost: keep the raw join
        return None
    lines = [_TOKEN.sub(lambda match: _show(intrinsics[int(match.group(1))]), line) for line in pretty.splitlines()]
    return _cut(lines, scrub)


def _show(intrinsic: Any) -> str:
    if isinstance(intrinsic, dict) and len(intrinsic) == 1:
        [(name, argument)] = intrinsic.items()
        if name == "Ref" and isinstance(argument, str):
            return f"«Ref {argument}»"
        if name == "Fn::GetAtt" and isinstance(argument, list) and all(isinstance(a, str) for a in argument):
            return f"«GetAtt {'.'.join(argument)}»"
    return f"«{json.dumps(intrinsic, sort_keys=True, separators=(',', ':'))}»"


def _cut(lines: list[str], scrub: Callable[[str], str]) -> list[Any]:
    scrubbed = [scrub(line) for line in lines]
    return [_pieces(line) if len(line) > MAX_LINE else line for line in scrubbed]


def _pieces(text: str) -> list[str]:
    """``text`` cut before spaces (or anywhere, if it has none) into pieces of at most :data:`MAX_LINE`."""
    pieces = []
    while len(text) > MAX_LINE:
        cut = text.rfind(" ", MAX_LINE // 2, MAX_LINE)
        cut = cut if cut > 0 else MAX_LINE
        pieces.append(text[:cut])
        text = text[cut:]
    return pieces + [text]


__all__ = ["normalize", "component_versions", "MAX_LINE"]
