"""Operator commands (``python -m ops.<command>``): small CLIs over boto3 for running the deployed patterns."""
