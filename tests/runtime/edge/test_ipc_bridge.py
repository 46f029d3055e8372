"""The IPC layer against the awsiotsdk 1.31 client interface, without a Greengrass nucleus.

Two doubles: ``FakeIpcClient`` has exactly the signatures of ``GreengrassCoreIPCClientV2``'s methods
the bridge uses (checked below against the installed SDK), and ``FakeConnection`` stands in for the
low-level ``GreengrassCoreIPCClient`` under a *real* ``GreengrassCoreIPCClientV2``, so the SDK's own
wrapper (stream handler types, executor dispatch, request models) runs as on a device.
"""
from __future__ import annotations

import concurrent.futures
import inspect
import json
import threading
import time

import pytest
from awsiot.greengrasscoreipc import model
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from tests.runtime.edge.test_predictor import GOOD_FEATURES

TOPICS = {"input": "fraud/in", "output": "fraud/out", "error": "fraud/err"}
#: Upper bound on a serving loop in a test: past it the loop is ended with the wrong exit code (a failure, not a hang).
SERVE_FALLBACK_S = 10.0


class FakeIpcClient:
    """Records calls; same keyword-only signatures as GreengrassCoreIPCClientV2 (see the first test)."""

    def __init__(self, *, fail_publish_to: str | None = None) -> None:
        self.subscriptions: list[dict] = []
        self.published: list[tuple[str, model.PublishMessage]] = []
        self.fail_publish_to = fail_publish_to
        self.closed = False
        self.subscribed = threading.Event()

    def subscribe_to_topic(self, *, topic=None, receive_mode=None, stream_handler=None, on_stream_event=None,
                           on_stream_error=None, on_stream_closed=None):
        self.subscriptions.append({"topic": topic, "receive_mode": receive_mode, "on_stream_event": on_stream_event,
                                   "on_stream_error": on_stream_error, "on_stream_closed": on_stream_closed})
        self.subscribed.set()
        return model.SubscribeToTopicResponse(), object()

    def publish_to_topic(self, *, topic=None, publish_message=None):
        if topic == self.fail_publish_to:
            raise model.UnauthorizedError(message=f"not authorized to publish to {topic}")
        self.published.append((topic, publish_message))
        return model.PublishToTopicResponse()

    def close(self, *, executor_wait=True):
        self.closed = True
        future = concurrent.futures.Future()
        future.set_result(None)
        return future

    def deliver(self, event) -> None:
        self.subscriptions[-1]["on_stream_event"](event)


def json_event(message) -> model.SubscriptionResponseMessage:
    return model.SubscriptionResponseMessage(json_message=model.JsonMessage(
        message=message, context=model.MessageContext(topic=TOPICS["input"])))


def binary_event(data: bytes) -> model.SubscriptionResponseMessage:
    return model.SubscriptionResponseMessage(binary_message=model.BinaryMessage(
        message=data, context=model.MessageContext(topic=TOPICS["input"])))


@pytest.fixture
def bridge_parts(ipc_module, predictor):
    client = FakeIpcClient()
    bridge = ipc_module.IpcBridge(client, predictor.handle, topics=ipc_module.Topics(**TOPICS))
    bridge.start()
    return client, bridge


@pytest.mark.parametrize("method", ["subscribe_to_topic", "publish_to_topic", "close"])
def test_fake_client_has_the_sdk_signatures(method):
    # GIVEN the installed awsiotsdk client  THEN the fake's methods take exactly the same parameters
    def shape(function):
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    assert shape(getattr(FakeIpcClient, method)) == shape(getattr(GreengrassCoreIPCClientV2, method))


def test_subscribes_to_the_input_topic_only(bridge_parts):
    client, _ = bridge_parts
    # THEN one subscription, to the input topic, with all three stream callbacks
    assert [s["topic"] for s in client.subscriptions] == [TOPICS["input"]]
    assert all(callable(client.subscriptions[0][key])
               for key in ("on_stream_event", "on_stream_error", "on_stream_closed"))


def test_json_message_is_scored_and_published_as_json(bridge_parts):
    client, bridge = bridge_parts
    # WHEN a JSON pub/sub message arrives
    client.deliver(json_event({"id": "t-1", "features": GOOD_FEATURES}))
    # THEN one JSON message goes to the output topic, serializable the way the SDK sends it
    [(topic, message)] = client.published
    assert topic == TOPICS["output"] and message.binary_message is None
    body = message.json_message.message
    assert set(body) == {"id", "prediction", "confidence", "model_version", "latency_ms"}
    wire = json.loads(json.dumps(model.PublishToTopicRequest(topic=topic, publish_message=message)._to_payload()))
    assert wire["publishMessage"]["jsonMessage"]["message"]["id"] == "t-1"
    assert bridge.counts["scored"] == 1


def test_binary_message_is_decoded(bridge_parts):
    client, _ = bridge_parts
    # WHEN a binary message carries the JSON text
    client.deliver(binary_event(json.dumps({"features": GOOD_FEATURES}).encode()))
    # THEN it is scored like a JSON message
    assert client.published[0][0] == TOPICS["output"]


@pytest.mark.parametrize("event, reason", [
    (json_event({"features": [1, 2]}), "has 2 values"),
    (json_event({"features": [3e38] * 12}), "non-finite score"),
    (binary_event(b"\x00garbage"), "not valid JSON"),
    (model.SubscriptionResponseMessage(), "neither a JSON nor a binary payload"),
])
def test_bad_message_goes_to_the_error_topic(bridge_parts, event, reason):
    client, bridge = bridge_parts
    # WHEN a message that cannot be scored arrives
    client.deliver(event)
    # THEN the reason is published on the error topic, and the next good message is still scored
    [(topic, message)] = client.published
    assert topic == TOPICS["error"] and reason in message.json_message.message["error"]
    client.deliver(json_event({"features": GOOD_FEATURES}))
    assert client.published[-1][0] == TOPICS["output"]
    assert bridge.counts == {"scored": 1, "rejected": 1, "publish_failures": 0, "stream_errors": 0}


def test_failed_publish_is_counted_not_raised(ipc_module, predictor):
    # GIVEN a nucleus that refuses publishing to the output topic (e.g. access control changed)
    client = FakeIpcClient(fail_publish_to=TOPICS["output"])
    bridge = ipc_module.IpcBridge(client, predictor.handle, topics=ipc_module.Topics(**TOPICS))
    bridge.start()
    # WHEN a good message arrives  THEN the callback returns normally and the failure is counted
    client.deliver(json_event({"features": GOOD_FEATURES}))
    assert bridge.counts["publish_failures"] == 1 and client.published == []


def test_handler_exception_is_answered(ipc_module):
    # GIVEN a handler that raises (it should not, but a bug must not kill the subscription)
    def broken(_payload):
        raise ZeroDivisionError

    client = FakeIpcClient()
    bridge = ipc_module.IpcBridge(client, broken, topics=ipc_module.Topics(**TOPICS))
    bridge.start()
    client.deliver(json_event({"features": GOOD_FEATURES}))
    # THEN an internal error is published on the error topic
    assert client.published[0][0] == TOPICS["error"]
    assert client.published[0][1].json_message.message == {"error": "internal error while scoring the message"}


def test_concurrent_deliveries_are_all_answered(bridge_parts):
    client, bridge = bridge_parts
    # GIVEN the SDK calls on_stream_event from its executor threads
    events = [json_event({"id": index, "features": GOOD_FEATURES}) for index in range(200)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(client.deliver, events))
    # THEN every message is answered exactly once
    assert sorted(message.json_message.message["id"] for _, message in client.published) == list(range(200))
    assert bridge.counts["scored"] == 200


def test_stream_error_keeps_the_subscription(bridge_parts):
    client, bridge = bridge_parts
    # WHEN the stream reports an error  THEN the bridge asks to keep it open (False) and counts it
    assert client.subscriptions[0]["on_stream_error"](RuntimeError("connection hiccup")) is False
    assert bridge.counts["stream_errors"] == 1 and not bridge.closed.is_set()


def serve_and_trigger(ipc_module, bridge, client, stop, *, action, fallback,
                      fallback_s: float = SERVE_FALLBACK_S) -> int:
    """run_until_stopped, with ``action`` run once ``client`` has the subscription (never before it exists).

    ``fallback`` runs after ``fallback_s`` whatever happens (e.g. ``action`` raised in its thread), so a
    broken test ends with a wrong exit code instead of looping forever (there is no pytest-timeout here).
    """
    def trigger():
        if client.subscribed.wait(fallback_s):
            action()

    watchdog = threading.Timer(fallback_s, fallback)
    watchdog.daemon = True
    threading.Thread(target=trigger, daemon=True).start()
    watchdog.start()
    try:
        return ipc_module.run_until_stopped(bridge, stop, poll_s=0.01)
    finally:
        watchdog.cancel()


def test_run_until_stopped_exit_codes(ipc_module, predictor):
    # GIVEN a served bridge
    client = FakeIpcClient()
    bridge = ipc_module.IpcBridge(client, predictor.handle, topics=ipc_module.Topics(**TOPICS))
    stop = threading.Event()
    # WHEN the subscription closes  THEN serving ends with 1, so the nucleus restarts the component
    assert serve_and_trigger(ipc_module, bridge, client, stop, fallback=stop.set,
                             action=lambda: client.subscriptions[0]["on_stream_closed"]()) == 1
    # WHEN instead the component is asked to stop (SIGTERM)  THEN serving ends with 0
    client2 = FakeIpcClient()
    bridge2 = ipc_module.IpcBridge(client2, predictor.handle, topics=ipc_module.Topics(**TOPICS))
    assert serve_and_trigger(ipc_module, bridge2, client2, stop, action=stop.set, fallback=bridge2.closed.set) == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_serving_ends_even_if_the_trigger_fails(ipc_module, predictor):
    # GIVEN a trigger that raises in its thread (what the old fixed-delay timer did when it fired too early)
    client = FakeIpcClient()
    bridge = ipc_module.IpcBridge(client, predictor.handle, topics=ipc_module.Topics(**TOPICS))
    stop = threading.Event()

    def broken():
        raise IndexError("no subscription yet")

    # WHEN served  THEN the fallback ends the loop (exit 0 from stop) instead of hanging the suite
    started = time.perf_counter()
    assert serve_and_trigger(ipc_module, bridge, client, stop, action=broken, fallback=stop.set, fallback_s=0.2) == 0
    assert time.perf_counter() - started < SERVE_FALLBACK_S


class FakeOperation:
    """A low-level streaming operation: activate() sends the request; get_response() is the reply."""

    def __init__(self, response, stream_handler=None) -> None:
        self.response, self.stream_handler, self.request = response, stream_handler, None

    def activate(self, request):
        self.request = request
        return _done(None)

    def get_response(self):
        return self.response if isinstance(self.response, concurrent.futures.Future) else _done(self.response)


class FakeConnection:
    """Stands in for GreengrassCoreIPCClient (the eventstream connection) under the real ClientV2."""

    def __init__(self) -> None:
        self.subscribe_operations: list[FakeOperation] = []
        self.publish_operations: list[FakeOperation] = []

    def new_subscribe_to_topic(self, stream_handler):
        operation = FakeOperation(model.SubscribeToTopicResponse(), stream_handler)
        self.subscribe_operations.append(operation)
        return operation

    def new_publish_to_topic(self):
        operation = FakeOperation(model.PublishToTopicResponse())
        self.publish_operations.append(operation)
        return operation

    def close(self):
        return _done(None)


def _done(value):
    future = concurrent.futures.Future()
    future.set_result(value)
    return future


def test_bridge_through_the_real_sdk_client(ipc_module, predictor):
    # GIVEN the SDK's GreengrassCoreIPCClientV2 with its executor, over a fake connection
    connection = FakeConnection()
    client = GreengrassCoreIPCClientV2(client=connection)
    bridge = ipc_module.IpcBridge(client, predictor.handle, topics=ipc_module.Topics(**TOPICS))
    # WHEN the bridge subscribes and the nucleus streams a good and a bad message
    bridge.start()
    [subscription] = connection.subscribe_operations
    assert isinstance(subscription.request, model.SubscribeToTopicRequest)
    assert subscription.request.topic == TOPICS["input"]
    subscription.stream_handler.on_stream_event(json_event({"id": "a", "features": GOOD_FEATURES}))
    subscription.stream_handler.on_stream_event(json_event({"id": "b", "features": []}))
    client.close()  # waits for the executor to finish the callbacks
    # THEN the SDK sent one PublishToTopicRequest per message, to the output and the error topic
    requests = sorted((op.request for op in connection.publish_operations), key=lambda r: r.topic)
    assert [(r.topic, r.publish_message.json_message.message["id"]) for r in requests] == [
        (TOPICS["error"], "b"), (TOPICS["output"], "a")]
    assert bridge.counts["scored"] == 1 and bridge.counts["rejected"] == 1


def test_refused_publish_through_the_real_sdk_client(ipc_module, predictor):
    # GIVEN a connection whose publish replies with the nucleus' authorization error
    connection = FakeConnection()
    refused = concurrent.futures.Future()
    refused.set_exception(model.UnauthorizedError(message="not authorized"))
    connection.new_publish_to_topic = lambda: FakeOperation(refused)
    client = GreengrassCoreIPCClientV2(client=connection, executor=None)
    bridge = ipc_module.IpcBridge(client, predictor.handle, topics=ipc_module.Topics(**TOPICS))
    bridge.start()
    # WHEN a message arrives  THEN the SDK raises inside publish, and the bridge counts it and carries on
    connection.subscribe_operations[0].stream_handler.on_stream_event(json_event({"features": GOOD_FEATURES}))
    assert bridge.counts["publish_failures"] == 1
