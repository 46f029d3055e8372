"""``python -m ops.cost``: the command line of the cost model."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from ops.cli import EXIT_OK, Parser, UsageError, run
from dataclasses import replace

from ops.cost.model import Assumptions, PatternCost, at_traffic, estimate
from ops.cost.prices import PriceBook, load_price_book, refresh_instance_prices
from ops.cost.report import SEED_REQUESTS_PER_DAY, SEED_ROWS_PER_NIGHT, as_json, seed_table, table
from ops.cost.templates import Deployment, assembly_region, read_cloud_assembly, read_deployment

EXAMPLE = """\
examples:
  python -m ops.cost --requests-per-day 100000
  python -m ops.cost --requests-per-day 2000000 --payload-kb 2 --devices 50 --json
  python -m ops.cost --plot docs/images/cost.png
  python -m ops.cost --seed
  python -m ops.cost --prices live          # SageMaker instance prices from the AWS Price List API
"""


def parser() -> Parser:
    defaults = Assumptions()
    command = Parser(prog="python -m ops.cost", epilog=EXAMPLE,
                     description="Monthly cost of each deployment pattern, read from the synthesized templates "
                                 "(cdk.out) and the price book ops/prices/aws-prices.json.")
    command.add_argument("--cdk-out", type=Path, default=Path("cdk.out"), help="synthesized app (default: cdk.out)")
    command.add_argument("--requests-per-day", type=_non_negative, default=defaults.requests_per_day,
                         help="online predictions a day (default: %(default)g)")
    command.add_argument("--payload-kb", type=_non_negative, default=defaults.payload_kb,
                         help="size of one request and of its response (default: %(default)g)")
    command.add_argument("--batch-rows-per-night", type=_non_negative, default=defaults.batch_rows_per_night,
                         help="rows the nightly batch run scores (default: %(default)g)")
    command.add_argument("--rows-per-second-per-instance", type=_positive,
                         default=defaults.rows_per_second_per_instance,
                         help="batch scoring rate (default: %(default).0f, measured in bench/results/batch.json)")
    command.add_argument("--devices", type=int, default=defaults.devices,
                         help="Greengrass core devices (default: %(default)s)")
    command.add_argument("--region", help=f"price region (default: the stacks' region, else {defaults.region})")
    command.add_argument("--duration-ms", type=_positive, default=defaults.duration_ms,
                         help="billed compute per request on Lambda / SageMaker Serverless (default: %(default)g)")
    command.add_argument("--monitor-run-minutes", type=_positive, default=defaults.monitor_run_minutes,
                         help="length of one Model Monitor run (default: %(default)g)")
    command.add_argument("--batch-startup-minutes", type=_non_negative, default=defaults.batch_startup_minutes,
                         help="billed start-up of each Batch Transform run (default: %(default)g)")
    command.add_argument("--prices", choices=("file", "live"), default="file",
                         help="live: refresh SageMaker instance prices through the AWS Price List API")
    output = command.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    output.add_argument("--seed", action="store_true", help="the seed's cost table recomputed, next to this project")
    command.add_argument("--plot", type=Path, metavar="FILE.png",
                         help="also draw monthly cost against requests per day into FILE.png")
    return command


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         pricing_client: Any = None) -> int:
    out = out or sys.stdout
    return run(lambda: _main(argv, out, pricing_client), err=err)


def _main(argv: Sequence[str] | None, out: TextIO, pricing_client: Any) -> int:
    args = parser().parse_args(argv)
    if args.devices < 0:
        raise UsageError("--devices must be 0 or more")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise UsageError(f"--plot writes a PNG: give a file name ending in .png, not {args.plot}")
    deployment = read_deployment(read_cloud_assembly(args.cdk_out))
    region = args.region or assembly_region(args.cdk_out) or Assumptions().region
    assumptions = Assumptions(
        requests_per_day=args.requests_per_day, payload_kb=args.payload_kb,
        batch_rows_per_night=args.batch_rows_per_night, rows_per_second_per_instance=args.rows_per_second_per_instance,
        devices=args.devices, region=region, duration_ms=args.duration_ms,
        monitor_run_minutes=args.monitor_run_minutes, batch_startup_minutes=args.batch_startup_minutes)
    book = load_price_book()
    if args.prices == "live":
        book = refresh_instance_prices(book, _instance_price_keys(deployment), region, client=pricing_client)
    costs, used = estimate(deployment, assumptions, book)  # raises on a missing price before printing anything
    if args.seed:
        seed_assumptions = replace(at_traffic(assumptions, SEED_REQUESTS_PER_DAY),
                                   batch_rows_per_night=SEED_ROWS_PER_NIGHT)
        seed_costs, _ = estimate(deployment, seed_assumptions, book)
        print(seed_table(book, region, seed_costs, seed_assumptions,
                         lambda pattern: explain(pattern, seed_costs[pattern], deployment, seed_assumptions)), file=out)
    elif args.json:
        print(json.dumps(as_json(costs, assumptions, book, book.used(used)), indent=2), file=out)
    else:
        print(table(costs, assumptions, book, book.used(used)), file=out)
    if args.plot is not None:
        from ops.cost.plot import draw

        def cost_at(requests_per_day: float) -> dict[str, float]:
            costs_then, _ = estimate(deployment, at_traffic(assumptions, requests_per_day), book)
            return {pattern: cost.monthly_usd for pattern, cost in costs_then.items()}

        crossings = draw(args.plot, cost_at, today=assumptions.requests_per_day, limits=traffic_limits(deployment),
                         labels={"edge": f"Greengrass edge ({assumptions.devices} devices)"},
                         title=f"Monthly cost as synthesized ({assumptions.region}, {assumptions.payload_kb:g} KB "
                               f"requests, {assumptions.devices} edge devices)")
        summary = "; ".join(f"{a} = {b} at {r:,.0f}/day" for a, b, r, _ in crossings) or "no break-even in range"
        print(f"wrote {args.plot} ({summary})", file=sys.stderr if args.json else out)
    return EXIT_OK


def explain(pattern: str, cost: PatternCost, deployment: Deployment, assumptions: Assumptions) -> str:
    """One line: what this project deploys that the seed's row did not count."""
    by_category: dict[str, float] = {}
    for item in cost.items:
        by_category[item.category] = by_category.get(item.category, 0.0) + item.monthly_usd
    rest = ", ".join(f"{category} ${usd:,.2f}" for category, usd in sorted(by_category.items(), key=lambda kv: -kv[1])
                     if category != "compute" and usd >= 0.005)
    compute = by_category.get("compute", 0.0)
    if pattern == "realtime" and deployment.realtime:
        shape = " + ".join(f"{v.min_count} × {v.instance_type}" for v in deployment.realtime.instance_variants) \
            or "serverless variants"
        return f"{shape} always on (compute ${compute:,.2f}), plus {rest}"
    if pattern == "batch" and deployment.batch:
        facts = deployment.batch
        seconds = assumptions.batch_rows_per_night / (assumptions.rows_per_second_per_instance * facts.instance_count)
        return (f"a run is {assumptions.batch_startup_minutes:g} min start-up + {seconds:.1f} s scoring at the "
                f"measured rate on {facts.instance_count} × {facts.instance_type}, not 20 min (compute "
                f"${compute:,.2f}), plus {rest}")
    if pattern == "serverless" and deployment.serverless:
        function = deployment.serverless.function
        return (f"{function.architecture} {function.memory_mb} MB × {assumptions.duration_ms:g} ms (compute "
                f"${compute:,.2f}) with a {deployment.serverless.api_type} API, plus {rest}")
    return f"{assumptions.devices} devices (compute ${compute:,.2f}), plus {rest or 'nothing else'}"


def traffic_limits(deployment: Deployment) -> dict[str, float]:
    """Requests/day each pattern serves as deployed: the API's throttle, the endpoint's autoscaling maximum."""
    limits: dict[str, float] = {}
    if deployment.serverless and deployment.serverless.throttle_rate_per_s:
        limits["serverless"] = deployment.serverless.throttle_rate_per_s * 86_400
    if deployment.realtime:
        capacities = [variant.max_count * variant.invocations_per_instance * 1440 / variant.weight
                      for variant in deployment.realtime.instance_variants
                      if variant.invocations_per_instance and variant.weight > 0 and not variant.shadow]
        if capacities:
            limits["realtime"] = min(capacities)
    return limits


def _instance_price_keys(deployment: Deployment) -> list[str]:
    keys = []
    if deployment.realtime:
        keys += [f"sagemaker.hosting:{v.instance_type}" for v in deployment.realtime.instance_variants]
        keys += [f"sagemaker.processing:{job.instance_type}" for job in deployment.realtime.monitoring_jobs]
    if deployment.batch:
        keys.append(f"sagemaker.transform:{deployment.batch.instance_type}")
    return keys


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise _argument_error(f"{text} is below 0")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise _argument_error(f"{text} is not above 0")
    return value


def _number(text: str) -> float:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise _argument_error(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _argument_error(f"{text!r} is not a finite number")
    return value


def _argument_error(message: str) -> Exception:
    import argparse

    return argparse.ArgumentTypeError(message)
