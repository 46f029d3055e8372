"""The one exit-code table and error reporting every ``python -m ops.<command>`` shares.

    0  success
    1  the operation ran and failed (a job failed, a check found violations, a wait gave up)
    2  usage or configuration error (bad option, unreadable file, unknown endpoint name format)
    3  AWS, credentials or network error (no region, no credentials, AWS refused or was unreachable)

Errors are one line on stderr (``error: ...``), never a traceback; data goes to stdout (``--json`` where
the output is data).
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AWS = 3


class OpsError(Exception):
    """A failure to report as one line, with the exit code that classifies it."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class OperationFailed(OpsError):
    """The operation ran and did not succeed: exit 1."""

    exit_code = EXIT_FAILED


class UsageError(OpsError):
    """A mistake in the command line or its inputs, found before any AWS call: exit 2."""

    exit_code = EXIT_USAGE


class AwsError(OpsError):
    """AWS, credentials or the network failed us: exit 3."""

    exit_code = EXIT_AWS


class Parser(argparse.ArgumentParser):
    """argparse with the help text's examples kept as written and usage errors on exit code 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def positive_number(unit: str, *, described: str | None = None,
                    maximum: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number of ``unit`` above 0 (and at most ``maximum``), so a bad option is a
    usage error before any AWS call."""
    what = described or f"a number of {unit}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
        if not (math.isfinite(value) and value > 0 and (maximum is None or value <= maximum)):
            bound = "" if maximum is None else f" and at most {maximum:g}"
            raise argparse.ArgumentTypeError(f"must be {what} above 0{bound}, got {text}")
        return value

    return parse


def run(command: Callable[[], int], *, err: TextIO | None = None) -> int:
    """Run ``command`` and map every expected failure to one stderr line and the table's exit code.

    botocore's own errors (no region, no credentials, endpoint unreachable, a refused call) are exit 3.
    Anything else is a defect and keeps its traceback.
    """
    err = err or sys.stderr
    try:
        return command()
    except OpsError as error:
        print(f"error: {error}", file=err)
        return error.exit_code
    except SystemExit as exc:  # argparse: --help is 0, a usage error is 2 (it already printed why)
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    except Exception as error:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(error, (BotoCoreError, ClientError)):
            print(f"error: {error}", file=err)
            return EXIT_AWS
        raise
