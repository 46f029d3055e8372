"""``POST /predict`` on an API Gateway REST API, integrated with a Lambda alias.

The integration targets the alias (not ``$LATEST`` or the bare function), or provisioned concurrency
on the alias would be bypassed (aws-cdk #22353). The body is checked against a JSON-schema model
derived from the model's feature count before the function runs; the function validates again (it
also serves direct and test invocations). Stage throttling, JSON access logs (KMS-encrypted), X-Ray
tracing, and authorization on by default: IAM (SigV4), or an API key with a usage plan.

API Gateway writes access logs, like execution logs, with the role named in the account's API Gateway
settings (one per account and region); without one, creating the stage fails with "CloudWatch Logs role
ARN must be set in account settings to enable logging" (API Gateway developer guide, "Set up CloudWatch
logging for REST APIs": permissions for CloudWatch logging). ``account_logging_role=True`` sets it here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from ml_constructs.common.encrypted_log_group import encrypted_log_group

ROUTE = "predict"
DEFAULT_STAGE = "prod"
DEFAULT_MAX_INSTANCES = 1000
DEFAULT_ACCESS_LOG_RETENTION_DAYS = 90
#: The AWS managed policy API Gateway's guide prescribes for the account's CloudWatch Logs role.
PUSH_TO_CLOUDWATCH_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
ApiAuth = Literal["iam", "api_key"]


@dataclass(frozen=True, kw_only=True)
class ApiThrottling:
    """Stage-wide steady rate (requests per second) and burst; also the usage plan's limits with API keys."""

    rate_limit: float = 50.0
    burst_limit: int = 100


def predict_request_schema(*, n_features: int, max_instances: int = DEFAULT_MAX_INSTANCES) -> apigw.JsonSchema:
    """``{"features": [n numbers]}`` or ``{"instances": [[n numbers], ...]}`` (1..max_instances rows), nothing else."""
    row = apigw.JsonSchema(type=apigw.JsonSchemaType.ARRAY, items=apigw.JsonSchema(type=apigw.JsonSchemaType.NUMBER),
                           min_items=n_features, max_items=n_features)
    return apigw.JsonSchema(
        schema=apigw.JsonSchemaVersion.DRAFT4, title="PredictRequest", type=apigw.JsonSchemaType.OBJECT,
        properties={
            "features": row,
            "instances": apigw.JsonSchema(type=apigw.JsonSchemaType.ARRAY, items=row, min_items=1,
                                          max_items=max_instances),
        },
        additional_properties=False,
        one_of=[apigw.JsonSchema(required=["features"]), apigw.JsonSchema(required=["instances"])])


def _access_log_format() -> apigw.AccessLogFormat:
    fields = apigw.AccessLogField
    return apigw.AccessLogFormat.custom(json.dumps({
        "requestId": fields.context_request_id(), "ip": fields.context_identity_source_ip(),
        "caller": fields.context_identity_caller(), "user": fields.context_identity_user(),
        "requestTime": fields.context_request_time(), "httpMethod": fields.context_http_method(),
        "resourcePath": fields.context_resource_path(), "status": fields.context_status(),
        "protocol": fields.context_protocol(), "responseLength": fields.context_response_length(),
        "responseLatency": fields.context_response_latency(),
        "integrationLatency": fields.context_integration_latency(),
        "integrationStatus": fields.context_integration_status(),
        "errorMessage": fields.context_error_message(),
        "validationError": fields.context_error_validation_error_string(),
    }))


class PredictionApi(Construct):
    """A REST API with one validated, authorized, throttled method: ``POST /predict`` -> ``handler``.

    Children are public: ``api``, ``method``, ``request_model``, ``access_logs`` (encrypted with
    ``encryption_key``), with ``account_logging_role`` ``cloud_watch_role`` and ``cloud_watch_account``,
    and with API keys ``usage_plan`` and ``api_key``.

    ``account_logging_role`` creates the role API Gateway logs with and points the account's API Gateway
    settings (``AWS::ApiGateway::Account``, a per-region singleton shared by every REST API there) at it.
    Both are retained when the stack is deleted: other APIs may log through them by then. Set it to False
    where the account setting is managed elsewhere (it must then exist before this stack is deployed).
    """

    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction, api_name: str,
                 n_features: int, encryption_key: kms.IKey, max_instances: int = DEFAULT_MAX_INSTANCES,
                 auth: ApiAuth = "iam", throttling: ApiThrottling = ApiThrottling(), quota_per_day: int | None = None,
                 stage_name: str = DEFAULT_STAGE, access_log_retention_days: int = DEFAULT_ACCESS_LOG_RETENTION_DAYS,
                 web_acl_arn: str | None = None, execution_logging: bool = False,
                 account_logging_role: bool = True) -> None:
        super().__init__(scope, construct_id)
        problems = []
        if auth not in ("iam", "api_key"):
            problems.append(f"auth {auth!r} is not 'iam' or 'api_key'")
        if n_features < 1 or max_instances < 1:
            problems.append("n_features and max_instances must be at least 1")
        if quota_per_day is not None and auth != "api_key":
            problems.append("quota_per_day needs auth 'api_key' (a usage plan)")
        if problems:
            raise ValueError("invalid PredictionApi: " + "; ".join(problems))
        self.auth = auth
        self.access_logs = encrypted_log_group(
            self, "AccessLogs", name_prefix=f"/aws/apigateway/{api_name}/{stage_name}/access",
            encryption_key=encryption_key, retention_days=access_log_retention_days)
        # With cloud_watch_role, CDK makes the stage depend on the AWS::ApiGateway::Account it creates
        # (RestApiBase._attachStage), so the role is in the account settings before the stage asks for logs.
        self.api = apigw.RestApi(
            self, "Api", rest_api_name=api_name, description=f"{api_name}: POST /{ROUTE}",
            endpoint_types=[apigw.EndpointType.REGIONAL], cloud_watch_role=account_logging_role,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN if account_logging_role else None,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name, throttling_rate_limit=throttling.rate_limit,
                throttling_burst_limit=throttling.burst_limit, tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=_access_log_format(),
                logging_level=apigw.MethodLoggingLevel.ERROR if execution_logging else apigw.MethodLoggingLevel.OFF))
        self.request_model = self.api.add_model(
            "PredictRequest", content_type="application/json", model_name="PredictRequest",
            schema=predict_request_schema(n_features=n_features, max_instances=max_instances))
        validator = self.api.add_request_validator("BodyValidator", validate_request_body=True,
                                                   validate_request_parameters=True)
        # API Gateway's own 400 for a body failing the model, in the function's error shape.
        self.api.add_gateway_response(
            "BadRequestBody", type=apigw.ResponseType.BAD_REQUEST_BODY, status_code="400",
            templates={"application/json": json.dumps({
                "error": "the body does not match the PredictRequest model: $context.error.message",
                "code": "invalid_request", "request_id": "$context.requestId"})})
        self.method = self.api.root.add_resource(ROUTE).add_method(
            "POST", apigw.LambdaIntegration(handler, proxy=True),
            authorization_type=apigw.AuthorizationType.IAM if auth == "iam" else apigw.AuthorizationType.NONE,
            api_key_required=auth == "api_key", request_validator=validator,
            request_models={"application/json": self.request_model})
        self.usage_plan: apigw.UsagePlan | None = None
        self.api_key: apigw.IApiKey | None = None
        if auth == "api_key":
            self.usage_plan = self.api.add_usage_plan(
                "UsagePlan", name=f"{api_name}-plan",
                throttle=apigw.ThrottleSettings(rate_limit=throttling.rate_limit, burst_limit=throttling.burst_limit),
                quota=apigw.QuotaSettings(limit=quota_per_day, period=apigw.Period.DAY) if quota_per_day else None)
            self.usage_plan.add_api_stage(stage=self.api.deployment_stage)
            self.api_key = self.api.add_api_key("ApiKey", description=f"{api_name} client key")
            self.usage_plan.add_api_key(self.api_key)
        if web_acl_arn:
            self.web_acl_association = wafv2.CfnWebACLAssociation(
                self, "WebAcl", resource_arn=self.api.deployment_stage.stage_arn, web_acl_arn=web_acl_arn)
        # The account setting and its role, by the ids RestApi gives them (None without account_logging_role).
        self.cloud_watch_role: iam.Role | None = self.api.node.try_find_child(  # type: ignore[assignment]
            "CloudWatchRole")
        self.cloud_watch_account: apigw.CfnAccount | None = self.api.node.try_find_child(  # type: ignore[assignment]
            "Account")
        self._acknowledge(auth=auth, web_acl=bool(web_acl_arn), execution_logging=execution_logging)

    def _acknowledge(self, *, auth: ApiAuth, web_acl: bool, execution_logging: bool) -> None:
        if self.cloud_watch_role is not None:
            cdk.Validations.of(self.cloud_watch_role).acknowledge(cdk.Acknowledgment(
                id=f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{PUSH_TO_CLOUDWATCH_POLICY}]",
                reason="The role API Gateway's account settings name for writing API logs to CloudWatch Logs; the "
                       "developer guide prescribes this AWS managed policy, which only creates and writes log "
                       "groups and streams (no read of log data, no other service)."))
        stage, method = self.api.deployment_stage, self.method
        if not web_acl:
            cdk.Validations.of(stage).acknowledge(cdk.Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="No WAF web ACL by default: every call is authorized and stage-throttled, and a web ACL "
                       "bills monthly even when idle, defeating this pattern's zero idle cost; set "
                       "serverless.api.web_acl_arn to associate one."))
        if not execution_logging:
            cdk.Validations.of(stage).acknowledge(cdk.Acknowledgment(
                id="AwsSolutions-APIG6",
                reason="Every request is in the KMS-encrypted JSON access log. Execution logs would go to a log "
                       "group API Gateway creates itself (API-Gateway-Execution-Logs_<api id>/<stage>): not "
                       "encrypted with the stack's key, kept forever, left behind by stack deletion. Opt in "
                       "with serverless.api.execution_logging."))
        cdk.Validations.of(method).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-COG4",
            reason="Callers are services, not end users of a Cognito user pool: the method is authorized with "
                   + ("IAM (SigV4) credentials." if auth == "iam" else "an API key and usage plan, as configured.")))
        if auth == "api_key":
            cdk.Validations.of(method).acknowledge(cdk.Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="Configured for API-key access (serverless.api.auth = api_key): the key identifies and "
                       "throttles the client through a usage plan instead of IAM authorization."))

    @property
    def url(self) -> str:
        """The full URL of ``POST /predict`` on the stage."""
        return self.api.url_for_path(f"/{ROUTE}")

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow ``grantee`` to call ``POST /predict`` (needed with IAM authorization)."""
        return iam.Grant.add_to_principal(grantee=grantee, actions=["execute-api:Invoke"], resource_arns=[
            self.api.arn_for_execute_api("POST", f"/{ROUTE}", self.api.deployment_stage.stage_name)])

    # -- metrics -------------------------------------------------------------------------------------------------
    def metric_server_errors(self, *, period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        """5XX responses of the stage (Sum)."""
        return self.api.deployment_stage.metric_server_error(period=period, statistic="Sum")

    def metric_client_errors(self, *, period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        return self.api.deployment_stage.metric_client_error(period=period, statistic="Sum")

    def metric_count(self, *, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        return self.api.deployment_stage.metric_count(period=period, statistic="Sum")

    def metric_latency(self, *, statistic: str = "p99", period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        """End-to-end latency in milliseconds as API Gateway measures it."""
        return self.api.deployment_stage.metric_latency(period=period, statistic=statistic)

    def metric_integration_latency(self, *, statistic: str = "p99",
                                   period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        return self.api.deployment_stage.metric_integration_latency(period=period, statistic=statistic)


__all__ = ["ApiThrottling", "PredictionApi", "predict_request_schema"]
