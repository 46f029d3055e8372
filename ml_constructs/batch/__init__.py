"""The batch pattern: scheduled SageMaker Batch Transform through Step Functions."""
