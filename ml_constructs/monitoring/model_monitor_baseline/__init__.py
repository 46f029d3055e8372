"""The Model Monitor baseline: construct.py runs runtime/baseline_job.py from a custom resource."""
