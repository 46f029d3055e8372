"""Whatever a client sends, transform_fn answers with a status below 500 and a strict JSON reason."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

CONTENT_TYPES = ["text/csv", "application/json", "text/plain", "", "application/json; charset=utf-8"]
ACCEPTS = ["application/json", "text/csv", "*/*", "image/png", ""]


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity, which are not JSON and break strict clients."""
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**400, 10**400),
                    st.sampled_from([1e308, -1e308, 3e38]))
rows = st.lists(st.one_of(numbers, st.text(max_size=5), st.none(), st.booleans()), min_size=0, max_size=14)
json_bodies = st.one_of(
    st.builds(lambda r: json.dumps({"instances": r}), st.lists(rows, max_size=4)),
    st.builds(json.dumps, st.lists(rows, max_size=4)),
    st.builds(json.dumps, rows),
    st.builds(lambda depth: "[" * depth + "]" * depth, st.integers(1, 200_000)),
)
csv_bodies = st.builds(lambda lines: "\n".join(",".join(str(v) for v in line) for line in lines),
                       st.lists(rows, max_size=5))
valid_rows = st.lists(st.lists(st.floats(-1e6, 1e6), min_size=12, max_size=12), min_size=1, max_size=4)
valid_bodies = st.one_of(st.builds(lambda r: json.dumps({"instances": r}), valid_rows),
                         st.builds(lambda r: "\n".join(",".join(repr(v) for v in row) for row in r), valid_rows))
bodies = st.one_of(valid_bodies, json_bodies, csv_bodies, st.binary(max_size=200), st.text(max_size=200))
VALID_CSV_ROW = ",".join(["0.5"] * 12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES), accept=st.sampled_from(ACCEPTS))
@example(body=VALID_CSV_ROW, content_type="text/csv", accept="application/json")
def test_no_request_produces_a_server_error(inference, loaded_model, body, content_type, accept):
    # GIVEN any body, content type and Accept header
    # WHEN transform_fn answers it
    response = inference.transform_fn(loaded_model, body, content_type, accept)
    # THEN the status is never a 5xx (which would count in Invocation5XXErrors and could roll back a deploy)
    assert response.status_code < 500
    # AND every JSON answer is strict JSON: no NaN or Infinity smuggled in as a probability
    if response.mimetype == "application/json":
        document = strict_json(response.get_data().decode())
        # AND a successful answer carries a probability in [0, 1] for every row
        if response.status_code == 200:
            assert all(0.0 <= row["probability"] <= 1.0 for row in document["predictions"])


def test_extreme_finite_values_are_a_client_error_not_a_nan(inference, loaded_model):
    # GIVEN a row of finite values so large the model's arithmetic overflows
    body = ",".join(["1e308"] * loaded_model.n_features)
    # WHEN it is scored
    response = inference.transform_fn(loaded_model, body, "text/csv", "application/json")
    # THEN it is a 400 naming the row, not a 200 with NaN
    assert response.status_code == 400
    reason = strict_json(response.get_data().decode())
    assert reason["code"] == "out_of_range" and reason["row"] == 1


def test_deeply_nested_json_is_a_client_error(inference, loaded_model):
    response = inference.transform_fn(loaded_model, "[" * 100_000, "application/json", "application/json")
    assert response.status_code == 400
    assert strict_json(response.get_data().decode())["code"] == "invalid_json"


def test_the_property_strategy_reaches_successful_predictions(inference, loaded_model):
    # GIVEN the valid-body example the property test always includes  THEN it really is a 200 with a body
    response = inference.transform_fn(loaded_model, VALID_CSV_ROW, "text/csv", "application/json")
    assert response.status_code == 200
    assert len(strict_json(response.get_data().decode())["predictions"]) == 1
