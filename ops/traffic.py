"""Shift, promote and roll back live traffic between the real-time endpoint's variants, in seconds.

    python -m ops.traffic status   --endpoint NAME [--json]
    python -m ops.traffic shift    --endpoint NAME --weights v1=0.5,v2=0.5
    python -m ops.traffic promote  --endpoint NAME v2
    python -m ops.traffic rollback --endpoint NAME
    python -m ops.traffic shadow-report  --endpoint NAME [--window-minutes 60] [--json]
    python -m ops.traffic promote-shadow --endpoint NAME --stack STACK --candidate-dir DIR [--run] [--force]

Changes go through ``UpdateEndpointWeightsAndCapacities`` (no new fleet, no redeploy) and the
command waits until the endpoint is ``InService`` with the new weights. Before each change the
weights in effect are saved in the endpoint's own tags, so ``rollback`` works from any machine and
survives restarts; a rollback saves the weights it replaces, so a second rollback undoes it.

Exit codes (``ops/cli.py``'s table): 0 done (or nothing to do); 1 the update failed or timed out;
2 refused before any change (bad option, unknown endpoint or variant, endpoint busy with another update);
3 AWS, credentials or network (no region, no credentials, a refused call). Every option is checked
before the first AWS call.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from datetime import datetime, timezone
from typing import Any, Callable, Sequence, TextIO

from ops import cli

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_AWS = cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_AWS
PREVIOUS_WEIGHTS_TAG = "ml-deploy:traffic:previous-weights"
PREVIOUS_AT_TAG = "ml-deploy:traffic:previous-at"
#: SageMaker tag values: at most 256 characters of letters, digits, spaces and _.:/=+-@ (no commas).
MAX_TAG_VALUE = 256
DEFAULT_TIMEOUT_S = 600
DEFAULT_POLL_INTERVAL_S = 10
#: Another change is under way: UpdateEndpoint, UpdateEndpointWeightsAndCapacities, a system update...
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
BROKEN_STATUSES = frozenset({"Failed", "UpdateRollbackFailed", "OutOfService"})


class TrafficError(cli.OpsError):
    """A refusal (exit 2) or a failure (exit 1, when given) to report as one line."""

    exit_code = EXIT_REFUSED


@dataclass(frozen=True)
class VariantState:
    name: str
    current_weight: float | None
    desired_weight: float | None
    current_instance_count: int | None
    desired_instance_count: int | None


@dataclass(frozen=True)
class EndpointState:
    name: str
    arn: str
    status: str
    config_name: str
    failure_reason: str
    variants: tuple[VariantState, ...]

    @property
    def weights(self) -> dict[str, float]:
        """Weights in effect now (the desired ones when SageMaker has not reported current ones yet)."""
        return {variant.name: float(variant.current_weight if variant.current_weight is not None
                                    else variant.desired_weight or 0.0) for variant in self.variants}


# -- weights as text ----------------------------------------------------------------------------------------------
def parse_weights(text: str, *, require_traffic: bool = True) -> dict[str, float]:
    """``v1=0.9,v2=0.1`` (commas or spaces) -> ``{"v1": 0.9, "v2": 0.1}``.

    Refuses, with every problem in one message, what no endpoint could accept: malformed pairs,
    repeated names, numbers that are not finite or below 0, and all-zero weights. It needs no
    endpoint, so ``main`` runs it before any AWS call. ``require_traffic=False`` accepts all-zero
    weights: an endpoint may have served them (invoked only with ``TargetVariant``), so a saved
    rollback target may hold them.
    """
    weights: dict[str, float] = {}
    problems: list[str] = []
    items = [item for item in text.replace(",", " ").split() if item]
    if not items:
        raise TrafficError("no weights given; expected NAME=WEIGHT pairs such as v1=0.9,v2=0.1")
    seen: set[str] = set()
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name or not value:
            problems.append(f"bad weight {item!r}: expected NAME=WEIGHT, e.g. v1=0.9")
            continue
        if name in seen:
            problems.append(f"variant {name} is given twice")
            continue
        seen.add(name)
        try:
            weights[name] = float(value)
        except ValueError:
            problems.append(f"weight of {name} is not a number: {value!r}")
    # All-zero is only judged on a complete list: "v1=0,v2=x" is one mistake, not two.
    problems.extend(weight_problems(weights, require_traffic=require_traffic and not problems))
    if problems:
        raise TrafficError("; ".join(problems))
    return weights


def weight_problems(weights: dict[str, float], *, require_traffic: bool = True) -> list[str]:
    """Why these weights cannot be sent to any endpoint (empty when they can)."""
    problems = []
    bad = {name: weight for name, weight in weights.items() if not math.isfinite(weight) or weight < 0}
    if bad:
        problems.append(f"weights must be finite numbers >= 0; got {format_weights(bad)}")
    elif require_traffic and weights and sum(weights.values()) <= 0:
        problems.append("at least one weight must be above 0: all-zero weights would send traffic nowhere")
    return problems


def format_weights(weights: dict[str, float]) -> str:
    """The tag form: ``v1=0.9 v2=0.1`` (spaces, since tag values may not contain commas)."""
    return " ".join(f"{name}={weight:g}" for name, weight in weights.items())


def shares(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {name: (weight / total if total else 0.0) for name, weight in weights.items()}


def same_weights(first: dict[str, float], second: dict[str, float]) -> bool:
    return first.keys() == second.keys() and all(
        math.isclose(first[name], second[name], rel_tol=1e-6, abs_tol=1e-9) for name in first)


# -- the endpoint -------------------------------------------------------------------------------------------------
def _client_error_code(exc: Exception) -> tuple[str, str]:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    return error.get("Code", ""), error.get("Message", str(exc))


class EndpointTraffic:
    """Traffic operations on one SageMaker endpoint; clients, sleep and clock are injectable for tests."""

    def __init__(self, endpoint_name: str, *, sagemaker: Any, cloudwatch: Any,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 timeout_s: float = DEFAULT_TIMEOUT_S, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
                 out: TextIO = sys.stdout) -> None:
        self.endpoint_name = endpoint_name
        self.sagemaker, self.cloudwatch = sagemaker, cloudwatch
        self.sleep, self.clock, self.now = sleep, clock, now
        self.timeout_s, self.poll_interval_s = timeout_s, poll_interval_s
        self.out = out

    # -- reading ------------------------------------------------------------------------------------------------
    def describe(self) -> EndpointState:
        from botocore.exceptions import ClientError

        try:
            raw = self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        except ClientError as exc:
            code, message = _client_error_code(exc)
            if code == "ValidationException" and "Could not find" in message:
                raise TrafficError(f"endpoint {self.endpoint_name!r} not found in region "
                                   f"{self.sagemaker.meta.region_name}") from None
            raise
        return EndpointState(
            name=raw["EndpointName"], arn=raw["EndpointArn"], status=raw["EndpointStatus"],
            config_name=raw.get("EndpointConfigName", ""), failure_reason=raw.get("FailureReason", ""),
            variants=tuple(VariantState(
                name=variant["VariantName"], current_weight=variant.get("CurrentWeight"),
                desired_weight=variant.get("DesiredWeight"),
                current_instance_count=variant.get("CurrentInstanceCount"),
                desired_instance_count=variant.get("DesiredInstanceCount"))
                for variant in raw.get("ProductionVariants", [])))

    def alarm_states(self) -> list[dict[str, str]]:
        """The endpoint's alarms (named ``<endpoint>-...`` by the stack) and their states."""
        alarms, token = [], None
        while True:
            page = self.cloudwatch.describe_alarms(AlarmNamePrefix=f"{self.endpoint_name}-",
                                                   **({"NextToken": token} if token else {}))
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                alarms.append({"name": alarm["AlarmName"], "state": alarm["StateValue"]})
            token = page.get("NextToken")
            if not token:
                return sorted(alarms, key=lambda alarm: alarm["name"])

    def tags(self, arn: str) -> dict[str, str]:
        tags, token = {}, None
        while True:
            page = self.sagemaker.list_tags(ResourceArn=arn, **({"NextToken": token} if token else {}))
            tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
            token = page.get("NextToken")
            if not token:
                return tags

    def previous_weights(self, arn: str) -> tuple[dict[str, float], str] | None:
        tags = self.tags(arn)
        if PREVIOUS_WEIGHTS_TAG not in tags:
            return None
        try:
            return parse_weights(tags[PREVIOUS_WEIGHTS_TAG], require_traffic=False), tags.get(PREVIOUS_AT_TAG, "")
        except TrafficError as exc:
            raise TrafficError(f"the tag {PREVIOUS_WEIGHTS_TAG} on {arn} is not readable weights "
                               f"({tags[PREVIOUS_WEIGHTS_TAG]!r}): {exc}; use shift instead") from None

    # -- commands -----------------------------------------------------------------------------------------------
    def status(self, *, as_json: bool = False) -> dict[str, Any]:
        state = self.describe()
        previous = self.previous_weights(state.arn)
        report = {
            "endpoint": state.name, "status": state.status, "endpoint_config": state.config_name,
            "failure_reason": state.failure_reason or None,
            "variants": [{**asdict(variant), "share": shares(state.weights)[variant.name]}
                         for variant in state.variants],
            "alarms": self.alarm_states(),
            "previous_weights": previous[0] if previous else None,
            "previous_weights_saved_at": previous[1] if previous else None,
        }
        if as_json:
            print(json.dumps(report, indent=2, default=str), file=self.out)
        else:
            self._print_status(report)
        return report

    def shift(self, weights: dict[str, float]) -> EndpointState:
        state = self._ready()
        self._check_weights(state, weights)
        return self._apply(state, {variant.name: weights[variant.name] for variant in state.variants})

    def promote(self, variant_name: str) -> EndpointState:
        state = self._ready()
        names = [variant.name for variant in state.variants]
        if variant_name not in names:
            raise TrafficError(f"endpoint {state.name} has no variant {variant_name!r}; variants: {', '.join(names)}")
        return self._apply(state, {name: 1.0 if name == variant_name else 0.0 for name in names})

    def rollback(self) -> EndpointState:
        state = self._ready()
        previous = self.previous_weights(state.arn)
        if previous is None:
            raise TrafficError(f"no previous weights are recorded on endpoint {state.name} (shift, promote and "
                               f"rollback save them in its tag {PREVIOUS_WEIGHTS_TAG}); use shift instead")
        weights, saved_at = previous
        names = {variant.name for variant in state.variants}
        if set(weights) != names:
            raise TrafficError(f"the saved weights ({format_weights(weights)}, saved {saved_at or 'at an unknown time'}"
                               f") name variants {sorted(weights)} but the endpoint now has {sorted(names)} (a deploy "
                               "changed its variants); use shift instead")
        print(f"rolling back to the weights saved {saved_at or 'earlier'}: {format_weights(weights)}", file=self.out)
        return self._apply(state, weights)

    # -- helpers ------------------------------------------------------------------------------------------------
    def _ready(self) -> EndpointState:
        state = self.describe()
        if state.status in BUSY_STATUSES:
            raise TrafficError(f"endpoint {state.name} is {state.status}: another update is in progress. Wait until it "
                               f"is InService (python -m ops.traffic status --endpoint {state.name}) and try again")
        if state.status != "InService":
            reason = f": {state.failure_reason}" if state.failure_reason else ""
            raise TrafficError(f"endpoint {state.name} is {state.status}{reason}; traffic can only be shifted while "
                               "it is InService")
        return state

    @staticmethod
    def _check_weights(state: EndpointState, weights: dict[str, float]) -> None:
        names = [variant.name for variant in state.variants]
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise TrafficError(f"endpoint {state.name} has no variant {', '.join(unknown)}; variants: {', '.join(names)}")
        missing = [name for name in names if name not in weights]
        if missing:
            raise TrafficError(f"give a weight for every variant; missing: {', '.join(missing)} "
                               f"(e.g. --weights {','.join(f'{name}=0.5' for name in names)})")
        problems = weight_problems(weights)  # main() refused these already; shift() may be given a dict
        if problems:
            raise TrafficError("; ".join(problems))

    def _apply(self, state: EndpointState, target: dict[str, float]) -> EndpointState:
        from botocore.exceptions import ClientError

        current = state.weights
        if same_weights(current, target):
            print(f"{state.name} already serves {format_weights(target)}; nothing to do", file=self.out)
            return state
        remembered = format_weights(current)
        if len(remembered) > MAX_TAG_VALUE:
            raise TrafficError(f"the current weights do not fit in one tag value ({len(remembered)} > {MAX_TAG_VALUE} "
                               "characters), so a rollback could not restore them; refusing to change them")
        # Saved before the change: if anything below fails, rollback still knows what was serving.
        self.sagemaker.add_tags(ResourceArn=state.arn, Tags=[
            {"Key": PREVIOUS_WEIGHTS_TAG, "Value": remembered},
            {"Key": PREVIOUS_AT_TAG, "Value": self.now().strftime("%Y-%m-%dT%H:%M:%SZ")}])
        for name in target:
            print(f"  {name}: {current[name]:g} -> {target[name]:g}  ({shares(target)[name]:.0%} of traffic)",
                  file=self.out)
        try:
            self.sagemaker.update_endpoint_weights_and_capacities(
                EndpointName=state.name,
                DesiredWeightsAndCapacities=[{"VariantName": name, "DesiredWeight": weight}
                                             for name, weight in target.items()])
        except ClientError as exc:
            code, message = _client_error_code(exc)
            if code == "ValidationException":
                raise TrafficError(f"SageMaker refused the change: {message}") from None
            raise
        return self._wait(target)

    def _wait(self, target: dict[str, float]) -> EndpointState:
        deadline = self.clock() + self.timeout_s
        while True:
            state = self.describe()
            if state.status == "InService" and same_weights(state.weights, target):
                print(f"{state.name} is InService with {format_weights(state.weights)}", file=self.out)
                return state
            if state.status in BROKEN_STATUSES or state.status == "RollingBack":
                reason = f": {state.failure_reason}" if state.failure_reason else ""
                raise TrafficError(f"the update failed, endpoint {state.name} is {state.status}{reason}", EXIT_FAILED)
            if self.clock() >= deadline:
                raise TrafficError(f"endpoint {state.name} is still {state.status} after {self.timeout_s:g} s; the "
                                   "update may still finish: check with status", EXIT_FAILED)
            self.sleep(self.poll_interval_s)

    def _print_status(self, report: dict[str, Any]) -> None:
        def number(value: Any) -> str:
            return "-" if value is None else f"{value:g}"

        print(f"endpoint {report['endpoint']}: {report['status']} (config {report['endpoint_config']})", file=self.out)
        if report["failure_reason"]:
            print(f"  failure reason: {report['failure_reason']}", file=self.out)
        header = ("VARIANT", "WEIGHT", "DESIRED", "SHARE", "INSTANCES", "DESIRED")
        rows = [(variant["name"], number(variant["current_weight"]), number(variant["desired_weight"]),
                 f"{variant['share']:.0%}", number(variant["current_instance_count"]),
                 number(variant["desired_instance_count"])) for variant in report["variants"]]
        widths = [max(len(str(row[column])) for row in [header, *rows]) for column in range(len(header))]
        for row in [header, *rows]:
            print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip(), file=self.out)
        print("alarms:" if report["alarms"] else "alarms: none found", file=self.out)
        for alarm in report["alarms"]:
            print(f"  {alarm['state']:<17} {alarm['name']}", file=self.out)
        previous = report["previous_weights"]
        print("rollback target: " + (f"{format_weights(previous)} (saved {report['previous_weights_saved_at']})"
                                     if previous else "none recorded"), file=self.out)


# -- command line -------------------------------------------------------------------------------------------------
EXAMPLES = """examples:
  python -m ops.traffic status   --endpoint fraud-detector-realtime --json
  python -m ops.traffic shift    --endpoint fraud-detector-realtime --weights v1=0.9,v2=0.1
  python -m ops.traffic promote  --endpoint fraud-detector-realtime v2
  python -m ops.traffic rollback --endpoint fraud-detector-realtime
  python -m ops.traffic shadow-report  --endpoint fraud-detector-realtime --window-minutes 120
  python -m ops.traffic promote-shadow --endpoint fraud-detector-realtime --stack FraudDetector-Realtime \
      --candidate-dir artifacts/fraud-detector-v2 --run
"""


#: CloudWatch keeps 1-minute data points for 15 days.
MAX_WINDOW_MINUTES = 15 * 24 * 60


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", required=True, help="SageMaker endpoint name (the stack output EndpointName)")
    common.add_argument("--region", help="AWS region (default: the AWS CLI/SDK configuration)")
    changing = argparse.ArgumentParser(add_help=False)
    changing.add_argument("--timeout", type=cli.positive_number("seconds"), default=DEFAULT_TIMEOUT_S,
                          help=f"seconds to wait for InService (default {DEFAULT_TIMEOUT_S})")
    changing.add_argument("--poll-interval", type=cli.positive_number("seconds"), default=DEFAULT_POLL_INTERVAL_S,
                          help=f"seconds between status checks (default {DEFAULT_POLL_INTERVAL_S})")
    parser = cli.Parser(prog="python -m ops.traffic", description=__doc__.split("\n\n")[0], epilog=EXAMPLES)
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", parents=[common], help="variants, weights, instance counts, alarms", epilog=EXAMPLES)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    shift = commands.add_parser("shift", parents=[common, changing], help="set the weight of every variant", epilog=EXAMPLES)
    shift.add_argument("--weights", required=True, help="NAME=WEIGHT for every variant, e.g. v1=0.5,v2=0.5")
    promote = commands.add_parser("promote", parents=[common, changing], help="send all traffic to one variant", epilog=EXAMPLES)
    promote.add_argument("variant", help="the variant that gets weight 1 (all others get 0)")
    commands.add_parser("rollback", parents=[common, changing], help="restore the weights saved before the last change", epilog=EXAMPLES)
    window = argparse.ArgumentParser(add_help=False)
    window.add_argument("--window-minutes", default=60.0,
                        type=cli.positive_number("minutes", described="minutes", maximum=MAX_WINDOW_MINUTES),
                        help="how far back to compare production and shadow (default 60)")
    report = commands.add_parser("shadow-report", parents=[common, window],
                                 help="the shadow's latency and errors next to production's", epilog=EXAMPLES)
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    promote_shadow = commands.add_parser(
        "promote-shadow", parents=[common, window],
        epilog=EXAMPLES, help="check the shadow, then deploy it as the production model (prints the deploy; --run runs it)")
    promote_shadow.add_argument("--stack", required=True, help="the real-time stack, e.g. FraudDetector-Realtime")
    promote_shadow.add_argument("--candidate-dir", required=True,
                                help="the packaged candidate the shadow serves (deploy.model.candidate_dir)")
    promote_shadow.add_argument("--run", action="store_true", help="run the cdk deploy instead of printing it")
    promote_shadow.add_argument("--force", action="store_true", help="promote even if the shadow looks worse")
    return parser


def make_clients(region: str | None) -> tuple[Any, Any]:
    import boto3

    session = boto3.session.Session(region_name=region)
    if session.region_name is None:
        raise cli.AwsError("no AWS region configured: pass --region or set AWS_REGION")
    return session.client("sagemaker"), session.client("cloudwatch")


def main(argv: Sequence[str] | None = None, *, clients: tuple[Any, Any] | None = None,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
         now: Callable[[], datetime] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout

    def command() -> int:
        from botocore.exceptions import ClientError

        args = build_parser().parse_args(argv)
        # Every option is checked before the first AWS call (argparse checked the numbers).
        weights = parse_weights(args.weights) if args.command == "shift" else None
        if args.command == "promote-shadow" and not (Path(args.candidate_dir) / "metadata.json").is_file():
            raise cli.UsageError(f"--candidate-dir {args.candidate_dir} has no metadata.json (a packaged model)")
        sagemaker, cloudwatch = clients or make_clients(args.region)
        try:
            _dispatch(args, weights, sagemaker, cloudwatch, sleep=sleep, clock=clock, now=now, out=out)
        except ClientError as exc:
            code, message = _client_error_code(exc)
            raise cli.AwsError(f"AWS refused the request ({code}): {message}") from None
        return EXIT_OK

    return cli.run(command, err=err)


def _dispatch(args: argparse.Namespace, weights: dict[str, float] | None, sagemaker: Any, cloudwatch: Any, *,
              sleep: Callable[[float], None], clock: Callable[[], float], now: Callable[[], datetime] | None,
              out: TextIO) -> None:
    """Run the chosen subcommand (AWS errors are reported by the caller, once for all of them)."""
    if args.command in ("shadow-report", "promote-shadow"):
        _shadow_command(args, sagemaker, cloudwatch, out, now)
        return
    traffic = EndpointTraffic(
        args.endpoint, sagemaker=sagemaker, cloudwatch=cloudwatch, sleep=sleep, clock=clock, out=out,
        timeout_s=getattr(args, "timeout", DEFAULT_TIMEOUT_S),
        poll_interval_s=getattr(args, "poll_interval", DEFAULT_POLL_INTERVAL_S),
        **({"now": now} if now else {}))
    if args.command == "status":
        traffic.status(as_json=args.json)
    elif args.command == "shift":
        traffic.shift(weights)
    elif args.command == "promote":
        traffic.promote(args.variant)
    else:
        traffic.rollback()


def _shadow_command(args: argparse.Namespace, sagemaker: Any, cloudwatch: Any, out: TextIO,
                    now: Callable[[], datetime] | None) -> int:
    from datetime import timedelta

    from ops import shadow

    report = shadow.shadow_report(sagemaker=sagemaker, cloudwatch=cloudwatch, endpoint=args.endpoint,
                                  window=timedelta(minutes=args.window_minutes), now=now() if now else None)
    if args.command == "shadow-report":
        if args.json:
            print(json.dumps({"endpoint": args.endpoint, "window_minutes": args.window_minutes,
                              "variants": [variant.as_dict() for variant in report],
                              "promotion_problems": shadow.promotion_problems(report)}, indent=2), file=out)
        else:
            print(shadow.render_report(report), file=out)
            problems = shadow.promotion_problems(report)
            print("promotable: yes" if not problems else "promotable: no — " + "; ".join(problems), file=out)
        return EXIT_OK
    command = shadow.promote(report, stack=args.stack, candidate_dir=args.candidate_dir, force=args.force,
                             run=args.run)
    print(("deployed: " if args.run else "deploy the candidate as production with:\n  ") + command, file=out)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
