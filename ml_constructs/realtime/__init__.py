"""The real-time pattern: SageMaker endpoint, its guardrails, alarms and the update guard."""
