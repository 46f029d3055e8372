"""Entry point of the Greengrass component (and of its standalone mode for local testing).

    python main.py greengrass --model model.onnx --artifacts-dir DIR --input-topic T --output-topic T --error-topic T
    python main.py standalone --model model.onnx [--metadata metadata.json] [--input rows.jsonl]

``--metadata`` (the model's metadata.json) supplies the version and decision threshold and is checked
against the ONNX file; ``--model-version`` and ``--threshold`` override it.

Logs go to stderr (Greengrass writes them to the component's log file); standalone results go to stdout.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from predictor import DEFAULT_THRESHOLD, FraudPredictor, ModelContractError, read_metadata
from standalone import score_lines

CONNECT_ATTEMPTS = 5
CONNECT_BACKOFF_S = 2.0
LOGGER = logging.getLogger("edge")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="ONNX fraud scoring on a Greengrass core device")
    modes = parser.add_subparsers(dest="mode", required=True)
    for mode, help_text in (("greengrass", "serve local pub/sub over Greengrass IPC"),
                            ("standalone", "score JSON Lines from a file or stdin")):
        sub = modes.add_parser(mode, help=help_text)
        sub.add_argument("--model", required=True, help="ONNX file; relative paths resolve against --artifacts-dir")
        sub.add_argument("--artifacts-dir", default=".", help="folder relative model paths are resolved against")
        sub.add_argument("--metadata", default="",
                         help="the model's metadata.json (relative paths resolve against --artifacts-dir)")
        sub.add_argument("--model-version", default="",
                         help="reported in every result (default: metadata's model_version, else the file hash)")
        sub.add_argument("--threshold", type=float, default=None,
                         help="P(class 1) at or above which the prediction is 1 (default: metadata's "
                              f"decision_threshold, else {DEFAULT_THRESHOLD})")
    greengrass = modes.choices["greengrass"]
    for name in ("input", "output", "error"):
        greengrass.add_argument(f"--{name}-topic", required=True)
    modes.choices["standalone"].add_argument("--input", default="-", help="JSON Lines file, or - for stdin")
    return parser


def _connect():
    from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return GreengrassCoreIPCClientV2()
        except Exception as exc:  # the nucleus may still be starting its IPC server
            LOGGER.warning("IPC connection attempt %d/%d failed: %r", attempt, CONNECT_ATTEMPTS, exc)
            if attempt == CONNECT_ATTEMPTS:
                raise
            time.sleep(CONNECT_BACKOFF_S * attempt)


def _serve_greengrass(predictor: FraudPredictor, args: argparse.Namespace) -> int:
    from ipc_bridge import IpcBridge, Topics, run_until_stopped

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        client = _connect()
    except Exception as exc:
        LOGGER.error("cannot connect to the Greengrass nucleus over IPC (is this running as a Greengrass "
                     "component? use `standalone` to run without one): %r", exc)
        return 1
    bridge = IpcBridge(client, predictor.handle, topics=Topics(
        input=args.input_topic, output=args.output_topic, error=args.error_topic))
    try:
        return run_until_stopped(bridge, stop)
    finally:
        LOGGER.info("stopping; counts %s", bridge.counts)
        client.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model_path = Path(args.artifacts_dir) / args.model
    try:
        info = read_metadata(Path(args.artifacts_dir) / args.metadata) if args.metadata else None
        threshold = args.threshold if args.threshold is not None else (
            info.threshold if info else DEFAULT_THRESHOLD)
        version = args.model_version or (info.model_version if info else None)
        predictor = FraudPredictor(model_path, model_version=version, threshold=threshold)
        if info and len(info.feature_names) != predictor.n_features:
            raise ModelContractError(f"metadata lists {len(info.feature_names)} features, {model_path} takes "
                                     f"{predictor.n_features}")
    except (ModelContractError, ValueError, OSError) as exc:
        LOGGER.error("cannot load the model: %s", exc)
        return 2
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        LOGGER.error("cannot load the model %s: %s", model_path, exc)
        return 2
    LOGGER.info("loaded %s (version %s, %d features, threshold %s)",
                model_path, predictor.model_version, predictor.n_features, predictor.threshold)
    if args.mode == "standalone":
        try:
            # Bytes, not text: each line is decoded by the predictor, so a line that is not UTF-8 is
            # answered as an error in place instead of ending the run with a UnicodeDecodeError.
            source = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
        except OSError as exc:
            LOGGER.error("cannot read the input file %s: %s", args.input, exc.strerror or exc)
            return 2
        with source:
            scored, rejected = score_lines(predictor.handle, source, sys.stdout)
        LOGGER.info("scored %d message(s), rejected %d", scored, rejected)
        return 0
    return _serve_greengrass(predictor, args)


if __name__ == "__main__":
    sys.exit(main())
