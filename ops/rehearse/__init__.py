"""``python -m ops.rehearse``: rehearse autoscaling before you need it (see ``__main__`` for the command)."""
