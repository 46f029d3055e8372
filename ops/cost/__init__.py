"""Which pattern, at what cost: monthly cost per deployment pattern, read from the synthesized templates.

    python -m ops.cost [--requests-per-day N] [--payload-kb KB] [--json | --seed] [--plot FILE.png]

Modules: ``templates`` reads cdk.out, ``schedules`` counts runs, ``prices`` holds the price book (and its
Price List API refresh), ``model`` turns facts × assumptions × prices into line items, ``report`` prints them,
``plot`` draws the break-even picture. Exit codes follow ops/cli.py.
"""
