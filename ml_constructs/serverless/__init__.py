"""The serverless pattern: the ONNX Lambda function, its API and its S3 upload trigger."""
