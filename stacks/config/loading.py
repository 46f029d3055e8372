"""From CDK context to a validated configuration: defaults, the selected environment, ``-c`` overrides.

Order: ``deploy`` (cdk.json) <- ``deploy.environments.<env>`` (with ``-c env=<env>``, deep-merged) <- every
``-c deploy.<dotted.path>=<value>``. The result is validated once by the pydantic models; every problem is
reported at once, each with its dotted key path and what is allowed.
"""
from __future__ import annotations

import copy
import difflib
import json
import re
import types
from typing import Any, Literal, Mapping, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from stacks.config.base import PROBLEMS_ERROR, allowed_text

CONTEXT_KEY = "deploy"
ENV_CONTEXT_KEY = "env"
ENV_NAME_PATTERN = r"[a-z][a-z0-9]{0,19}"

THRESHOLD_FIX = ("the decision threshold lives only in the model's metadata.json: remove this key and repackage "
                 "the model with `python -m training.package --threshold <value>`")
#: Keys of earlier versions, refused with what to do instead (``*`` stands for a list index).
REMOVED_KEYS: dict[tuple[str, ...], str] = {
    ("edge", "score_threshold"): THRESHOLD_FIX,
    ("realtime", "monitor", "model_quality", "probability_threshold"): THRESHOLD_FIX,
    ("batch", "artifacts_dir"): "batch deploys deploy.model.artifacts_dir; remove this key",
    ("edge", "artifacts_dir"): "edge deploys deploy.model.artifacts_dir; remove this key",
    ("realtime", "variants", "*", "artifacts_dir"): (
        "variants describe instances and weights, not models: a second model is deploy.model.candidate_dir, served "
        "by the variants marked model: candidate; remove this key"),
    ("edge", "token_exchange_role_name"): (
        "moved to deploy.edge.token_exchange_role.name (with create: false to use an existing role)"),
}


class ConfigError(ValueError):
    """Raised once with every configuration problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        bullet_list = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"Invalid configuration ({len(self.problems)} problem(s)):\n{bullet_list}")


# --- reading the models' declarations -------------------------------------------------------------------------

def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; other annotations unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(options) == 1:
            return options[0]
    return annotation


def _fields_of(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's fields by the key users write (the alias where there is one, e.g. ``async``)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _field_at(root: type[BaseModel], path: tuple[str | int, ...]) -> FieldInfo | None:
    annotation: Any = root
    info = None
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
            if get_origin(annotation) in (tuple, list):
                annotation = get_args(annotation)[0]
                continue
            return None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        info = _fields_of(annotation).get(part)
        if info is None:
            return None
        annotation = info.annotation
    return info


def _model_at(root: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel] | None:
    if not path:
        return root
    info = _field_at(root, path)
    annotation = _unwrap(info.annotation) if info else None
    if get_origin(annotation) in (tuple, list) and path and isinstance(path[-1], int):
        annotation = get_args(annotation)[0]
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _wants_text(info: FieldInfo | None) -> bool:
    if info is None:
        return False
    annotation = _unwrap(info.annotation)
    if get_origin(annotation) is Literal:
        return all(isinstance(arg, str) for arg in get_args(annotation))
    return annotation is str


def _schema_path(path: tuple[str, ...]) -> tuple[str, ...]:
    """An environment's overrides have the shape of the whole tree: ``environments.<env>.x`` is read as ``x``."""
    return path[2:] if path[:1] == ("environments",) else path


def _default_tree(info: FieldInfo | None) -> Any:
    """A field's default as plain JSON-like data (objects as dicts, tuples as lists), ``{}`` when unknown."""
    if info is None or info.is_required():
        return {}
    value = info.get_default(call_default_factory=True)
    dumped = TypeAdapter(info.annotation).dump_python(value, by_alias=True, mode="json")
    return dumped if isinstance(dumped, (dict, list)) else {}


def cli_value(root: type[BaseModel], path: tuple[str, ...], text: str) -> Any:
    """A ``-c`` value arrives as text: JSON where it parses (numbers, true, null, lists, objects), else text.

    Keys that hold text keep it as typed (``-c deploy.target.account=012345678901`` stays a string, a version
    ``1.10`` is not read as the number 1.1); ``null`` still clears them.
    """
    if text == "null":
        return None
    if _wants_text(_field_at(root, _schema_path(path))):
        return text
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


# --- assembling the raw tree ------------------------------------------------------------------------------------

def deep_merge(base: Any, overlay: Any) -> Any:
    """``overlay`` on top of ``base``: objects merge key by key, anything else (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(overlay)


def apply_overrides(tree: dict, overrides: Mapping[str, Any], *, root: type[BaseModel]) -> tuple[dict, list[str]]:
    """Apply ``deploy.a.b=value`` context keys onto a copy of ``tree``; list items by index (``variants.0``)."""
    merged = copy.deepcopy(tree)
    problems: list[str] = []
    for dotted, value in sorted(overrides.items()):
        parts = tuple(dotted.split(".")[1:])
        if any(not part for part in parts):
            problems.append(f"{dotted}: empty key in the path")
            continue
        node: Any = merged
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    problems.append(f"{dotted}: {'.'.join(parts[:depth]) or CONTEXT_KEY} is a list of {len(node)} "
                                    f"item(s); use an index from 0 to {len(node) - 1}")
                    break
                key: Any = int(part)
            elif isinstance(node, dict):
                key = part
                if not last and not isinstance(node.get(key), (dict, list)):
                    if node.get(key) is not None:
                        problems.append(f"{dotted}: cannot override inside {part!r}, which is not an object")
                        break
                    # Not in cdk.json: start from the code's default, so `variants.0.x` edits the default list.
                    node[key] = _default_tree(_field_at(root, _schema_path(parts[:depth + 1])))
            else:  # pragma: no cover - guarded above
                break
            if last:
                node[key] = cli_value(root, parts, value) if isinstance(value, str) else value
            else:
                node = node[key]
    return merged, problems


def strip_removed_keys(tree: dict, path: tuple[str, ...] = ()) -> list[str]:
    """Remove keys of earlier versions from ``tree`` (in place) and say what replaced each."""
    found: list[str] = []
    for key in list(tree) if isinstance(tree, dict) else []:
        key_path = path + (key,)
        pattern = tuple("*" if part.isdigit() else part for part in key_path)
        if pattern in REMOVED_KEYS:
            found.append(f"{CONTEXT_KEY}.{'.'.join(key_path)}: no longer a setting; {REMOVED_KEYS[pattern]}")
            del tree[key]
        elif isinstance(tree[key], dict):
            found += strip_removed_keys(tree[key], key_path)
        elif isinstance(tree[key], list):
            for index, item in enumerate(tree[key]):
                if isinstance(item, dict):
                    found += strip_removed_keys(item, key_path + (str(index),))
    return found


def select_environment(tree: dict, env: str | None) -> tuple[dict, list[str]]:
    """Deep-merge ``environments.<env>`` onto the defaults; unknown names are refused with the known ones."""
    if env is None:
        return tree, []
    environments = tree.get("environments") or {}
    known = sorted(environments) if isinstance(environments, dict) else []
    if not isinstance(env, str) or not re.fullmatch(ENV_NAME_PATTERN, env):
        return tree, [f"{ENV_CONTEXT_KEY}: {env!r} is not an environment name (lower-case letters and digits, "
                      f"max 20); known environments: {', '.join(known) or 'none'}"]
    if env not in known:
        close = [name for name in known if name.startswith(env)] or difflib.get_close_matches(env, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return tree, [f"{ENV_CONTEXT_KEY}: unknown environment {env!r}; {hint}known environments (under "
                      f"{CONTEXT_KEY}.environments): {', '.join(known) or 'none'}"]
    overlay = environments[env]
    if not isinstance(overlay, dict):
        return tree, [f"{CONTEXT_KEY}.environments.{env}: must be an object of overrides, got {overlay!r}"]
    if "environments" in overlay:
        return tree, [f"{CONTEXT_KEY}.environments.{env}.environments: an environment cannot define environments"]
    return deep_merge(tree, overlay), []


# --- describing pydantic's errors -------------------------------------------------------------------------------

TYPE_NAMES = {"int": "an integer", "float": "a number", "bool": "true/false", "string": "a string",
              "dict": "an object", "model": "an object", "tuple": "a list", "list": "a list"}


def _dotted(loc: tuple[str | int, ...]) -> str:
    return ".".join([CONTEXT_KEY, *map(str, loc)])


def _bounds(info: FieldInfo | None) -> tuple[Any, Any]:
    lo = hi = None
    for item in info.metadata if info else ():
        lo = getattr(item, "ge", lo) if getattr(item, "ge", None) is not None else lo
        hi = getattr(item, "le", hi) if getattr(item, "le", None) is not None else hi
    return lo, hi


def describe(error: dict[str, Any], root: type[BaseModel]) -> list[str]:
    """One pydantic error as lines ``deploy.<path>: <what is wrong and what is allowed>``."""
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    path = _dotted(loc)
    if kind == PROBLEMS_ERROR:
        return [problem if problem.startswith(CONTEXT_KEY + ".") else f"{path}.{problem}" if loc
                else f"{CONTEXT_KEY}.{problem}" for problem in error["ctx"]["problems"]]
    if kind == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        allowed = sorted(_fields_of(parent)) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return [f"{path}: unknown key; {hint}allowed keys are {', '.join(allowed)}"]
    info = _field_at(root, loc)
    help_text = allowed_text(info)
    if kind == "missing":
        return [f"{path}: required" + (f" ({help_text})" if help_text else "")]
    if kind == "literal_error":
        return [f"{path}: must be one of {error['ctx']['expected'].replace(' or ', ', ')}, got {value!r}"]
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        lo, hi = _bounds(info)
        bounds = (f"between {lo} and {hi}" if lo is not None and hi is not None
                  else f">= {lo}" if lo is not None else f"<= {hi}")
        return [f"{path}: must be {bounds}, got {value!r}"]
    if kind == "multiple_of":
        return [f"{path}: must be {help_text or 'a multiple of ' + str(error['ctx']['multiple_of'])}, got {value!r}"]
    if kind == "string_pattern_mismatch":
        return [f"{path}: {value!r} does not match {help_text or error['ctx']['pattern']}"]
    for prefix, name in TYPE_NAMES.items():
        if kind.startswith(prefix + "_"):
            if name == "an object" and info is not None:
                model = _model_at(root, loc)
                if model is not None:
                    name = "an object with keys " + ", ".join(sorted(_fields_of(model)))
            return [f"{path}: must be {name}, got {value!r}"]
    return [f"{path}: {error['msg']}, got {value!r}"]


def validate(root: type[BaseModel], tree: dict, *, context: dict[str, Any]) -> Any:
    """Validate ``tree`` as ``root``; raise :class:`ConfigError` with every problem described."""
    try:
        return root.model_validate(tree, context=context)
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors(include_url=False):
            problems += [line for line in describe(error, root) if line not in problems]
        raise ConfigError(problems) from None


def assemble(context: Mapping[str, Any], *, root: type[BaseModel]) -> tuple[dict, str | None, list[str]]:
    """The raw ``deploy`` tree for ``context``: defaults, environment, overrides; and the problems found so far."""
    base = context.get(CONTEXT_KEY, {})
    if isinstance(base, str):  # `-c deploy=...` replaces the whole object as JSON text
        try:
            base = json.loads(base)
        except json.JSONDecodeError as exc:
            return {}, None, [f"{CONTEXT_KEY}: not valid JSON ({exc})"]
    if not isinstance(base, dict):
        return {}, None, [f"{CONTEXT_KEY}: must be an object, got {base!r}"]
    overrides = {key: value for key, value in context.items() if key.startswith(CONTEXT_KEY + ".")}
    environment_overrides = {key: value for key, value in overrides.items()
                             if key.startswith(f"{CONTEXT_KEY}.environments.")}
    tree, problems = apply_overrides(base, environment_overrides, root=root)
    env = context.get(ENV_CONTEXT_KEY)
    env = None if env in (None, "", "null") else env
    tree, env_problems = select_environment(tree, env)
    problems += env_problems
    tree, override_problems = apply_overrides(
        tree, {key: value for key, value in overrides.items() if key not in environment_overrides}, root=root)
    problems += override_problems
    problems += strip_removed_keys(tree)
    return tree, env, problems


__all__ = ["CONTEXT_KEY", "ENV_CONTEXT_KEY", "ConfigError", "apply_overrides", "assemble", "deep_merge",
           "describe", "select_environment", "validate"]
