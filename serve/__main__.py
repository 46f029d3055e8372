"""``python -m serve``: stage a model package and serve it like the SageMaker container.

Examples:
    python -m serve                                  # artifacts/fraud-detector + inference/
    python -m serve --model-tar path/to/model.tar.gz # exactly what SageMaker would download
    PORT=9000 python -m serve
"""
import argparse
import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

from serve import container, server, staging

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARTIFACTS = REPO_ROOT / "artifacts" / "fraud-detector"
DEFAULT_CODE = REPO_ROOT / "inference"
PORT_ENV = "PORT"
EXIT_USAGE = 2


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {port}")
    return port


def _workers(text: str) -> int:
    try:
        workers = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if workers < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (one per CPU) or more, got {workers}")
    return workers


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return seconds


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model-dir", type=Path, default=DEFAULT_ARTIFACTS,
                        help="training artifacts (model.joblib, metadata.json); code comes from --code-dir")
    source.add_argument("--model-tar", type=Path, help="a model.tar.gz with model files and code/inference.py")
    parser.add_argument("--code-dir", type=Path, default=DEFAULT_CODE, help="what goes into code/ (default: inference/)")
    parser.add_argument("--host", default=server.DEFAULT_HOST)
    parser.add_argument("--port", type=_port, default=os.environ.get(PORT_ENV, str(server.DEFAULT_PORT)),
                        help=f"default: ${PORT_ENV}, else {server.DEFAULT_PORT}")
    parser.add_argument("--workers", type=_workers, default=0, help="default: one per CPU, like the container")
    parser.add_argument("--body-timeout", type=_seconds, default=container.DEFAULT_BODY_TIMEOUT_S,
                        help="seconds a request body may take to arrive before a 408 "
                             f"(default {container.DEFAULT_BODY_TIMEOUT_S:g})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # One BLAS/OpenMP thread per worker (set before the workers import numpy).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    scratch = Path(tempfile.mkdtemp(prefix="serve-model-"))
    owner = os.getpid()
    try:
        model_dir = scratch / "model"
        if args.model_tar:
            staging.stage_from_tar(model_tar=args.model_tar, destination=model_dir)
        else:
            staging.stage_from_artifacts(artifacts_dir=args.model_dir, code_source=args.code_dir,
                                         destination=model_dir)
        # The environment the CDK Model sets for the container.
        os.environ[container.PROGRAM_ENV] = staging.ENTRY_POINT
        os.environ[container.SUBMIT_DIRECTORY_ENV] = str(model_dir / staging.CODE_DIR)
        factory = functools.partial(container.create_app, model_dir=str(model_dir), body_timeout_s=args.body_timeout)
        # Fail here, once, rather than in every worker; a model_fn crash keeps its traceback.
        factory()
        print(f"serving {model_dir} on http://{args.host}:{args.port} (GET /ping, POST /invocations)", flush=True)
        server.GunicornServer(factory, server.ServerOptions(host=args.host, port=args.port,
                                                            workers=args.workers)).run()
    except (staging.StagingError, container.UserModuleError) as exc:
        # A wrong path or an unusable entry point: the user's to fix, so one line, not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        # gunicorn workers are forks that leave through this frame too (SystemExit): only the
        # process that made the directory removes it, or a recycled worker would delete the model.
        if os.getpid() == owner:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
