"""What the synthesized templates say costs money: a plain reading of CloudFormation JSON, no CDK needed.

Each reader takes a template as a dict (``cdk.out/<stack>.template.json`` or ``Template.to_json()``) and
returns frozen facts; nothing here knows a price.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ops.cli import UsageError
from ops.cost.schedules import runs_per_month

PATTERNS = ("realtime", "batch", "serverless", "edge")


# -- reading cdk.out -------------------------------------------------------------------------------------------
def read_cloud_assembly(cdk_out: Path) -> dict[str, dict]:
    """The templates of ``cdk_out`` by pattern name (``realtime``, ``batch``, ``serverless``, ``edge``)."""
    manifest_file = cdk_out / "manifest.json"
    if not manifest_file.is_file():
        raise UsageError(f"no synthesized app in {cdk_out} (manifest.json missing): run `make synth` first, "
                         "or pass --cdk-out DIR")
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {manifest_file}: {error}") from None
    templates: dict[str, dict] = {}
    for name, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template_file = cdk_out / artifact.get("properties", {}).get("templateFile", f"{name}.template.json")
        try:
            template = json.loads(template_file.read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot read the template of stack {name}: {error}") from None
        pattern = pattern_of(template)
        if pattern is None:
            continue
        if pattern in templates:
            raise UsageError(f"two {pattern} stacks in {cdk_out} ({name} and another): price one app at a time")
        templates[pattern] = template
    if not templates:
        raise UsageError(f"no deployment-pattern stack in {cdk_out}: run `make synth` first")
    return templates


def assembly_region(cdk_out: Path) -> str | None:
    """The region every stack of ``cdk_out`` is bound to, or None (environment-agnostic or mixed)."""
    try:
        manifest = json.loads((cdk_out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    regions = {str(artifact.get("environment", "")).rsplit("/", 1)[-1]
               for artifact in manifest.get("artifacts", {}).values()
               if artifact.get("type") == "aws:cloudformation:stack"}
    return regions.pop() if len(regions) == 1 and not next(iter(regions)).startswith("unknown") else None


def pattern_of(template: dict) -> str | None:
    """Which deployment pattern a template deploys, recognised by its defining resource."""
    types = {resource.get("Type") for resource in _resources(template).values()}
    if "AWS::SageMaker::Endpoint" in types or "AWS::SageMaker::EndpointConfig" in types:
        return "realtime"
    if "AWS::GreengrassV2::ComponentVersion" in types:
        return "edge"
    if any(_transform_task(machine) for machine in _of_type(template, "AWS::StepFunctions::StateMachine").values()):
        return "batch"
    if types & {"AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api"}:
        return "serverless"
    return None


# -- facts -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Common:
    """What every stack may carry: keys, alarms, dashboards and log groups (retention in days, None = never)."""

    kms_keys: int = 0
    alarms: int = 0
    composite_alarms: int = 0
    dashboards: int = 0
    log_retention_days: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class InstanceVariant:
    """A production or shadow variant on instances: ``min_count`` run around the clock."""

    name: str
    instance_type: str
    min_count: int
    max_count: int
    weight: float
    shadow: bool = False
    async_inference: bool = False
    #: target tracking on SageMakerVariantInvocationsPerInstance (invocations per instance per minute)
    invocations_per_instance: float | None = None


@dataclass(frozen=True)
class ServerlessVariant:
    """A SageMaker Serverless Inference variant: billed per GB-second of compute, nothing idle."""

    name: str
    memory_mb: int
    max_concurrency: int
    provisioned_concurrency: int
    weight: float
    shadow: bool = False


@dataclass(frozen=True)
class MonitoringJob:
    """A Model Monitor schedule with its job definition's cluster."""

    name: str
    kind: str
    instance_type: str
    instance_count: int
    max_runtime_s: int
    runs_per_month: float


@dataclass(frozen=True)
class ScheduledFunction:
    """A Lambda function started on a schedule (the built-in drift job)."""

    name: str
    memory_mb: int
    architecture: str
    timeout_s: int
    runs_per_month: float


@dataclass(frozen=True)
class RealtimeFacts:
    instance_variants: tuple[InstanceVariant, ...]
    serverless_variants: tuple[ServerlessVariant, ...]
    capture_percent: float
    monitoring_jobs: tuple[MonitoringJob, ...]
    scheduled_functions: tuple[ScheduledFunction, ...]
    common: Common


@dataclass(frozen=True)
class BatchFacts:
    instance_type: str
    instance_count: int
    runs_per_month: float
    schedule: str | None
    transitions_per_run: int
    common: Common


@dataclass(frozen=True)
class FunctionFacts:
    name: str
    architecture: str
    memory_mb: int
    provisioned_concurrency: int
    snap_start: bool
    tracing: bool


@dataclass(frozen=True)
class ServerlessFacts:
    function: FunctionFacts
    api_type: str  # "REST" or "HTTP"
    throttle_rate_per_s: float | None
    scheduled_functions: tuple[ScheduledFunction, ...]
    common: Common


@dataclass(frozen=True)
class EdgeFacts:
    components: tuple[str, ...]
    common: Common


@dataclass(frozen=True)
class Deployment:
    """Everything the cost model needs from one synthesized app; a pattern absent from the app is None."""

    realtime: RealtimeFacts | None = None
    batch: BatchFacts | None = None
    serverless: ServerlessFacts | None = None
    edge: EdgeFacts | None = None
    notes: tuple[str, ...] = field(default=())


def read_deployment(templates: dict[str, dict]) -> Deployment:
    readers = {"realtime": read_realtime, "batch": read_batch, "serverless": read_serverless, "edge": read_edge}
    return Deployment(**{pattern: readers[pattern](template) for pattern, template in templates.items()})


def read_common(template: dict) -> Common:
    return Common(
        kms_keys=len(_of_type(template, "AWS::KMS::Key")),
        alarms=len(_of_type(template, "AWS::CloudWatch::Alarm")),
        composite_alarms=len(_of_type(template, "AWS::CloudWatch::CompositeAlarm")),
        dashboards=len(_of_type(template, "AWS::CloudWatch::Dashboard")),
        log_retention_days=tuple(_int_or_none(group.get("Properties", {}).get("RetentionInDays"))
                                 for group in _of_type(template, "AWS::Logs::LogGroup").values()))


def read_realtime(template: dict) -> RealtimeFacts:
    configs = _of_type(template, "AWS::SageMaker::EndpointConfig")
    if len(configs) != 1:
        raise UsageError(f"the real-time stack has {len(configs)} endpoint configs; the cost model reads exactly one")
    config = next(iter(configs.values())).get("Properties", {})
    targets = _scalable_targets(template)
    asynchronous = "AsyncInferenceConfig" in config
    instance_variants: list[InstanceVariant] = []
    serverless_variants: list[ServerlessVariant] = []
    for shadow, key in ((False, "ProductionVariants"), (True, "ShadowProductionVariants")):
        for variant in config.get(key) or []:
            name = str(variant.get("VariantName"))
            weight = float(variant.get("InitialVariantWeight", 1.0))
            serverless = variant.get("ServerlessConfig")
            if serverless:
                serverless_variants.append(ServerlessVariant(
                    name=name, memory_mb=int(serverless["MemorySizeInMB"]),
                    max_concurrency=int(serverless["MaxConcurrency"]),
                    provisioned_concurrency=int(serverless.get("ProvisionedConcurrency", 0)),
                    weight=weight, shadow=shadow))
                continue
            initial = int(variant.get("InitialInstanceCount", 1))
            target = targets.get(name, {})
            instance_variants.append(InstanceVariant(
                name=name, instance_type=str(variant["InstanceType"]),
                # a scalable target's minimum is what runs when idle; without one the initial count stays
                min_count=int(target.get("min", initial)), max_count=int(target.get("max", initial)),
                weight=weight, shadow=shadow, async_inference=asynchronous,
                invocations_per_instance=target.get("invocations_per_instance")))
    capture = config.get("DataCaptureConfig") or {}
    capture_percent = float(capture.get("InitialSamplingPercentage", 0)) if capture.get("EnableCapture", True) \
        and capture else 0.0
    return RealtimeFacts(instance_variants=tuple(instance_variants), serverless_variants=tuple(serverless_variants),
                         capture_percent=capture_percent, monitoring_jobs=_monitoring_jobs(template),
                         scheduled_functions=_scheduled_functions(template), common=read_common(template))


def read_batch(template: dict) -> BatchFacts:
    machines = {logical_id: machine for logical_id, machine in _of_type(template, "AWS::StepFunctions::StateMachine")
                .items() if _transform_task(machine)}
    if len(machines) != 1:
        raise UsageError(f"the batch stack has {len(machines)} state machines running a transform job; expected one")
    machine_id, machine = next(iter(machines.items()))
    definition = _definition(machine)
    _, task = _transform_task(machine)
    resources = task.get("Parameters", {}).get("TransformResources", {})
    if "InstanceType" not in resources or "InstanceCount" not in resources:
        raise UsageError("the batch state machine's CreateTransformJob sets no InstanceType/InstanceCount")
    schedules = [schedule for schedule in _schedules(template) if schedule[1] == machine_id]
    expression = schedules[0][0] if schedules else None
    return BatchFacts(instance_type=str(resources["InstanceType"]), instance_count=int(resources["InstanceCount"]),
                      runs_per_month=sum(runs_per_month(schedule[0]) for schedule in schedules),
                      schedule=expression, transitions_per_run=transitions_on_success(definition),
                      common=read_common(template))


def read_serverless(template: dict) -> ServerlessFacts:
    functions = _of_type(template, "AWS::Lambda::Function")
    api_function = _api_function(template)
    if api_function is None or api_function not in functions:
        raise UsageError("the serverless stack has no API method integrated with a Lambda function in the template")
    properties = functions[api_function].get("Properties", {})
    provisioned = sum(int((alias.get("Properties", {}).get("ProvisionedConcurrencyConfig") or {})
                          .get("ProvisionedConcurrentExecutions", 0))
                      for alias in _of_type(template, "AWS::Lambda::Alias").values()
                      if _refers_to(alias.get("Properties", {}).get("FunctionName"), api_function))
    snap_start = (properties.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions"
    function = FunctionFacts(
        name=api_function, architecture=(properties.get("Architectures") or ["x86_64"])[0],
        memory_mb=int(properties.get("MemorySize", 128)), provisioned_concurrency=provisioned,
        snap_start=snap_start, tracing=(properties.get("TracingConfig") or {}).get("Mode") == "Active")
    http_apis = [api for api in _of_type(template, "AWS::ApiGatewayV2::Api").values()
                 if api.get("Properties", {}).get("ProtocolType") == "HTTP"]
    api_type = "REST" if _of_type(template, "AWS::ApiGateway::RestApi") else "HTTP" if http_apis else "REST"
    rates = [setting.get("ThrottlingRateLimit") for stage in _of_type(template, "AWS::ApiGateway::Stage").values()
             for setting in stage.get("Properties", {}).get("MethodSettings", []) or []
             if setting.get("ThrottlingRateLimit") is not None]
    return ServerlessFacts(function=function, api_type=api_type,
                           throttle_rate_per_s=float(min(rates)) if rates else None,
                           scheduled_functions=_scheduled_functions(template), common=read_common(template))


def read_edge(template: dict) -> EdgeFacts:
    components = []
    for component in _of_type(template, "AWS::GreengrassV2::ComponentVersion").values():
        recipe = _render(component.get("Properties", {}).get("InlineRecipe", ""))
        match = re.search(r'"ComponentName"\s*:\s*"([^"]+)"', recipe)
        components.append(match.group(1) if match else "component")
    return EdgeFacts(components=tuple(components), common=read_common(template))


# -- Step Functions --------------------------------------------------------------------------------------------
def transitions_on_success(definition: dict) -> int:
    """State transitions of a run that succeeds first time: every state entered from StartAt to the end.

    A Choice on the success path follows its Default (the first run's usual branch is not knowable here);
    retries and catches are failures and are not counted.
    """
    states = definition.get("States", {})
    name, seen = definition.get("StartAt"), 0
    visited: set[str] = set()
    while name in states and name not in visited:
        visited.add(name)
        seen += 1
        state = states[name]
        if state.get("End") or state.get("Type") in ("Succeed", "Fail"):
            break
        name = state.get("Next") or state.get("Default")
    return seen


def _transform_task(machine: dict) -> tuple[str, dict] | None:
    definition = _definition(machine)
    for name, state in (definition.get("States") or {}).items():
        if state.get("Type") == "Task" and "createTransformJob" in str(state.get("Resource", "")):
            return name, state
    return None


def _definition(machine: dict) -> dict:
    properties = machine.get("Properties", {})
    if "Definition" in properties and isinstance(properties["Definition"], dict):
        return properties["Definition"]
    try:
        return json.loads(_render(properties.get("DefinitionString", "{}")))
    except ValueError:
        return {}


# -- schedules, functions, autoscaling, monitoring -------------------------------------------------------------
def _schedules(template: dict) -> list[tuple[str, str | None]]:
    """(schedule expression, logical id of the target) for every EventBridge rule and Scheduler schedule."""
    found: list[tuple[str, str | None]] = []
    for resource in _resources(template).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Scheduler::Schedule" and properties.get("State", "ENABLED") == "ENABLED":
            found.append((properties["ScheduleExpression"], _target_id((properties.get("Target") or {}).get("Arn"))))
        elif resource.get("Type") == "AWS::Events::Rule" and properties.get("ScheduleExpression") \
                and properties.get("State", "ENABLED") == "ENABLED":
            for target in properties.get("Targets") or []:
                found.append((properties["ScheduleExpression"], _target_id(target.get("Arn"))))
    return found


def _scheduled_functions(template: dict) -> tuple[ScheduledFunction, ...]:
    functions = _of_type(template, "AWS::Lambda::Function")
    aliases = _of_type(template, "AWS::Lambda::Alias")
    found = []
    for expression, target in _schedules(template):
        if target in aliases:
            target = _target_id(aliases[target].get("Properties", {}).get("FunctionName"))
        if target not in functions:
            continue
        properties = functions[target].get("Properties", {})
        found.append(ScheduledFunction(
            name=target, memory_mb=int(properties.get("MemorySize", 128)),
            architecture=(properties.get("Architectures") or ["x86_64"])[0],
            timeout_s=int(properties.get("Timeout", 3)), runs_per_month=runs_per_month(expression)))
    return tuple(found)


def _scalable_targets(template: dict) -> dict[str, dict[str, Any]]:
    """Variant name -> {min, max, invocations_per_instance} from the endpoint's scalable targets."""
    by_variant: dict[str, dict[str, Any]] = {}
    ids: dict[str, str] = {}
    for logical_id, target in _of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget").items():
        properties = target.get("Properties", {})
        if properties.get("ScalableDimension") != "sagemaker:variant:DesiredInstanceCount":
            continue
        match = re.search(r"/variant/([^/]+)$", _render(properties.get("ResourceId", "")))
        if match:
            by_variant[match.group(1)] = {"min": properties["MinCapacity"], "max": properties["MaxCapacity"]}
            ids[logical_id] = match.group(1)
    for policy in _of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values():
        properties = policy.get("Properties", {})
        variant = ids.get(_target_id(properties.get("ScalingTargetId")) or "")
        tracking = properties.get("TargetTrackingScalingPolicyConfiguration") or {}
        metric = (tracking.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
        if variant and metric == "SageMakerVariantInvocationsPerInstance":
            by_variant[variant]["invocations_per_instance"] = float(tracking["TargetValue"])
    return by_variant


_JOB_DEFINITIONS = {
    "AWS::SageMaker::DataQualityJobDefinition": "DataQuality",
    "AWS::SageMaker::ModelQualityJobDefinition": "ModelQuality",
    "AWS::SageMaker::ModelBiasJobDefinition": "ModelBias",
    "AWS::SageMaker::ModelExplainabilityJobDefinition": "ModelExplainability",
}


def _monitoring_jobs(template: dict) -> tuple[MonitoringJob, ...]:
    definitions: dict[str, dict] = {}
    for logical_id, resource in _resources(template).items():
        if resource.get("Type") in _JOB_DEFINITIONS:
            properties = resource.get("Properties", {})
            definitions[logical_id] = properties
            if isinstance(properties.get("JobDefinitionName"), str):
                definitions[properties["JobDefinitionName"]] = properties
    jobs = []
    for logical_id, schedule in _of_type(template, "AWS::SageMaker::MonitoringSchedule").items():
        config = schedule.get("Properties", {}).get("MonitoringScheduleConfig", {})
        expression = (config.get("ScheduleConfig") or {}).get("ScheduleExpression")
        if config.get("MonitoringJobDefinition"):  # inline (the schedule carries its own job)
            definition = config["MonitoringJobDefinition"]
            cluster = definition.get("MonitoringResources", {}).get("ClusterConfig", {})
        else:
            reference = config.get("MonitoringJobDefinitionName")
            definition = definitions.get(reference) if isinstance(reference, str) else \
                definitions.get(_target_id(reference) or "")
            if definition is None:
                raise UsageError(f"monitoring schedule {logical_id} names a job definition not in the template")
            cluster = definition.get("JobResources", {}).get("ClusterConfig", {})
        if not expression or not cluster:
            continue
        jobs.append(MonitoringJob(
            name=logical_id, kind=str(config.get("MonitoringType", "DataQuality")),
            instance_type=str(cluster["InstanceType"]), instance_count=int(cluster.get("InstanceCount", 1)),
            max_runtime_s=int((definition.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 3600)),
            runs_per_month=runs_per_month(expression)))
    return tuple(jobs)


def _api_function(template: dict) -> str | None:
    """The function behind the API: the first method integration (REST) or integration (HTTP) naming one."""
    functions = _of_type(template, "AWS::Lambda::Function")
    aliases = _of_type(template, "AWS::Lambda::Alias")
    integrations = [method.get("Properties", {}).get("Integration", {}).get("Uri")
                    for method in _of_type(template, "AWS::ApiGateway::Method").values()]
    integrations += [integration.get("Properties", {}).get("IntegrationUri")
                     for integration in _of_type(template, "AWS::ApiGatewayV2::Integration").values()]
    for uri in integrations:
        for logical_id in _references(uri):
            if logical_id in aliases:
                logical_id = _target_id(aliases[logical_id].get("Properties", {}).get("FunctionName"))
            if logical_id in functions:
                return logical_id
    return None


# -- CloudFormation helpers ------------------------------------------------------------------------------------
def _resources(template: dict) -> dict[str, dict]:
    return template.get("Resources") or {}


def _of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {logical_id: resource for logical_id, resource in _resources(template).items()
            if resource.get("Type") == resource_type}


def _target_id(value: Any) -> str | None:
    """The logical id a ``Ref`` / ``Fn::GetAtt`` points to (or a literal string as is)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            attribute = value["Fn::GetAtt"]
            return attribute[0] if isinstance(attribute, list) else str(attribute).split(".")[0]
    return None


def _references(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        target = _target_id(value)
        if target is not None:
            yield target
        for inner in value.values():
            yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def _refers_to(value: Any, logical_id: str) -> bool:
    return logical_id in set(_references(value))


def _render(value: Any) -> str:
    """A CloudFormation string expression as text, every token replaced by a placeholder."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(_render(part) for part in parts)
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return text
        return "TOKEN"
    return str(value)


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None
