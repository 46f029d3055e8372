"""The scikit-learn container's serving semantics, as a small ASGI app.

Reproduced from sagemaker-containers 2.8.6 (``_worker.py``, ``_transformer.py``, ``_env.py``) and the
1.2-1 container's ``serving.py``:
- the user module is ``SAGEMAKER_PROGRAM`` (minus ``.py``) imported from ``SAGEMAKER_SUBMIT_DIRECTORY``,
  and ``model_fn(model_dir)`` runs once per worker;
- Content-Type is the ``ContentType`` header, else ``Content-Type``, else ``application/json``;
- Accept is the ``Accept`` header unless it is missing or exactly ``*/*``, in which case it is
  ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default ``application/json``);
- the body reaches ``transform_fn`` as ``str`` when Content-Type is exactly ``application/json`` or
  ``text/csv`` (decoded as UTF-8 with replacement, like werkzeug), else as ``bytes``;
- a ``(body, content_type)`` tuple becomes a 200 response; a response object keeps its own status
  and headers; a ``str``/``bytes`` is a 200 ``text/html`` page, as Flask makes it;
- any exception from a hook, or a return value Flask cannot turn into a response, is a 500 with
  werkzeug's Internal Server Error page (the container registers no error handler);
- ``GET /ping`` answers 200 with an empty body; other methods on a route are 405, other paths 404.

Bodies are bounded (the container's nginx does this in front of gunicorn): a declared Content-Length over
the model's ``max_payload_bytes`` is refused with inference.py's own 413 document before any byte is read,
a body without one is refused as soon as it passes the limit (the rest is discarded by uvicorn, not
buffered, so a client that sends before it reads still gets the 413, as nginx's lingering close allows),
and a body that stops arriving is a 408 after ``body_timeout_s`` that closes the connection.

The transport differs on purpose: gunicorn runs uvicorn workers here instead of nginx in front of
gunicorn gevent workers (gevent is not installed). Like a gevent worker, a uvicorn worker runs each
request's hooks inline on one event loop, one request at a time per worker.
"""
import asyncio
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Awaitable, Callable

from werkzeug.exceptions import InternalServerError

PROGRAM_ENV = "SAGEMAKER_PROGRAM"
SUBMIT_DIRECTORY_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
JSON = "application/json"
ANY = "*/*"
UTF8_TYPES = ("application/json", "text/csv")
SPLIT_HOOKS = ("input_fn", "predict_fn", "output_fn")
#: Seconds a request body may take to arrive in full (a stalled client must not hold a worker's socket).
DEFAULT_BODY_TIMEOUT_S = 20.0
CLOSE = [(b"connection", b"close")]

LOGGER = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


class UserModuleError(Exception):
    """The user module cannot be served (the container refuses it the same way)."""


def load_user_module(environ: dict[str, str]) -> ModuleType:
    """Import the entry point named by the container's environment variables."""
    program = environ.get(PROGRAM_ENV, "")
    submit_directory = environ.get(SUBMIT_DIRECTORY_ENV, "")
    if not program or not submit_directory:
        raise UserModuleError(f"{PROGRAM_ENV} and {SUBMIT_DIRECTORY_ENV} must both be set")
    module_name = program[:-3] if program.endswith(".py") else program
    path = Path(submit_directory) / f"{module_name}.py"
    # The container puts the submit directory on the path, so sibling modules in code/ import too.
    if submit_directory not in sys.path:
        sys.path.insert(0, submit_directory)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise UserModuleError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def transform_hook(module: ModuleType) -> Callable[..., Any]:
    """The module's transform_fn, refused in the combinations the container refuses."""
    transform_fn = getattr(module, "transform_fn", None)
    split = [name for name in SPLIT_HOOKS if getattr(module, name, None) is not None]
    if transform_fn is not None and split:
        raise UserModuleError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")
    if transform_fn is None:
        # The container would fall back to its own decoders and model.predict; this stand-in
        # serves transform_fn modules only rather than imitate those defaults approximately.
        raise UserModuleError("this local server supports entry points that define transform_fn")
    if getattr(module, "model_fn", None) is None:
        raise UserModuleError("the entry point defines no model_fn")
    return transform_fn


class ContainerApp:
    """ASGI app answering /ping and /invocations the way the container's Flask worker does."""

    def __init__(self, *, transform_fn: Callable[..., Any], model: Any, default_accept: str = JSON,
                 max_body_bytes: int | None = None, body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> None:
        self.transform_fn = transform_fn
        self.model = model
        self.default_accept = default_accept
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                await _send(send, 405, [(b"allow", b"POST")], b"")
                return
            headers = _headers(scope)
            try:
                raw_body = await self._read_body(headers, receive)
            except _BodyRefused as refused:
                await _send(send, refused.status, [(b"content-type", JSON.encode())] + refused.headers, refused.body)
                return
            status, headers, body = self.invoke(headers, raw_body)
        elif path == "/ping":
            if method not in ("GET", "HEAD"):
                await _send(send, 405, [(b"allow", b"GET, HEAD")], b"")
                return
            status, headers, body = 200, [(b"content-type", JSON.encode())], b""
        else:
            status, headers, body = 404, [(b"content-type", b"text/plain")], b"Not Found"
        await _send(send, status, headers, b"" if method == "HEAD" else body)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.max_body_bytes
        declared = headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit:
            raise _BodyRefused.too_large(int(declared), limit)
        try:
            return await asyncio.wait_for(_body(receive, limit), timeout=self.body_timeout_s)
        except asyncio.TimeoutError:
            # The connection is closed: what is left of a stalled body will not be waited for.
            raise _BodyRefused(408, {"error": f"the request body did not arrive within {self.body_timeout_s:g} s",
                                     "code": "body_timeout"}, CLOSE) from None

    def invoke(self, headers: dict[str, str], raw_body: bytes) -> tuple[int, Headers, bytes]:
        """One /invocations request: what the container's Worker view and Flask would answer."""
        content_type = headers.get("contenttype") or headers.get("content-type") or JSON
        accept = headers.get("accept")
        if not accept or accept == ANY:
            accept = self.default_accept
        content: str | bytes = raw_body.decode("utf-8", "replace") if content_type in UTF8_TYPES else raw_body
        try:
            result = self.transform_fn(self.model, content, content_type, accept)
            return _to_response(result)
        except Exception:  # noqa: BLE001 - the container turns every hook exception into a 500
            LOGGER.exception("exception on /invocations [POST]")
            return _internal_server_error()


class _BodyRefused(Exception):
    """The body was not read: too large, or too slow to arrive."""

    def __init__(self, status: int, document: dict[str, Any], headers: Headers | None = None) -> None:
        super().__init__(document["error"])
        self.status, self.body, self.headers = status, json.dumps(document).encode(), headers or []

    @classmethod
    def too_large(cls, size: int, limit: int) -> "_BodyRefused":
        # The document inference.py answers for a body over its limit, so clients see one 413 either way.
        return cls(413, {"error": f"request body is {size} bytes; the limit is {limit}", "code": "payload_too_large",
                         "limit_bytes": limit})


def create_app(*, model_dir: str, environ: dict[str, str] | None = None,
               body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> ContainerApp:
    """Load the user module and its model (model_fn once), and return the app serving them."""
    environ = dict(os.environ if environ is None else environ)
    module = load_user_module(environ)
    transform_fn = transform_hook(module)
    model = module.model_fn(model_dir)
    # The model's own payload limit, when it declares one (inference.py's LoadedModel does).
    limit = getattr(model, "max_payload_bytes", None)
    return ContainerApp(transform_fn=transform_fn, model=model,
                        default_accept=environ.get(DEFAULT_ACCEPT_ENV, JSON),
                        max_body_bytes=limit if isinstance(limit, int) else None, body_timeout_s=body_timeout_s)


def _to_response(result: Any) -> tuple[int, Headers, bytes]:
    if isinstance(result, tuple):
        body, mimetype = result[0], result[1]
        return 200, [(b"content-type", _content_type(mimetype).encode("latin-1"))], _encode(body)
    if hasattr(result, "status_code") and hasattr(result, "get_data") and hasattr(result, "headers"):
        headers = [(name.lower().encode("latin-1"), str(value).encode("latin-1"))
                   for name, value in result.headers.items() if name.lower() != "content-length"]
        return int(result.status_code), headers, result.get_data()
    if isinstance(result, (str, bytes)):
        return 200, [(b"content-type", b"text/html; charset=utf-8")], _encode(result)
    raise TypeError(f"the view function returned {type(result).__name__}, which is not a response")


def _internal_server_error() -> tuple[int, Headers, bytes]:
    response = InternalServerError().get_response()
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
               for name, value in response.headers.items() if name.lower() != "content-length"]
    return response.status_code, headers, response.get_data()


def _content_type(mimetype: str) -> str:
    # Flask adds a charset to text/* mimetypes (and to application/json it does not).
    return f"{mimetype}; charset=utf-8" if mimetype.startswith("text/") and "charset" not in mimetype else mimetype


def _encode(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


async def _body(receive: Receive, limit: int | None = None) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            raise _BodyRefused.too_large(size, limit)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    headers = headers + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
