"""The built-in drift and quality monitoring engine: the ``DriftMonitor`` construct and its Lambda job.

``drift_job/runtime/`` is exactly what ships in the Lambda; the CDK app never imports it.
"""
