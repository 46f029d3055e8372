"""Batch scoring: a Step Functions state machine that runs a SageMaker Batch Transform job (``.sync``).

One execution scores every CSV object under an S3 prefix and writes, under
``s3://<output>/predictions/<yyyy-mm-dd>/<model version>/<execution name>/``, one ``<object>.out``
per input object (``<id>,<probability>`` per line) and ``manifest.json`` with the run's provenance.
With a :class:`DriftCheck`, the built-in drift job then compares the run's input and predictions with the
model's training baseline and the manifest links its report (``drift.report``).

Why a hand-written task state and not ``tasks.SageMakerCreateTransformJob``: that L2 cannot render
``DataProcessing`` (InputFilter/JoinSource/OutputFilter), which keeps row identifiers next to their
predictions, and its default role carries AmazonSageMakerFullAccess. The permissions the ``.sync``
integration needs are granted here explicitly, following the Step Functions developer guide
("IAM policies for SageMaker: CreateTransformJob, synchronous").
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ml_constructs.common.instance_types import has_instance_storage
from ml_constructs.common.model_package import ModelPackage
from ml_constructs.common.naming import nag_resource_name

DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
DEFAULT_INSTANCE_COUNT = 4
DEFAULT_MAX_PAYLOAD_MB = 6
#: One request per vCPU of an ml.m5.xlarge: the scikit-learn container starts one worker per vCPU.
DEFAULT_MAX_CONCURRENT_TRANSFORMS = 4
MAX_CONCURRENT_PAYLOAD_MB = 100
MAX_JOB_NAME_LENGTH = 63
#: Execution names from EventBridge Scheduler and the console are UUID-shaped (36 characters).
EXECUTION_NAME_LENGTH = 36
#: ``-<attempt>``: one digit (capacity retries are capped below 10); API retries reuse the name.
JOB_NAME_SUFFIX_LENGTH = 2
MAX_JOB_NAME_PREFIX_LENGTH = MAX_JOB_NAME_LENGTH - EXECUTION_NAME_LENGTH - 1 - JOB_NAME_SUFFIX_LENGTH
PREDICTIONS_PREFIX = "predictions"
MANIFEST_FILE = "manifest.json"
CSV = "text/csv"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
#: The rule Step Functions creates to learn when a transform job ends (the ``.sync`` pattern).
SYNC_EVENTS_RULE = "StepFunctionsGetEventsForSageMakerTransformJobsRule"
#: API errors retried with backoff. The optimized integration reports SageMaker's unmodelled errors, throttling
#: and ValidationException alike, as one generic name; only its cause (the SDK message, "... (Service:
#: AmazonSageMaker; Status Code: 400; Error Code: ThrottlingException; ...)") tells them apart, so that name
#: is retried only with a transient cause. A ValidationException (bad name, model or input) never clears.
GENERIC_API_ERROR = "SageMaker.AmazonSageMakerException"
THROTTLING_ERRORS = ("ThrottlingException", "SageMaker.ThrottlingException")
TRANSIENT_CAUSE_PATTERNS = ("*ThrottlingException*", "*Rate exceeded*", "*Status Code: 5*", "*InternalFailure*",
                            "*ServiceUnavailable*")
API_RETRY_MAX_DELAY = cdk.Duration.minutes(10)
#: Account quota reached (e.g. instances of this type in use by other jobs); it clears as they finish.
RESOURCE_LIMIT_ERRORS = ("SageMaker.ResourceLimitExceededException", "SageMaker.ResourceLimitExceeded")
RESOURCE_LIMIT_INTERVAL = cdk.Duration.minutes(5)
RESOURCE_LIMIT_MAX_ATTEMPTS = 3
#: A created job that failed to get instances ends FAILED with FailureReason "CapacityError: ...".
CAPACITY_CAUSE_PATTERNS = ("*CapacityError*", "*InsufficientCapacity*")
MAX_SINGLE_DIGIT = 9
#: CreateTransformJob's answer when the name is taken: a retried call whose first attempt did create the job.
JOB_EXISTS_ERROR = "SageMaker.ResourceInUseException"
JOB_EXISTS_CAUSE_PATTERN = "*Error Code: ResourceInUse*"
EXISTING_JOB_POLL_INTERVAL = cdk.Duration.minutes(1)
#: What a failure without an Error or a Cause field reports instead of the missing field.
UNKNOWN_ERROR = "BatchScoring.UnknownError"
NO_CAUSE = "The failed step reported no cause"
#: SageMaker lower-cases job names in their ARNs (``transform-job/<lower-case name>``), and IAM compares ARNs
#: case-sensitively: a prefix with capitals would never match the job it names. So the prefix is lower case.
JOB_NAME_PREFIX_PATTERN = re.compile(r"[a-z0-9](-*[a-z0-9])*")
LOG_GROUP_PREFIX = "/aws/vendedlogs/states/"
FORMAT_UNSAFE = re.compile(r"['{}\\]")


@dataclass(frozen=True, kw_only=True)
class TransformSettings:
    """How the transform job runs: instances, request packing and the row identifier column."""

    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = DEFAULT_INSTANCE_COUNT
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB
    """Lines are packed into requests of at most this size (``BatchStrategy: MultiRecord``)."""
    max_concurrent_transforms: int = DEFAULT_MAX_CONCURRENT_TRANSFORMS
    id_column: int | None = 0
    """0-based input column excluded from the features and written next to the prediction; None keeps every
    column as a feature and the whole input row in the output."""
    job_timeout: cdk.Duration = cdk.Duration.hours(6)


@dataclass(frozen=True, kw_only=True)
class DriftCheck:
    """A drift step after each successful transform of the deployed model: ``function`` is the built-in drift
    job (``ml_constructs.monitoring.DriftMonitor(..., source=DriftSource(format="batch"))``.function), invoked
    with the run's ``input_uri`` and ``output_uri``.

    Its outcome never changes the run's: predictions are already written, so a failing drift step is recorded
    in the SUCCEEDED manifest (``drift.status = "failed"`` with the error) and the run still succeeds; the
    drift job's own stalled alarm reports a job that keeps failing. Candidate-model runs skip the step (their
    scores are not the deployed model's traffic, and would publish into its metrics)."""

    function: lambda_.IFunction
    timeout: cdk.Duration = cdk.Duration.minutes(16)
    """Longer than the job's own 15-minute Lambda timeout, so Lambda's own timeout error is what is recorded."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff for API errors; capacity failures start a new job after a doubling wait.

    ``max_attempts`` bounds API retries (throttling, 5xx faults, account quota) per run; quota errors get at
    most 3 of them, starting at 5 minutes.
    """

    max_attempts: int = 4
    interval: cdk.Duration = cdk.Duration.seconds(30)
    backoff_rate: float = 2.0
    capacity_retries: int = 2
    capacity_wait: cdk.Duration = cdk.Duration.minutes(15)

    def api_waits(self) -> list[int]:
        """Seconds to wait before each API retry: interval * backoff_rate ** n, capped at 10 minutes."""
        return _backoff(self.interval, self.backoff_rate, self.max_attempts, cap=API_RETRY_MAX_DELAY)

    def resource_limit_waits(self) -> list[int]:
        """Seconds to wait before each retry after a quota error: 5 minutes, then backing off."""
        attempts = min(self.max_attempts, RESOURCE_LIMIT_MAX_ATTEMPTS)
        return _backoff(RESOURCE_LIMIT_INTERVAL, self.backoff_rate, attempts)


def _backoff(interval: cdk.Duration, rate: float, attempts: int, cap: cdk.Duration | None = None) -> list[int]:
    waits = [int(interval.to_seconds() * rate ** attempt) for attempt in range(attempts)]
    return [min(wait, int(cap.to_seconds())) for wait in waits] if cap else waits


@dataclass(frozen=True, kw_only=True)
class ScoringStorage:
    """Where rows come from and predictions go; ``data_key`` encrypts predictions, manifests and volumes."""

    input_bucket: s3.IBucket
    output_bucket: s3.IBucket
    data_key: kms.IKey
    input_key: kms.IKey | None = None
    """The input bucket's SSE-KMS key, if any (the job reads with kms:Decrypt)."""
    default_input_prefix: str = "input/"

    @property
    def default_input_uri(self) -> str:
        return f"s3://{self.input_bucket.bucket_name}/{self.default_input_prefix}"

    @property
    def predictions_uri(self) -> str:
        return f"s3://{self.output_bucket.bucket_name}/{PREDICTIONS_PREFIX}/"


def data_processing(id_column: int | None, n_features: int) -> dict[str, str]:
    """Batch Transform ``DataProcessing`` for CSV rows of ``n_features`` features plus an optional ID column.

    The container sees only the feature columns; each output line is ``<id>,<probability>`` (or the whole
    input row followed by the probability when there is no ID column). Index lists rather than closed slices
    are used because the documentation and JsonPath disagree on whether a slice end is inclusive.
    """
    if id_column is None:
        return {"JoinSource": "Input"}
    if not 0 <= id_column <= n_features:
        raise ValueError(f"id_column {id_column} is outside the {n_features + 1} input columns (0..{n_features})")
    if id_column == 0:
        input_filter = "$[1:]"
    else:
        input_filter = "$[" + ",".join(str(index) for index in range(n_features + 1) if index != id_column) + "]"
    return {"InputFilter": input_filter, "JoinSource": "Input", "OutputFilter": f"$[{id_column},-1]"}


def _validate(*, package: ModelPackage, job_name_prefix: str, transform: TransformSettings, retry: RetryPolicy,
              storage: ScoringStorage, execution_timeout: cdk.Duration) -> None:
    problems: list[str] = []
    if len(job_name_prefix) > MAX_JOB_NAME_PREFIX_LENGTH or not JOB_NAME_PREFIX_PATTERN.fullmatch(job_name_prefix):
        problems.append(f"job_name_prefix {job_name_prefix!r} must be lower-case letters, digits and hyphens, at "
                        f"most {MAX_JOB_NAME_PREFIX_LENGTH} characters (the job name holds 63 with the execution "
                        "name; SageMaker lower-cases job ARNs, which the role's policy must match)")
    if not 1 <= transform.instance_count <= 100:
        problems.append(f"instance_count must be 1..100, got {transform.instance_count}")
    if not 1 <= transform.max_payload_mb <= 100:
        problems.append(f"max_payload_mb must be 1..100, got {transform.max_payload_mb}")
    if transform.max_concurrent_transforms * transform.max_payload_mb > MAX_CONCURRENT_PAYLOAD_MB:
        problems.append(f"max_concurrent_transforms * max_payload_mb must not exceed {MAX_CONCURRENT_PAYLOAD_MB} MB")
    n_features = package.metadata.n_features
    if transform.id_column is not None and not 0 <= transform.id_column <= n_features:
        problems.append(f"id_column {transform.id_column} is outside the {n_features + 1} input columns "
                        f"(0..{n_features}: {n_features} features plus the ID)")
    if retry.max_attempts > MAX_SINGLE_DIGIT or retry.capacity_retries > MAX_SINGLE_DIGIT:
        problems.append("max_attempts and capacity_retries must each be at most 9 (one digit in the job name)")
    if FORMAT_UNSAFE.search(package.model_version) or FORMAT_UNSAFE.search(storage.default_input_prefix):
        problems.append("model version and input prefix must not contain quotes, braces or backslashes")
    if transform.job_timeout.to_minutes() >= execution_timeout.to_minutes():
        problems.append("job_timeout must be shorter than the execution timeout")
    if problems:
        raise ValueError("BatchScoring: " + "; ".join(problems))


class BatchScoring(Construct):
    """A SageMaker model plus the state machine that scores an S3 prefix with it, one transform job per run.

    Execution input (all optional): ``{"input_uri": "s3://bucket/prefix/", "run_date": "yyyy-mm-dd",
    "model": {"name": "<SageMaker model>", "version": "<label>"}}``; defaults are ``storage.default_input_uri``,
    the UTC date the execution started and this construct's model. ``model`` scores the input with another
    SageMaker model (a candidate) into ``predictions/<date>/<its version>/<execution>/``, for comparison
    (``python -m ops.compare``); the job runs as that model's execution role, which must read the input and
    write the predictions prefix with the data key as ``model_role`` does. Failures publish to
    ``alert_topic`` with the execution and the reason, write a FAILED manifest and fail the execution.
    Input objects are only ever read.

    The execution name becomes part of the transform job name (``<prefix>-<execution name>-<attempt>``),
    so callers of StartExecution must name executions with letters, digits and hyphens only (no ``_``, not
    starting or ending with a hyphen) and at most 36 characters; a UUID (Scheduler, console default) or
    ``ops.batch``'s ``manual-<date>-<hex>`` qualifies. Any other name fails the run at CreateTransformJob
    with a ValidationException, which is reported at once (never retried).

    ``storage.data_key`` also encrypts the state machine's log group: its key policy gets a statement letting
    CloudWatch Logs use it for that one log group, so it must be a key defined in this app, not an imported one.
    """

    def __init__(self, scope: Construct, construct_id: str, *, package: ModelPackage, storage: ScoringStorage,
                 alert_topic: sns.ITopic, job_name_prefix: str, state_machine_name: str | None = None,
                 transform: TransformSettings = TransformSettings(), retry: RetryPolicy = RetryPolicy(),
                 execution_timeout: cdk.Duration = cdk.Duration.hours(12), drift: DriftCheck | None = None) -> None:
        super().__init__(scope, construct_id)
        _validate(package=package, job_name_prefix=job_name_prefix, transform=transform, retry=retry,
                  storage=storage, execution_timeout=execution_timeout)
        self.package = package
        self.storage = storage
        self.transform = transform
        self.retry = retry
        self.job_name_prefix = job_name_prefix
        self.alert_topic = alert_topic
        self.drift = drift
        self.model_version = package.model_version
        self.data_processing = data_processing(transform.id_column, package.metadata.n_features)
        self.volume_key = None if has_instance_storage(transform.instance_type) else storage.data_key

        self.model_role = iam.Role(self, "ModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                                   description=f"Runs {job_name_prefix} batch transform jobs: reads input, "
                                               "writes predictions")
        self._grant_model_role()
        self.model = sagemaker.CfnModel(
            self, "Model", execution_role_arn=self.model_role.role_arn, enable_network_isolation=True,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=package.image_uri, model_data_url=package.model_data_url, environment=package.environment))
        self.model.node.add_dependency(self.model_role)  # CreateModel checks the image and artifact with the role

        self.role = iam.Role(self, "StateMachineRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                             description=f"Starts and watches {job_name_prefix} transform jobs, writes manifests, "
                                         "publishes failures")
        self._grant_state_machine_role()
        # ALL with execution data puts input URIs, errors and manifests in the log for a year: encrypted with
        # the data key, readable only by whoever may decrypt with it.
        log_group_name = LOG_GROUP_PREFIX + (state_machine_name or f"{job_name_prefix}-batch")
        self._let_logs_use_key(log_group_name)
        self.log_group = logs.LogGroup(
            self, "Logs", log_group_name=log_group_name, encryption_key=storage.data_key,
            retention=logs.RetentionDays.ONE_YEAR, removal_policy=cdk.RemovalPolicy.RETAIN)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine", state_machine_name=state_machine_name, role=self.role,
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            timeout=execution_timeout, tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True))
        self._acknowledge_wildcards()

    # -- the workflow -----------------------------------------------------------------------------------------------
    def _definition(self) -> sfn.IChainable:
        version = self.model_version
        output_bucket = self.storage.output_bucket.bucket_name
        run_prefix = f"{PREDICTIONS_PREFIX}/{{}}/{{}}/{{}}/"

        read_request = sfn.Pass(self, "ReadRequest", comment="Defaults for every optional input field", parameters={
            "defaults": {
                "input_uri": self.storage.default_input_uri,
                # $$.Execution.StartTime is ISO 8601 in UTC: the part before "T" is the run date.
                "run_date.$": "States.ArrayGetItem(States.StringSplit($$.Execution.StartTime, 'T'), 0)",
                # The deployed model; a run may name another (a candidate) as {"name", "version"}. The merge
                # is shallow, so a request's "model" replaces this one whole: a request missing the version
                # fails at PlanRun before any job starts, rather than filing a candidate under this version.
                "model": {"name": self.model.attr_model_name, "version": version},
            },
            "request.$": "$$.Execution.Input",
            "retry": {"attempt": 0, "wait_s": int(self.retry.capacity_wait.to_seconds())},
            "api_retry": {"count": 0, "wait_s": 0},
        })
        merge_defaults = sfn.Pass(self, "MergeDefaults", parameters={
            "merged.$": "States.JsonMerge($.defaults, $.request, false)", "retry.$": "$.retry",
            "api_retry.$": "$.api_retry"})
        plan_run = sfn.Pass(self, "PlanRun", comment="Where this run reads and writes", result_path="$.run",
                            parameters={
                                "input_uri.$": "$.merged.input_uri",
                                "run_date.$": "$.merged.run_date",
                                "model_name.$": "$.merged.model.name",
                                "model_version.$": "$.merged.model.version",
                                "output_uri.$": f"States.Format('s3://{output_bucket}/{run_prefix}', "
                                                "$.merged.run_date, $.merged.model.version, $$.Execution.Name)",
                                "manifest_key.$": f"States.Format('{run_prefix}{MANIFEST_FILE}', "
                                                  "$.merged.run_date, $.merged.model.version, $$.Execution.Name)",
                            })

        score = self._transform_task()
        build_manifest = sfn.Pass(self, "BuildManifest", result_path="$.manifest",
                                  parameters=self._manifest_fields(status="SUCCEEDED"))
        # A scored run (a job of ours that completed, or one found already done) goes through the drift step.
        after_scoring = self._drift_step(build_manifest) if self.drift is not None else build_manifest
        retryable = sfn.Choice(self, "RetryableFailure?",
                               comment="Transient API errors and quota: same job again after a backoff; "
                                       "no capacity: a new job after a longer wait; anything else is reported")
        wait_to_retry = sfn.Wait(self, "WaitToRetry", time=sfn.WaitTime.seconds_path("$.api_retry.wait_s"))
        wait_for_capacity = sfn.Wait(self, "WaitForCapacity",
                                     time=sfn.WaitTime.seconds_path("$.retry.wait_s"))
        count_attempt = sfn.Pass(self, "CountAttempt", result_path="$.retry", parameters={
            "attempt.$": "States.MathAdd($.retry.attempt, 1)",
            "wait_s.$": "States.MathAdd($.retry.wait_s, $.retry.wait_s)",
        })

        notify_failure = self._notify_failure_task()
        # Every failure path reads $.error.Error and $.error.Cause; an error output may lack either (a task
        # timeout, an error with no cause), and reading a missing field is an uncatchable States.Runtime that
        # would skip the alert and the FAILED manifest. So the error is completed with defaults first.
        error_defaults = sfn.Pass(self, "ErrorDefaults", result_path="$.error_defaults",
                                  result=sfn.Result.from_object({"Error": UNKNOWN_ERROR, "Cause": NO_CAUSE}))
        complete_error = sfn.Pass(self, "CompleteError", comment="Error and Cause always present from here on",
                                  parameters={
                                      "error.$": "States.JsonMerge($.error_defaults, $.error, false)",
                                      "run.$": "$.run", "retry.$": "$.retry", "api_retry.$": "$.api_retry"})
        error_defaults.next(complete_error).next(notify_failure)
        build_failed_manifest = sfn.Pass(self, "BuildFailedManifest", result_path="$.manifest",
                                         parameters=self._manifest_fields(status="FAILED"))
        write_failed_manifest = self._write_manifest_task("WriteFailedManifest")
        run_failed = sfn.Fail(self, "RunFailed", error="BatchScoringFailed", cause_path="$.error.Cause")

        write_manifest = self._write_manifest_task("WriteManifest")
        run_succeeded = sfn.Succeed(self, "RunSucceeded", output_path="$.manifest")

        score.add_catch(retryable, errors=["States.ALL"], result_path="$.error")
        write_manifest.add_catch(error_defaults, errors=["States.ALL"], result_path="$.error")
        notify_failure.add_catch(build_failed_manifest, errors=["States.ALL"], result_path="$.notify_error")
        write_failed_manifest.add_catch(run_failed, errors=["States.ALL"], result_path="$.manifest_error")

        # Choice rules are tried in order: once the first has ruled out a missing Cause, the others may read it.
        retryable.when(sfn.Condition.is_not_present("$.error.Cause"), error_defaults)
        # The modelled error name, or the generic one with SageMaker's error code in the cause (see GENERIC_API_ERROR).
        retryable.when(sfn.Condition.or_(
            sfn.Condition.string_equals("$.error.Error", JOB_EXISTS_ERROR),
            sfn.Condition.and_(sfn.Condition.string_equals("$.error.Error", GENERIC_API_ERROR),
                               sfn.Condition.string_matches("$.error.Cause", JOB_EXISTS_CAUSE_PATTERN))),
            self._existing_job_states(on_failure=retryable, on_success=after_scoring))
        api_retries = self.retry.api_waits()
        if api_retries:
            transient = sfn.Condition.or_(
                *(sfn.Condition.string_equals("$.error.Error", name) for name in THROTTLING_ERRORS),
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.error.Error", GENERIC_API_ERROR),
                    sfn.Condition.or_(*(sfn.Condition.string_matches("$.error.Cause", pattern)
                                        for pattern in TRANSIENT_CAUSE_PATTERNS))))
            retryable.when(sfn.Condition.and_(
                transient, sfn.Condition.number_less_than("$.api_retry.count", len(api_retries))),
                self._back_off("BackOffApiError", api_retries).next(wait_to_retry))
            quota_retries = self.retry.resource_limit_waits()
            retryable.when(sfn.Condition.and_(
                sfn.Condition.or_(*(sfn.Condition.string_equals("$.error.Error", name)
                                    for name in RESOURCE_LIMIT_ERRORS)),
                sfn.Condition.number_less_than("$.api_retry.count", len(quota_retries))),
                self._back_off("BackOffQuota", quota_retries).next(wait_to_retry))
            wait_to_retry.next(score)
        retryable.when(sfn.Condition.and_(
            sfn.Condition.number_less_than("$.retry.attempt", self.retry.capacity_retries),
            sfn.Condition.or_(*(sfn.Condition.string_matches("$.error.Cause", pattern)
                                for pattern in CAPACITY_CAUSE_PATTERNS))),
            wait_for_capacity)
        retryable.otherwise(error_defaults)
        wait_for_capacity.next(count_attempt)
        count_attempt.next(score)
        notify_failure.next(build_failed_manifest).next(write_failed_manifest).next(run_failed)

        chain = read_request.next(merge_defaults).next(plan_run).next(score).next(after_scoring)
        build_manifest.next(write_manifest).next(run_succeeded)
        return chain

    def _drift_step(self, then: sfn.IChainable) -> sfn.Choice:
        """Deployed model: run the drift job and record its outcome in ``$.drift``; a candidate: skip it.

        Every path ends in ``then`` (the SUCCEEDED manifest): the drift outcome is information about the run,
        never a reason to lose its predictions."""
        assert self.drift is not None
        check = tasks.LambdaInvoke(
            self, "CheckDrift", lambda_function=self.drift.function, comment="Built-in drift job over this run",
            payload=sfn.TaskInput.from_object({
                "input_uri": sfn.JsonPath.string_at("$.run.input_uri"),
                "output_uri": sfn.JsonPath.string_at("$.run.output_uri"),
                "window_end": sfn.JsonPath.string_at("$$.State.EnteredTime"),
                "execution": sfn.JsonPath.string_at("$$.Execution.Name"),
            }),
            result_selector={"status.$": "$.Payload.status", "drift.$": "$.Payload.drift",
                             "drifted_features.$": "$.Payload.drifted_features",
                             "invalid_rate.$": "$.Payload.invalid_rate", "rows_seen.$": "$.Payload.rows_seen",
                             "report.$": "$.Payload.report"},
            result_path="$.drift", task_timeout=sfn.Timeout.duration(self.drift.timeout),
            retry_on_service_exceptions=True)
        # Reserved concurrency 1: a scheduled or manual run of the same job may hold the one slot for a while.
        check.add_retry(errors=["Lambda.TooManyRequestsException"], interval=cdk.Duration.seconds(30),
                        max_attempts=5, backoff_rate=2.0)
        failed = sfn.Pass(self, "DriftCheckFailed", result_path="$.drift", parameters={
            "status": "failed", "error.$": "$.drift_error.Error", "cause.$": "$.drift_error.Cause"})
        check.add_catch(failed, errors=["States.ALL"], result_path="$.drift_error")
        skipped = sfn.Pass(self, "NoDriftCheck", result_path="$.drift", parameters={
            "status": "skipped", "reason": "a candidate model's run: drift is measured for the deployed model"})
        deployed = sfn.Choice(self, "DeployedModel?", comment="Drift is measured on the deployed model's runs only")
        deployed.when(sfn.Condition.string_equals("$.run.model_version", self.model_version), check)
        deployed.otherwise(skipped)
        check.next(then)
        failed.next(then)
        skipped.next(then)
        return deployed

    def _back_off(self, construct_id: str, waits: list[int]) -> sfn.Pass:
        """Count an API retry and pick its wait from ``waits`` (intrinsics can add, not multiply)."""
        return sfn.Pass(self, construct_id, result_path="$.api_retry", parameters={
            "count.$": "States.MathAdd($.api_retry.count, 1)",
            "wait_s.$": f"States.ArrayGetItem(States.Array({', '.join(map(str, waits))}), $.api_retry.count)",
        })

    def _transform_task(self) -> sfn.CustomState:
        transform = self.transform
        stack = cdk.Stack.of(self)
        parameters: dict = {
            # One name per execution and capacity attempt. An API retry keeps the name on purpose: if the call
            # that failed (a 5xx, a timeout) did create the job, the retry gets ResourceInUse and the run waits
            # for that job instead of starting a second one writing the same output.
            "TransformJobName.$": self._job_name_expression(),
            "ModelName.$": "$.run.model_name",
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": transform.max_payload_mb,
            "MaxConcurrentTransforms": transform.max_concurrent_transforms,
            "TransformInput": {
                "ContentType": CSV,
                "SplitType": "Line",
                "CompressionType": "None",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri.$": "$.run.input_uri"}},
            },
            "TransformOutput": {
                "S3OutputPath.$": "$.run.output_uri",
                "Accept": CSV,
                "AssembleWith": "Line",
                "KmsKeyId": self.storage.data_key.key_arn,
            },
            "TransformResources": {
                "InstanceType": transform.instance_type,
                "InstanceCount": transform.instance_count,
                **({"VolumeKmsKeyId": self.volume_key.key_arn} if self.volume_key else {}),
            },
            "DataProcessing": self.data_processing,
            "Tags": [{"Key": "execution", "Value.$": "$$.Execution.Name"}],
        }
        score = sfn.CustomState(self, "ScoreRows", state_json={
            "Type": "Task",
            "Comment": "SageMaker Batch Transform, waiting for the job to end (.sync)",
            "Resource": f"arn:{stack.partition}:states:::sagemaker:createTransformJob.sync",
            "Parameters": parameters,
            "ResultSelector": {
                "job_name.$": "$.TransformJobName",
                "job_arn.$": "$.TransformJobArn",
                "status.$": "$.TransformJobStatus",
            },
            "ResultPath": "$.transform",
            "TimeoutSeconds": int(transform.job_timeout.to_seconds()),
        })
        return score

    def _job_name_expression(self) -> str:
        return f"States.Format('{self.job_name_prefix}-{{}}-{{}}', $$.Execution.Name, $.retry.attempt)"

    def _existing_job_states(self, *, on_failure: sfn.IChainable, on_success: sfn.IChainable) -> sfn.IChainable:
        """After ResourceInUse: describe the job this run already created and wait for it like ``.sync`` would."""
        find = tasks.CallAwsService(
            self, "FindExistingJob", service="sagemaker", action="describeTransformJob",
            iam_resources=[self.transform_job_arn], iam_action="sagemaker:DescribeTransformJob",
            parameters={"TransformJobName.$": self._job_name_expression()},
            result_selector={"job_name.$": "$.TransformJobName", "job_arn.$": "$.TransformJobArn",
                             "status.$": "$.TransformJobStatus", "description.$": "$"},
            result_path="$.transform")
        find.add_catch(on_failure, errors=["States.ALL"], result_path="$.error")
        wait = sfn.Wait(self, "WaitForExistingJob", time=sfn.WaitTime.duration(EXISTING_JOB_POLL_INTERVAL))
        # The same shape .sync gives a job that ended Failed or Stopped, so the failure choice treats it alike.
        ended_badly = sfn.Pass(self, "ExistingJobFailed", result_path="$.error", parameters={
            "Error": "States.TaskFailed", "Cause.$": "States.JsonToString($.transform.description)"})
        ended_badly.next(on_failure)
        wait.next(find)
        return find.next(sfn.Choice(self, "ExistingJobEnded?")
                         .when(sfn.Condition.string_equals("$.transform.status", "Completed"), on_success)
                         .when(sfn.Condition.or_(sfn.Condition.string_equals("$.transform.status", "InProgress"),
                                                 sfn.Condition.string_equals("$.transform.status", "Stopping")), wait)
                         .otherwise(ended_badly))

    def _manifest_fields(self, *, status: str) -> dict:
        fields = {
            "model_name": self.package.metadata.model_name,
            "model_version.$": "$.run.model_version",
            "sagemaker_model_name.$": "$.run.model_name",
            "input_uri.$": "$.run.input_uri",
            "output_uri.$": "$.run.output_uri",
            "manifest_uri.$": f"States.Format('s3://{self.storage.output_bucket.bucket_name}/{{}}', "
                              "$.run.manifest_key)",
            "run_date.$": "$.run.run_date",
            "execution_arn.$": "$$.Execution.Id",
            "execution_name.$": "$$.Execution.Name",
            "start_time.$": "$$.Execution.StartTime",
            "end_time.$": "$$.State.EnteredTime",
            "status": status,
            "instance_type": self.transform.instance_type,
            "instance_count": self.transform.instance_count,
            "capacity_attempts.$": "$.retry.attempt",
            "api_retries.$": "$.api_retry.count",
        }
        if status == "SUCCEEDED":
            fields.update({"transform_job_name.$": "$.transform.job_name", "transform_job_arn.$": "$.transform.job_arn"})
            if self.drift is not None:
                fields["drift.$"] = "$.drift"
        else:
            fields.update({"error.$": "$.error.Error", "cause.$": "$.error.Cause"})
        return fields

    def _write_manifest_task(self, construct_id: str) -> tasks.CallAwsService:
        bucket = self.storage.output_bucket
        return tasks.CallAwsService(
            self, construct_id, service="s3", action="putObject",
            iam_resources=[bucket.arn_for_objects(f"{PREDICTIONS_PREFIX}/*/{MANIFEST_FILE}")],
            parameters={
                "Bucket": bucket.bucket_name,
                "Key.$": "$.run.manifest_key",
                "Body.$": "States.JsonToString($.manifest)",
                "ContentType": "application/json",
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": self.storage.data_key.key_arn,
            },
            result_path=sfn.JsonPath.DISCARD)

    def _notify_failure_task(self) -> tasks.SnsPublish:
        name = self.package.metadata.model_name
        publish = tasks.SnsPublish(
            self, "NotifyFailure", topic=self.alert_topic, subject=f"{name} batch scoring run failed",
            message=sfn.TaskInput.from_object({
                "summary": sfn.JsonPath.format(
                    f"Batch scoring run {{}} of {name} {{}} failed: {{}}",
                    sfn.JsonPath.string_at("$$.Execution.Name"), sfn.JsonPath.string_at("$.run.model_version"),
                    sfn.JsonPath.string_at("$.error.Error")),
                "execution_arn": sfn.JsonPath.string_at("$$.Execution.Id"),
                "input_uri": sfn.JsonPath.string_at("$.run.input_uri"),
                "output_uri": sfn.JsonPath.string_at("$.run.output_uri"),
                "error": sfn.JsonPath.string_at("$.error.Error"),
                "reason": sfn.JsonPath.string_at("$.error.Cause"),
            }),
            result_path=sfn.JsonPath.DISCARD)
        publish.add_retry(errors=["States.TaskFailed"], interval=cdk.Duration.seconds(5), max_attempts=3,
                          backoff_rate=2.0)
        return publish

    # -- permissions ------------------------------------------------------------------------------------------------
    def _let_logs_use_key(self, log_group_name: str) -> None:
        """Key policy: CloudWatch Logs may use the data key for this log group only (its encryption context)."""
        stack = cdk.Stack.of(self)
        log_group_arn = stack.format_arn(service="logs", resource="log-group", resource_name=log_group_name,
                                         arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        added = self.storage.data_key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowCloudWatchLogsForTheStateMachineLogGroup",
            actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")], resources=["*"],
            conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}}))
        if not added.statement_added:
            raise ValueError("BatchScoring: storage.data_key must be a KMS key defined in this app: its key policy "
                             "has to let CloudWatch Logs encrypt the state machine's log group")

    def _grant_model_role(self) -> None:
        stack = cdk.Stack.of(self)
        role = self.model_role
        self.package.grant_read(role)
        # Read-only on the input: the job lists the prefix and gets objects; nothing may move or delete them.
        role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"],
                                               resources=[self.storage.input_bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"],
                                               resources=[self.storage.input_bucket.arn_for_objects("*")]))
        if self.storage.input_key:
            self.storage.input_key.grant(role, "kms:Decrypt")
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[self.storage.output_bucket.arn_for_objects(f"{PREDICTIONS_PREFIX}/*")]))
        # TransformOutput.KmsKeyId needs kms:Encrypt; multipart uploads under SSE-KMS also need data keys
        # and Decrypt. The volume key is used through a grant SageMaker creates for the job.
        self.storage.data_key.grant(role, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*",
                                    "kms:CreateGrant", "kms:DescribeKey")
        self.transform_log_group_arn = stack.format_arn(
            service="logs", resource="log-group", resource_name=f"{TRANSFORM_LOG_GROUP}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[self.transform_log_group_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": TRANSFORM_LOG_GROUP}}))
        # ECR has no per-repository authorization token: GetAuthorizationToken only accepts "*".
        role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))

    def _grant_state_machine_role(self) -> None:
        stack = cdk.Stack.of(self)
        role = self.role
        # Lower case, as SageMaker writes job ARNs (JOB_NAME_PREFIX_PATTERN already insists on it).
        self.transform_job_arn = stack.format_arn(service="sagemaker", resource="transform-job",
                                                  resource_name=f"{self.job_name_prefix.lower()}-*")
        role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
                     "sagemaker:AddTags"],  # .sync tags the job it starts
            resources=[self.transform_job_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:ListTags"], resources=["*"]))
        self.sync_rule_arn = stack.format_arn(service="events", resource="rule", resource_name=SYNC_EVENTS_RULE)
        role.add_to_policy(iam.PolicyStatement(actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                                               resources=[self.sync_rule_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.model_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        # Manifests are written with the data key; failure notifications go to a KMS-encrypted topic.
        self.storage.data_key.grant(role, "kms:GenerateDataKey*", "kms:Encrypt")
        if self.alert_topic.master_key:
            self.alert_topic.master_key.grant(role, "kms:GenerateDataKey*", "kms:Decrypt")
        # CreateTransformJob with a VolumeKmsKeyId: the caller must be able to create the job's grant.
        if self.volume_key:
            self.volume_key.grant(role, "kms:CreateGrant", "kms:DescribeKey")
        # The drift step's lambda:InvokeFunction is granted by tasks.LambdaInvoke (the function and its versions).

    def _acknowledge_wildcards(self) -> None:
        stack = cdk.Stack.of(self)

        def acknowledge(role: iam.Role, reasons: dict[str, str]) -> None:
            policy = role.node.find_child("DefaultPolicy").node.default_child
            for finding, reason in reasons.items():
                qualified = finding if finding.startswith("Action::") else f"Resource::{finding}"
                cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[{qualified}]", reason=reason))

        acknowledge(self.model_role, {
            "*": "ecr:GetAuthorizationToken has no resource-level permission, and cloudwatch:PutMetricData is "
                 "limited to the /aws/sagemaker/TransformJobs namespace by a condition.",
            nag_resource_name(stack.resolve(self.storage.input_bucket.arn_for_objects("*"))):
                "Each run reads whatever objects sit under the input prefix it is given at run time; the role "
                "may only read (never write or delete) objects of this one input bucket.",
            nag_resource_name(stack.resolve(self.storage.output_bucket.arn_for_objects(f"{PREDICTIONS_PREFIX}/*"))):
                "Prediction keys are named per date, model version and execution at run time; writes are "
                "limited to the predictions/ prefix of the output bucket.",
            nag_resource_name(stack.resolve(self.transform_log_group_arn)):
                "Transform job containers write log streams named per job and instance at run time, only "
                "inside the /aws/sagemaker/TransformJobs log group.",
            "Action::kms:GenerateDataKey*": "Writing SSE-KMS objects (including multipart uploads) needs "
                                            "GenerateDataKey and GenerateDataKeyWithoutPlaintext on this one key.",
        })
        state_machine_reasons = {
            "*": "sagemaker:ListTags, X-Ray trace segments and CloudWatch Logs log delivery setup have no "
                 "resource-level permissions; the .sync integration and state machine logging need them.",
            nag_resource_name(stack.resolve(self.transform_job_arn)):
                "Job names are derived per execution at run time; the role may only act on transform jobs whose "
                "names start with this pipeline's prefix.",
            nag_resource_name(stack.resolve(self.storage.output_bucket.arn_for_objects(
                f"{PREDICTIONS_PREFIX}/*/{MANIFEST_FILE}"))):
                "Each run writes one manifest.json under its own date/version/execution prefix, known only at "
                "run time; only objects named manifest.json under predictions/ are writable.",
            "Action::kms:GenerateDataKey*": "Manifests are SSE-KMS objects and alerts go to a KMS-encrypted "
                                            "topic; both need data keys from these specific keys only.",
        }
        if self.drift is not None:
            function_arn = nag_resource_name(stack.resolve(self.drift.function.function_arn))
            state_machine_reasons[f"{function_arn}:*"] = (
                "tasks.LambdaInvoke grants the drift step this one function and its versions (<function ARN>:*); "
                "no other function can be invoked.")
        acknowledge(self.role, state_machine_reasons)

    # -- metrics ----------------------------------------------------------------------------------------------------
    def metric_started(self, **kwargs) -> cloudwatch.Metric:
        """Executions started (scheduled and manual)."""
        return self.state_machine.metric_started(**kwargs)

    def metric_succeeded(self, **kwargs) -> cloudwatch.Metric:
        return self.state_machine.metric_succeeded(**kwargs)

    def metric_failed(self, **kwargs) -> cloudwatch.Metric:
        """Executions that failed, including runs the state machine reported and ended itself."""
        return self.state_machine.metric_failed(**kwargs)

    def metric_timed_out(self, **kwargs) -> cloudwatch.Metric:
        return self.state_machine.metric_timed_out(**kwargs)

    def metric_aborted(self, **kwargs) -> cloudwatch.Metric:
        return self.state_machine.metric_aborted(**kwargs)

    def metric_duration(self, *, statistic: str = "Maximum",
                        period: cdk.Duration = cdk.Duration.hours(1)) -> cloudwatch.Metric:
        """ExecutionTime in milliseconds (Step Functions' unit)."""
        return self.state_machine.metric_time(statistic=statistic, period=period)


__all__ = ["BatchScoring", "DriftCheck", "TransformSettings", "RetryPolicy", "ScoringStorage", "data_processing"]
