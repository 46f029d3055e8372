"""The update guard custom resource: construct.py ships runtime/index.py."""
