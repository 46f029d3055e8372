"""Where requests go: a URL speaking the container contract, or a SageMaker endpoint through InvokeEndpoint.

A target's ``invoke(body)`` returns None on success or a short error kind ("HTTP 500", "ModelError",
"timeout"), and never raises: a failed request is data for the report, not the end of the rehearsal.
"""
from __future__ import annotations

import http.client
import socket
import threading
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from ops.cli import AwsError, UsageError

DEFAULT_TIMEOUT_S = 10.0


class Target(Protocol):
    description: str

    def invoke(self, body: bytes) -> str | None: ...


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    path: str


def parse_url(text: str) -> ParsedUrl:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url must be an http(s) URL such as http://127.0.0.1:8080/invocations, got {text!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"--url has an invalid port: {text!r}") from None
    path = parts.path or "/invocations"
    return ParsedUrl(parts.scheme, parts.hostname, port, path + (f"?{parts.query}" if parts.query else ""))


class HttpTarget:
    """POST to a URL with one keep-alive connection per sending thread (like a pool of clients)."""

    def __init__(self, url: str, *, content_type: str, accept: str = "application/json",
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = parse_url(url)
        self.description = url
        self.headers = {"Content-Type": content_type, "Accept": accept}
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            factory = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
            connection = factory(self.url.host, self.url.port, timeout=self.timeout_s)
            self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def invoke(self, body: bytes) -> str | None:
        try:
            connection = self._connection()
            connection.request("POST", self.url.path, body=body, headers=self.headers)
            response = connection.getresponse()
            response.read()
            if response.will_close:
                self._drop_connection()
            return None if response.status < 400 else f"HTTP {response.status}"
        except (socket.timeout, TimeoutError):
            self._drop_connection()
            return "timeout"
        except (OSError, http.client.HTTPException) as error:
            self._drop_connection()
            return f"connection: {type(error).__name__}"

    def check(self) -> None:
        """Refuse to start when nothing listens at the URL (exit 3: the network, not the command line)."""
        try:
            with socket.create_connection((self.url.host, self.url.port), timeout=min(self.timeout_s, 5.0)):
                pass
        except OSError as error:
            raise AwsError(f"nothing answers at {self.description}: {error}") from None


class EndpointTarget:
    """SageMaker runtime InvokeEndpoint, the way a client application calls the endpoint."""

    def __init__(self, runtime: Any, endpoint_name: str, *, content_type: str,
                 accept: str = "application/json") -> None:
        self.runtime = runtime
        self.endpoint_name = endpoint_name
        self.description = f"endpoint {endpoint_name}"
        self.content_type = content_type
        self.accept = accept

    def invoke(self, body: bytes) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        try:
            response = self.runtime.invoke_endpoint(EndpointName=self.endpoint_name, Body=body,
                                                    ContentType=self.content_type, Accept=self.accept)
            response["Body"].read()
            return None
        except ClientError as error:
            return str(error.response.get("Error", {}).get("Code") or "ClientError")
        except ReadTimeoutError:
            return "timeout"
        except BotoCoreError as error:
            return type(error).__name__


def check_endpoint(sagemaker: Any, endpoint_name: str) -> dict:
    """DescribeEndpoint, refusing (exit 2) an endpoint that does not exist or is not InService."""
    from botocore.exceptions import ClientError

    try:
        description = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        if "Could not find" in message or error.response.get("Error", {}).get("Code") == "ResourceNotFound":
            raise UsageError(f"endpoint {endpoint_name} does not exist in this account and region; "
                             "check the name (python -m ops.traffic status) and --region") from None
        raise
    status = description.get("EndpointStatus")
    if status != "InService":
        raise UsageError(f"endpoint {endpoint_name} is {status}, not InService; rehearse when it is in service")
    return description
