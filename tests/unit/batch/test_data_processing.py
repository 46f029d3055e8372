"""DataProcessing filters: the ID column never reaches the model, and comes back next to its prediction."""
from __future__ import annotations

import re

import pytest

from ml_constructs.batch.scoring import data_processing

N_FEATURES = 12


def select(expression: str, row: list[str]) -> list[str]:
    """Batch Transform's JSONPath on a CSV row, for the forms data_processing emits: $[a:] and $[i,j,...]."""
    if expression == "$":
        return row
    open_slice = re.fullmatch(r"\$\[(\d+):\]", expression)
    if open_slice:
        return row[int(open_slice.group(1)):]
    indexes = re.fullmatch(r"\$\[(-?\d+(?:,-?\d+)*)\]", expression)
    assert indexes, f"unexpected filter {expression!r}"
    return [row[int(index)] for index in indexes.group(1).split(",")]


def batch_transform(processing: dict, rows: list[list[str]], model) -> list[list[str]]:
    """What SageMaker does around the container for CSV with JoinSource=Input."""
    inputs = [select(processing.get("InputFilter", "$"), row) for row in rows]
    predictions = model(inputs)
    joined = [row + [prediction] for row, prediction in zip(rows, predictions)]
    return [select(processing.get("OutputFilter", "$"), row) for row in joined]


def fake_model(feature_rows: list[list[str]]) -> list[str]:
    assert all(len(row) == N_FEATURES for row in feature_rows), "the model must see exactly the 12 features"
    assert not any(value.startswith("txn-") for row in feature_rows for value in row), "an ID reached the model"
    return [f"p{row[0]}" for row in feature_rows]


@pytest.mark.parametrize("id_column", [0, 1, 5, N_FEATURES])
def test_id_is_filtered_out_of_the_features_and_joined_back_with_the_prediction(id_column):
    # GIVEN rows whose ID sits at id_column among the 12 features
    features = [[f"{row}.{column}" for column in range(N_FEATURES)] for row in range(3)]
    rows = [values[:id_column] + [f"txn-{index}"] + values[id_column:] for index, values in enumerate(features)]
    # WHEN they pass through Batch Transform with the construct's filters
    output = batch_transform(data_processing(id_column, N_FEATURES), rows, fake_model)
    # THEN each output line is "<id>,<prediction of that row's features>"
    assert output == [[f"txn-{index}", f"p{values[0]}"] for index, values in enumerate(features)]


def test_without_an_id_column_the_whole_row_is_kept_before_the_prediction():
    rows = [[str(value) for value in range(N_FEATURES)]]
    processing = data_processing(None, N_FEATURES)
    assert processing == {"JoinSource": "Input"}
    assert batch_transform(processing, rows, lambda inputs: ["0.5"]) == [rows[0] + ["0.5"]]


def test_first_column_id_uses_the_documented_open_slice():
    assert data_processing(0, N_FEATURES) == {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}


@pytest.mark.parametrize("id_column", [-1, N_FEATURES + 1])
def test_an_id_column_outside_the_row_is_refused(id_column):
    with pytest.raises(ValueError, match="outside"):
        data_processing(id_column, N_FEATURES)
