"""moto's in-memory AWS for one test, without paying again for what does not change between tests.

``moto.mock_aws`` resets boto3's default session on entry, so every ``boto3.client(...)`` in every test would
load its service model and endpoint rules again (about 80 ms a client, 84 clients in the batch workflow tests
alone). :func:`mocked_aws` hands boto3 one session for the run instead; each test still gets its own clients and
moto's state is still reset between tests. Its session is created here, after moto is imported, so it carries
moto's request hook (a session made before that import would send requests to AWS).

moto also parses a state machine definition with its ANTLR grammar when it is created (half a second for the
batch workflow) and again when it runs; :func:`mocked_aws` remembers the definitions already found valid in
this run, so the same definition is checked once and parsed for each execution as before.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator

import boto3
from moto import mock_aws
from moto.stepfunctions.parser.models import StepFunctionsParserBackend


@functools.lru_cache(maxsize=None)
def _session() -> boto3.Session:
    return boto3.Session()


_valid_definitions: set[str] = set()
_validate_definition = StepFunctionsParserBackend._validate_definition


def _validate_once(definition: str) -> None:
    if definition not in _valid_definitions:
        _validate_definition(definition)  # raises InvalidDefinition as moto does
        _valid_definitions.add(definition)


@contextlib.contextmanager
def mocked_aws(config: dict[str, Any] | None = None) -> Iterator[None]:
    """``moto.mock_aws(config=config)`` with the run's shared boto3 session as the default session."""
    with mock_aws(config=config), \
            contextlib.ExitStack() as restore:
        restore.callback(setattr, StepFunctionsParserBackend, "_validate_definition", _validate_definition)
        StepFunctionsParserBackend._validate_definition = staticmethod(_validate_once)
        boto3.DEFAULT_SESSION = _session()  # moto restores its own value on exit
        yield
