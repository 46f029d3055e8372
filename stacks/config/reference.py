"""Writes the configuration reference (docs/configuration.md) from the pydantic models.

``python -m stacks.config.reference > docs/configuration.md``; a test keeps the file current.
"""
from __future__ import annotations

import inspect
import json
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from stacks.config import AppConfig
from stacks.config.base import allowed_text

INTRO = """# Configuration reference

<!-- Generated from the models: .venv/bin/python -m stacks.config.reference > docs/configuration.md -->

Every key lives under the `deploy` context key. `cdk.json` holds only what you choose; any other key takes
the default below (declared once, on the pydantic models in `stacks/config/`). Override any key for one
command with its dotted path, list items by index:

```sh
npx cdk synth -c deploy.model.artifacts_dir=artifacts/my-model
npx cdk synth -c deploy.realtime.variants.0.initial_weight=0.2 -c deploy.alerts.email=me@example.com
```

Values are read as JSON when they parse (numbers, `true`, `null`, lists, objects), otherwise as text; keys
that hold text keep what you typed (`-c deploy.target.account=012345678901`). A mistake stops synth with
exit code 2 and one line per problem, each naming its key, what is allowed and, for unknown keys, the
closest known one.

## The model is an input

`deploy.model.artifacts_dir` names a folder written by `python -m training.package`; that one key deploys
the model in all four patterns. Its `metadata.json` gives the model's name, features and decision
threshold. Names derive from the model's name (`fraud-detector` below) unless you set them:

| Name | Derived | Set with |
|---|---|---|
| stacks | `FraudDetector-Realtime`, `-Batch`, `-Edge`, `-Serverless` | `deploy.model.name` |
| endpoint | `fraud-detector-realtime` | `deploy.realtime.endpoint_name` |
| batch job prefix | `fraud-detector` | `deploy.batch.job_name_prefix` |
| Greengrass component | `com.example.FraudDetector` | `deploy.edge.component_name` |
| IPC topics | `fraud-detector/requests`, `/predictions`, `/errors` | `deploy.edge.topics.*` |
| serverless metrics namespace | `MLDeployPatterns/FraudDetector` | `deploy.serverless.metrics_namespace` |

The decision threshold lives only in `metadata.json` (repackage with `python -m training.package
--threshold`); the edge component and the model-quality monitor read it from there. Setting
`deploy.edge.score_threshold` or `deploy.realtime.monitor.model_quality.probability_threshold` is refused.

A second model is one key, `deploy.model.candidate_dir` (null by default, so one key deploys one model). It
is served by the real-time variants marked `model: candidate` (a canary at their weight, or a shadow with
`deploy.realtime.rollout: shadow`); batch and edge use the main model. Synth refuses a candidate trained on
another feature list (names or order).

## Environments

`-c env=<name>` deep-merges `deploy.environments.<name>` (any keys of `deploy`: account and region under
`target`, instance types, alert email, schedules...) on top of the defaults, before `-c deploy.*`
overrides. Stack names carry the environment (`FraudDetector-Staging-Realtime`), and so do the fixed
resource names that are derived: endpoint `fraud-detector-staging-realtime`, component
`com.example.FraudDetector.Staging`, job prefix `fraud-detector-staging`, state machine and dashboard
names. Names you set yourself are used as written, so set them per environment. Without `env` the names
are those above, so existing deployments are not replaced. An unknown name is refused with the known ones.
`cdk.json` ships `staging` and `production` examples (placeholder account ids: replace them):

```sh
npx cdk synth -c env=staging
npx cdk deploy --all -c env=production
```

Transform job prefixes allow 23 characters: `fraud-detector-production` does not fit, so the
`production` example sets `batch.job_name_prefix`.

## Keys
"""


def _type_text(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{arg}`" for arg in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_text(arg) for arg in get_args(annotation))
    if origin in (tuple, list):
        return f"list of {_type_text(get_args(annotation)[0])}"
    if origin is dict:
        return "object"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return {bool: "true/false", int: "integer", float: "number", str: "text"}.get(annotation, str(annotation))


def _allowed(info: FieldInfo) -> str:
    parts = []
    lo = hi = step = None
    for item in info.metadata:
        lo = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else lo
        hi = getattr(item, "le", None) if getattr(item, "le", None) is not None else hi
        step = getattr(item, "multiple_of", None) if getattr(item, "multiple_of", None) is not None else step
    if lo is not None or hi is not None:
        parts.append(f"{lo if lo is not None else '…'}–{hi if hi is not None else '…'}")
    if step is not None and not allowed_text(info):
        parts.append(f"multiple of {step}")
    if allowed_text(info):
        parts.append(allowed_text(info))
    if info.description:
        parts.append(" ".join(info.description.split()).replace("``", "`"))
    return "; ".join(parts).replace("|", "\\|")


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
        return "`" + json.dumps([item.model_dump(by_alias=True, mode="json") for item in value]) + "`"
    return "`" + json.dumps(value) + "`"


def _sections(model: type[BaseModel], path: str) -> list[str]:
    lines = [f"### `{path}`", "", inspect.cleandoc(model.__doc__ or "").replace("``", "`"), "",
             "| Key | Type | Default | Allowed, meaning |", "|---|---|---|---|"]
    nested: list[tuple[type[BaseModel], str]] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        annotation = info.annotation
        inner = get_args(annotation)[0] if get_origin(annotation) in (tuple, list) else annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            nested.append((inner, f"{path}.{key}" + (".<i>" if inner is not annotation else "")))
            if inner is annotation:
                lines.append(f"| `{key}` | object | | see `{path}.{key}` below |")
                continue
        lines.append(f"| `{key}` | {_type_text(annotation)} | {_default(info)} | {_allowed(info)} |")
    lines.append("")
    for child, child_path in nested:
        lines += _sections(child, child_path)
    return lines


def reference() -> str:
    return INTRO + "\n" + "\n".join(_sections(AppConfig, "deploy")).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
