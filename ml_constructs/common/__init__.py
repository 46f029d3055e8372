"""Shared by every pattern: storage and keys, the alert topic, log groups, naming, archives, the model package."""
