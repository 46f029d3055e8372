"""Property: nothing a client can send through API Gateway makes the handler answer 5xx."""
from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.runtime.serverless.conftest import LambdaContext, N_FEATURES, api_event

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**40, max_value=10**40),
                    st.floats(min_value=-3.5e38, max_value=3.5e38))
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30)
rows = st.lists(numbers, min_size=N_FEATURES - 1, max_size=N_FEATURES + 1)
#: Rows the model must score: without them the property would almost never reach its 200 branch.
valid_rows = st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=N_FEATURES, max_size=N_FEATURES)
valid_documents = st.one_of(st.fixed_dictionaries({"features": valid_rows}),
                            st.fixed_dictionaries({"instances": st.lists(valid_rows, min_size=1, max_size=5)}))
documents = st.one_of(
    valid_documents,
    st.fixed_dictionaries({"features": rows}),
    st.fixed_dictionaries({"instances": st.lists(rows, max_size=5)}),
    st.fixed_dictionaries({"features": rows}, optional={"instances": st.lists(rows, max_size=2),
                                                        "extra": json_values}),
    json_values,
)


def serialize(document) -> str:
    # json.dumps writes NaN/Infinity literals (not JSON): exactly the kind of body a sloppy client sends
    return json.dumps(document, allow_nan=True)


bodies = st.one_of(
    documents.map(serialize),
    st.text(max_size=200),
    documents.map(serialize).flatmap(lambda text: st.integers(0, max(len(text) - 1, 0)).map(lambda cut: text[:cut])),
)


def assert_client_safe(response, document=None):
    """200 with finite predictions or 400 with a reason; a valid ``document`` must get 200, one per row."""
    assert response["statusCode"] in (200, 400), response
    body = json.loads(response["body"])
    if document is not None:
        assert response["statusCode"] == 200, body
        expected_rows = len(document["instances"]) if "instances" in document else None
        assert expected_rows is None or len(body["predictions"]) == expected_rows
    if response["statusCode"] == 400:
        assert body["error"] and body["code"]
    else:
        predictions = body["predictions"] if "predictions" in body else [body]
        assert all(math.isfinite(item["confidence"]) and item["prediction"] in (0, 1) for item in predictions)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
@example(body=json.dumps({"features": [0.5] * N_FEATURES}))
def test_random_bodies_never_produce_a_5xx(handler_module, body):
    # GIVEN any text body  WHEN API Gateway delivers it  THEN 200 with finite predictions, or 400 with a reason
    assert_client_safe(handler_module.lambda_handler(api_event(body), LambdaContext()))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=valid_documents)
@example(document={"features": [0.0] * N_FEATURES})
@example(document={"instances": [[1e6] * N_FEATURES, [-1e6] * N_FEATURES]})
def test_valid_bodies_are_always_scored(handler_module, document):
    # GIVEN a well-formed request of finite numbers in range  WHEN API Gateway delivers it
    response = handler_module.lambda_handler(api_event(serialize(document)), LambdaContext())
    # THEN it is a 200 with one finite prediction per row (the success branch the property above must reach)
    assert_client_safe(response, document)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300), base64_encoded=st.booleans())
def test_random_bytes_never_produce_a_5xx(handler_module, raw, base64_encoded):
    # GIVEN arbitrary bytes, as a binary-media API would pass them (or mis-flagged as base64)
    body = raw.decode("latin-1")
    assert_client_safe(handler_module.lambda_handler(api_event(body, base64_encoded=base64_encoded), LambdaContext()))
