"""The thin Greengrass IPC layer: subscribe to the input topic, score each message, publish the outcome.

Works with ``awsiot.greengrasscoreipc.clientv2.GreengrassCoreIPCClientV2`` (awsiotsdk 1.x): its
``subscribe_to_topic`` delivers ``SubscriptionResponseMessage`` events to ``on_stream_event`` on the
client's executor threads, and ``publish_to_topic`` blocks until the nucleus accepts the message.
Nothing here knows about models; ``handle`` does the work and returns an object with ``ok`` and ``body``.
Pub/sub is local to the device, so the component keeps working while the device is offline.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from awsiot.greengrasscoreipc.model import JsonMessage, PublishMessage

LOGGER = logging.getLogger("edge.ipc")


# No kw_only: dataclass() only accepts it from Python 3.10, and devices may run 3.9 (see requirements.txt).
# Callers pass the three topics by keyword.
@dataclass(frozen=True)
class Topics:
    """Where messages come from and where results and errors go (local pub/sub topics)."""

    input: str
    output: str
    error: str


class IpcBridge:
    """Connects a message handler to Greengrass local publish/subscribe."""

    def __init__(self, client: Any, handle: Callable[[Any], Any], *, topics: Topics) -> None:
        self.client = client
        self.handle = handle
        self.topics = topics
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self.counts = {"scored": 0, "rejected": 0, "publish_failures": 0, "stream_errors": 0}

    def start(self) -> None:
        """Subscribe to the input topic; raises if the nucleus refuses (e.g. access control)."""
        self.client.subscribe_to_topic(topic=self.topics.input, on_stream_event=self.on_message,
                                       on_stream_error=self.on_stream_error, on_stream_closed=self.on_stream_closed)
        LOGGER.info("subscribed to %s; results go to %s, errors to %s",
                    self.topics.input, self.topics.output, self.topics.error)

    def on_message(self, event: Any) -> None:
        """One SubscriptionResponseMessage: score it and publish to the output or error topic."""
        payload = outcome = None
        try:
            payload = _payload(event)
            outcome = self.handle(payload) if payload is not None else None
        except Exception:  # the handler is meant never to raise; keep the subscription alive if it does
            LOGGER.exception("handler failed on a message")
        if outcome is None:
            self._count("rejected")
            self._publish(self.topics.error, {"error": "message has neither a JSON nor a binary payload"}
                          if payload is None else {"error": "internal error while scoring the message"})
            return
        if outcome.ok:
            self._count("scored")
            self._publish(self.topics.output, outcome.body)
        else:
            self._count("rejected")
            LOGGER.warning("rejected a message on %s: %s", self.topics.input, outcome.body.get("error"))
            self._publish(self.topics.error, outcome.body)

    def on_stream_error(self, error: Exception) -> bool:
        """Log and keep the stream open (returning True would close it)."""
        self._count("stream_errors")
        LOGGER.error("subscription stream error on %s: %r", self.topics.input, error)
        return False

    def on_stream_closed(self) -> None:
        LOGGER.warning("subscription to %s closed", self.topics.input)
        self.closed.set()

    def _publish(self, topic: str, body: dict) -> None:
        try:
            self.client.publish_to_topic(topic=topic,
                                         publish_message=PublishMessage(json_message=JsonMessage(message=body)))
        except Exception as exc:  # a refused or failed publish loses one answer, not the component
            self._count("publish_failures")
            LOGGER.error("publish to %s failed: %r", topic, exc)

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1


def _payload(event: Any) -> Any:
    """The message carried by a SubscriptionResponseMessage: a decoded JSON object, or raw bytes."""
    json_message = getattr(event, "json_message", None)
    if json_message is not None:
        return json_message.message
    binary_message = getattr(event, "binary_message", None)
    if binary_message is not None:
        return binary_message.message if binary_message.message is not None else b""
    return None


def run_until_stopped(bridge: IpcBridge, stop: threading.Event, *, poll_s: float = 1.0) -> int:
    """Serve until ``stop`` is set (exit code 0) or the subscription closes (1, so the nucleus restarts us)."""
    bridge.start()
    while not stop.is_set():
        if bridge.closed.wait(poll_s):
            LOGGER.error("the input subscription closed; exiting so that Greengrass restarts the component")
            return 1
    return 0
