"""Runtime of the serverless pattern: model loading, request validation and S3 file scoring.

Imports only what the Lambda package bundles (onnxruntime, numpy, pydantic, Powertools) and, lazily,
boto3 from the Lambda Python runtime. Never imports the CDK app or the training code.
"""
