"""Runs the synthesized state machine definition in moto's Step Functions interpreter.

moto executes Pass/Choice/Wait/Fail states, intrinsic functions, Retry/Catch, SNS publish and the
aws-sdk S3 integration against its in-memory services. It has no SageMaker ``.sync`` integration, so
:class:`FakeTransformJobs` plugs one in: it records every CreateTransformJob request the workflow
makes and answers from a script of outcomes (completed, an API error, or a job that ends FAILED).

Two moto deviations are bridged: ``$$.Execution.StartTime`` is made an ISO 8601 string (what Step
Functions passes, and what moto's own type annotation says), and the definition's tokens are
replaced by the names of the moto resources the test creates.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.validate import ParamValidator
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent, FailureEventException)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend import execution_worker

from tests.cfn_text import dollar_token
from tests.cfn_text import render as render_expression
from tests.conftest import shared_botocore_session

ACCOUNT = "123456789012"
REGION = "us-east-1"
COMPLETED = "completed"
#: The real CreateTransformJob request shape: every request the workflow makes is validated against it.
CREATE_TRANSFORM_JOB = shared_botocore_session().get_service_model("sagemaker").operation_model(
    "CreateTransformJob").input_shape
CAPACITY_FAILURE = "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."
#: How the optimized integration names SageMaker's unmodelled errors; the SDK message in the cause names the code.
GENERIC_ERROR = "SageMaker.AmazonSageMakerException"
#: The constraints CreateTransformJob puts on TransformJobName (botocore's validator checks neither).
JOB_NAME_RULE = CREATE_TRANSFORM_JOB.members["TransformJobName"].metadata["pattern"]
MAX_JOB_NAME = CREATE_TRANSFORM_JOB.members["TransformJobName"].metadata["max"]


def sdk_cause(message: str, code: str, status: int = 400) -> str:
    """A cause as the Java SDK behind the integration formats it."""
    return (f"{message} (Service: AmazonSageMaker; Status Code: {status}; Error Code: {code}; "
            "Request ID: 5d7b1f40-0000-4000-8000-000000000000; Proxy: null)")


@dataclass(frozen=True)
class ApiError:
    """CreateTransformJob itself fails (the job is never created), e.g. throttling.

    ``cause=None`` is an error that carries no Cause at all (Step Functions documents Cause as optional in
    error outputs; moto would otherwise bind an empty string).
    """
    error: str
    cause: str | None = "Rate exceeded"


@dataclass(frozen=True)
class CreatedDespiteError:
    """CreateTransformJob answers ``error`` (e.g. a 5xx after a timeout) although the job was created; the
    job then ends with ``outcome``."""
    error: ApiError
    outcome: Any = COMPLETED


@dataclass(frozen=True)
class JobFailed:
    """The job is created and ends FAILED with this FailureReason (the task fails with States.TaskFailed)."""
    reason: str


@dataclass
class FakeTransformJobs:
    """The scripted SageMaker: one outcome per CreateTransformJob call, COMPLETED once the script runs out.

    A job name SageMaker would refuse is answered with its ValidationException, before the script is consulted.
    """
    script: list[Any] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    #: Jobs SageMaker actually created, by name, with their outcome.
    created: dict[str, Any] = field(default_factory=dict)
    describe_calls: list[str] = field(default_factory=list)

    def create(self, parameters: dict) -> Any:
        report = ParamValidator().validate(parameters, CREATE_TRANSFORM_JOB)
        if report.has_errors():
            raise AssertionError(f"invalid CreateTransformJob request: {report.generate_report()}")
        self.requests.append(json.loads(json.dumps(parameters)))
        name = parameters["TransformJobName"]
        # The pattern alone does not bound hyphens; the API model's max length of 63 does.
        broken = [constraint for constraint, ok in (
            (f"Member must satisfy regular expression pattern: {JOB_NAME_RULE}", re.fullmatch(JOB_NAME_RULE, name)),
            (f"Member must have length less than or equal to {MAX_JOB_NAME}", len(name) <= MAX_JOB_NAME)) if not ok]
        if broken:
            return ApiError(GENERIC_ERROR, sdk_cause(
                f"1 validation error detected: Value '{name}' at 'transformJobName' failed to satisfy constraint: "
                f"{broken[0]}", "ValidationException"))
        if name in self.created:
            # What SageMaker answers for a name already used (the optimized integration's modelled error name).
            return ApiError("SageMaker.ResourceInUseException", sdk_cause(
                "Job name must be unique within an AWS account and region, and a job with this name already exists",
                "ResourceInUse"))
        outcome = self.script.pop(0) if self.script else COMPLETED
        if isinstance(outcome, CreatedDespiteError):
            self.created[name] = outcome.outcome
            return outcome.error
        if not isinstance(outcome, ApiError):
            self.created[name] = outcome
        return outcome

    def describe(self, name: str) -> dict:
        """DescribeTransformJob of a job this fake created (the workflow only describes jobs it created)."""
        self.describe_calls.append(name)
        outcome = self.created[name]
        description = {"TransformJobName": name, "TransformJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/{name}",
                       "TransformJobStatus": "Completed"}
        if isinstance(outcome, JobFailed):
            description.update(TransformJobStatus="Failed", FailureReason=outcome.reason)
        return description

    @property
    def created_names(self) -> list[str]:
        return list(self.created)

    @property
    def job_names(self) -> list[str]:
        return [request["TransformJobName"] for request in self.requests]


def _failure(env, error: str, cause: str | None, resource: str) -> FailureEvent:
    details = TaskFailedEventDetails(error=error, resource=resource, resourceType="sagemaker")
    if cause is not None:
        details["cause"] = cause
    name = StatesErrorName.from_name(error) if error.startswith("States.") else CustomErrorName(error)
    return FailureEvent(env=env, error_name=name, event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(taskFailedEventDetails=details))


class _ApiErrorRaised(Exception):
    def __init__(self, outcome: ApiError) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


#: The running test's scripted SageMaker (set by :func:`install`). The task services below look it up when they
#: run, not when the definition is parsed, because a parsed definition is reused by the tests that run it.
_CURRENT: dict[str, Any] = {}


def _jobs() -> Any:
    return _CURRENT["jobs"]


def service_class() -> type:
    """A moto task service for ``arn:aws:states:::sagemaker:createTransformJob.sync`` backed by the test's jobs."""

    class FakeSageMakerService(StateTaskServiceCallback):
        def __init__(self) -> None:
            super().__init__(supported_integration_patterns={ResourceCondition.WaitForTaskToken,
                                                             ResourceCondition.Sync})

        def _get_supported_parameters(self) -> set[str]:
            return set(CREATE_TRANSFORM_JOB.members)

        def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
            outcome = _jobs().create(normalised_parameters)
            if isinstance(outcome, ApiError):
                raise _ApiErrorRaised(outcome)
            name = normalised_parameters["TransformJobName"]
            env.stack.append({"TransformJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/{name}",
                              "_outcome": outcome, "_name": name})

        def _from_error(self, env, ex):
            if isinstance(ex, _ApiErrorRaised):
                return _failure(env, ex.outcome.error, ex.outcome.cause, self._get_sfn_resource())
            return super()._from_error(env, ex)

        def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials):
            submitted = env.stack.pop()

            def resolve():
                description = {"TransformJobName": submitted["_name"], "TransformJobArn": submitted["TransformJobArn"]}
                if isinstance(submitted["_outcome"], JobFailed):
                    description.update(TransformJobStatus="Failed", FailureReason=submitted["_outcome"].reason)
                    raise FailureEventException(FailureEvent(
                        env=env, error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                            error="States.TaskFailed", cause=json.dumps(description),
                            resource=self._get_sfn_resource(), resourceType="sagemaker"))))
                description["TransformJobStatus"] = "Completed"
                return description

            return resolve

    return FakeSageMakerService


def aws_sdk_class() -> type:
    """moto's aws-sdk integration, with ``sagemaker:describeTransformJob`` answered by the test's jobs."""

    class AwsSdkWithFakeSageMaker(StateTaskServiceAwsSdk):
        def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
            if (self.resource.api_name, self.resource.api_action) == ("sagemaker", "describeTransformJob"):
                env.stack.append(_jobs().describe(normalised_parameters["TransformJobName"]))
                return
            super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)

    return AwsSdkWithFakeSageMaker


_FAKES = {"sagemaker": service_class(), "aws-sdk": aws_sdk_class()}
#: Parsed definitions by their text. moto's ANTLR parser takes about 0.4 s for the batch workflow, and moto
#: parses again for every execution; its components keep no state of their own (retry counts and the like live
#: in each execution's environment), so one parse serves every execution of the same definition.
_PROGRAMS: dict[str, Any] = {}


def _parsed_once(worker: Any) -> Any:
    definition = worker._evaluation_details.state_machine_details.definition
    if definition not in _PROGRAMS:
        _PROGRAMS[definition] = AmazonStateLanguageParser.parse(definition)[0]
    return _PROGRAMS[definition]


def install(monkeypatch, jobs: FakeTransformJobs) -> None:
    """Route SageMaker tasks to ``jobs`` and give executions an ISO 8601 StartTime, for this test only."""
    monkeypatch.setitem(_CURRENT, "jobs", jobs)
    original_for = state_task_factory.state_task_service_for
    monkeypatch.setattr(state_task_factory, "state_task_service_for",
                        lambda service_name: _FAKES[service_name]() if service_name in _FAKES
                        else original_for(service_name))
    monkeypatch.setattr(execution_worker.ExecutionWorker, "_get_evaluation_entrypoint", _parsed_once)
    original_environment = execution_worker.ExecutionWorker._get_evaluation_environment

    def environment_with_iso_start_time(self):
        environment = original_environment(self)
        execution = environment.states.context_object.context_object_data["Execution"]
        if not isinstance(execution["StartTime"], str):
            execution["StartTime"] = execution["StartTime"].isoformat()
        return environment

    monkeypatch.setattr(execution_worker.ExecutionWorker, "_get_evaluation_environment",
                        environment_with_iso_start_time)
    original_error_output = ExecutionState._construct_error_output_value

    def error_output_without_invented_cause(failure_event):
        # moto binds "" for a missing Cause; keep the field absent when the failure had none (ApiError(cause=None)).
        output = original_error_output(failure_event)
        details = next(iter(failure_event.event_details.values()), {}) if failure_event.event_details else {}
        if isinstance(output, dict) and "cause" not in details:
            output.pop("Cause", None)
        return output

    monkeypatch.setattr(ExecutionState, "_construct_error_output_value",
                        staticmethod(error_output_without_invented_cause))


def render(value: Any, substitutions: dict[str, str]) -> str:
    """A CloudFormation string expression with tokens substituted (unknown ones stay ``${Name}``)."""
    return render_expression(value, token=lambda name: substitutions.get(name, dollar_token(name)))


def wait_for(client, execution_arn: str, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        description = client.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.05)
    raise TimeoutError(f"{execution_arn} still running after {timeout_s} s")
