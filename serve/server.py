"""Run the container app under a gunicorn arbiter, one worker per CPU, as the container does."""
import multiprocessing
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from gunicorn.app.base import BaseApplication

with warnings.catch_warnings():
    # uvicorn.workers warns that it moved to the uvicorn-worker package; it still ships and works.
    warnings.simplefilter("ignore", DeprecationWarning)
    from uvicorn.workers import UvicornWorker

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
DEFAULT_TIMEOUT_S = 60
KEEPALIVE_S = 75


class InlineUvicornWorker(UvicornWorker):
    """A uvicorn worker on the stdlib asyncio loop, without the lifespan protocol.

    Why uvicorn under gunicorn: measured on 2 vCPUs with one-row requests, gunicorn gthread + Flask
    gave a p99 of ~6-8 ms at concurrency 8, this ~3-4 ms. (uvicorn's own multi-worker supervisor
    served keep-alive requests in ~44 ms each here: Nagle vs delayed ACK on its inherited socket.)
    """

    CONFIG_KWARGS = {"loop": "asyncio", "http": "auto", "lifespan": "off"}


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """Where and how wide to serve; defaults follow the container's environment variables."""
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 0  # 0: SAGEMAKER_MODEL_SERVER_WORKERS, else one per CPU like the container
    timeout_s: int = 0  # 0: SAGEMAKER_MODEL_SERVER_TIMEOUT, else 60 s like the container


class GunicornServer(BaseApplication):
    """A gunicorn arbiter whose workers each build the app (so model_fn runs once per worker)."""

    def __init__(self, app_factory: Callable[[], Any], options: ServerOptions) -> None:
        self._app_factory = app_factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        options = self._options
        workers = options.workers or int(os.environ.get(WORKERS_ENV, multiprocessing.cpu_count()))
        timeout = options.timeout_s or int(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
        settings = {
            "bind": f"{options.host}:{options.port}",
            "workers": workers,
            "worker_class": InlineUvicornWorker,
            "timeout": timeout,
            "keepalive": KEEPALIVE_S,
            "loglevel": "info",
            "accesslog": None,
            # gunicorn 27 opens a control socket in the home directory by default: two local
            # servers (a test and a benchmark) would fight over it.
            "control_socket_disable": True,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app_factory()
