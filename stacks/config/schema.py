"""Turns a plain dict (cdk.json context) into frozen dataclasses, collecting every error.

Each config dataclass declares its fields with type hints; constraints ride in field
metadata (``min``, ``max``, ``pattern``, ``choices``, ``help``). One pass over the whole
tree collects every problem with its dotted key path, so a user sees all of them at once.
"""
from __future__ import annotations

import dataclasses
import re
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class ConfigError(ValueError):
    """Raised once with every configuration problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        bullet_list = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"Invalid configuration ({len(self.problems)} problem(s)):\n{bullet_list}")


def constrained(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
                minimum: float | None = None, maximum: float | None = None,
                pattern: str | None = None, help: str = "") -> Any:
    """A dataclass field with range or pattern constraints checked by :func:`parse`."""
    metadata = {"min": minimum, "max": maximum, "pattern": pattern, "help": help}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in get_args(hint))
    if origin is tuple:
        return f"a list of {_type_name(get_args(hint)[0])}"
    if dataclasses.is_dataclass(hint):
        return "an object with keys " + ", ".join(f.name for f in dataclasses.fields(hint))
    if hint is type(None):
        return "null"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _check_range(value: Any, field: dataclasses.Field, path: str, errors: list[str]) -> None:
    lo, hi, pattern = field.metadata.get("min"), field.metadata.get("max"), field.metadata.get("pattern")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if lo is not None and value < lo or hi is not None and value > hi:
            bounds = f"between {lo} and {hi}" if lo is not None and hi is not None else (
                f">= {lo}" if lo is not None else f"<= {hi}")
            errors.append(f"{path}: must be {bounds}, got {value!r}")
    if isinstance(value, str) and pattern and not re.fullmatch(pattern, value):
        errors.append(f"{path}: {value!r} does not match {field.metadata.get('help') or pattern}")


class CliText(str):
    """A ``-c key=value`` override: text, read as JSON only where the field does not expect text."""


def _wants_text(hint: Any) -> bool:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_wants_text(arg) for arg in get_args(hint) if arg is not type(None))
    if origin is Literal:
        return all(isinstance(arg, str) for arg in get_args(hint))
    return hint is str


def _convert(hint: Any, raw: Any, path: str, errors: list[str]) -> Any:
    if isinstance(raw, CliText):
        # `-c deploy.target.account=123456789012` must stay text; `-c ...max_capacity=4` must become a number.
        nullable = type(None) in get_args(hint)
        raw = None if nullable and raw == "null" else str(raw) if _wants_text(hint) else coerce_override(raw)
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if raw is None and type(None) in options:
            return None
        non_null = [option for option in options if option is not type(None)]
        if len(non_null) == 1:
            return _convert(non_null[0], raw, path, errors)
    elif origin is Literal:
        if raw in get_args(hint):
            return raw
    elif origin is tuple:
        if isinstance(raw, (list, tuple)):
            item_hint = get_args(hint)[0]
            return tuple(_convert(item_hint, item, f"{path}[{index}]", errors) for index, item in enumerate(raw))
    elif dataclasses.is_dataclass(hint):
        if isinstance(raw, dict):
            return _parse_dataclass(hint, raw, path, errors)
    elif hint is bool:
        if isinstance(raw, bool):
            return raw
    elif hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    elif hint is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
    elif hint is str:
        if isinstance(raw, str):
            return raw
    elif hint is Any:
        return raw
    errors.append(f"{path}: must be {_type_name(hint)}, got {raw!r}")
    return None


def _parse_dataclass(cls: type, raw: dict, path: str, errors: list[str]) -> Any:
    hints = get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    prefix = f"{path}." if path else ""
    for unknown in sorted(set(raw) - set(fields)):
        errors.append(f"{prefix}{unknown}: unknown key; allowed keys are {', '.join(sorted(fields))}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        field_path = f"{prefix}{name}"
        if name not in raw:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                errors.append(f"{field_path}: required ({_type_name(hints[name])})")
            continue
        before = len(errors)
        value = _convert(hints[name], raw[name], field_path, errors)
        if len(errors) == before:
            _check_range(value, field, field_path, errors)
        if len(errors) == before:
            values[name] = value
    # Bad fields fall back to their defaults so cross-field checks still run and report too.
    try:
        instance = cls(**values)
    except TypeError as exc:  # a required field already reported above
        errors.append(f"{path or '<root>'}: {exc}")
        return None
    check = getattr(instance, "problems", None)
    if callable(check):
        errors.extend(f"{prefix}{problem}" for problem in check())
    return instance


def parse(cls: type, raw: Any, *, path: str = "") -> Any:
    """Parse ``raw`` into ``cls``; raise :class:`ConfigError` listing every problem."""
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{path or '<root>'}: must be an object, got {raw!r}"])
    instance = _parse_dataclass(cls, raw, path, errors)
    if errors:
        raise ConfigError(errors)
    return instance


def coerce_override(text: str) -> Any:
    """A ``-c key=value`` arrives as a string: read JSON literals (numbers, true, null, lists), else keep text."""
    import json

    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def apply_overrides(base: dict, overrides: dict[str, Any], *, root: str) -> tuple[dict, list[str]]:
    """Apply ``root.a.b=value`` context keys onto a deep copy of ``base``.

    Unknown paths are reported instead of silently creating keys.
    """
    import copy

    merged = copy.deepcopy(base)
    problems: list[str] = []
    for dotted, value in sorted(overrides.items()):
        parts = dotted.split(".")[1:]
        node = merged
        for part in parts[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                problems.append(f"{dotted}: cannot override inside {part!r}, which is not an object")
                break
            node = child
        else:
            node[parts[-1]] = CliText(value) if isinstance(value, str) else value
    return merged, problems


__all__ = ["CliText", "ConfigError", "constrained", "parse", "apply_overrides", "coerce_override"]
