"""inference.py's two CSV parsers (pyarrow for large bodies, the exact one for small) agree on every body.

Batch Transform joins outputs to inputs by position, so the fast path must never accept a body the
exact parser refuses, nor return rows other than the exact parser's.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

N_FEATURES = 3
VALUES = st.one_of(st.floats(-1e6, 1e6).map(repr), st.sampled_from(["1", " 2", "3 ", "-0.5", "1e3", "", "x", "nan",
                                                                   "1_0", "\t4"]))
LINES = st.one_of(
    st.lists(VALUES, min_size=N_FEATURES, max_size=N_FEATURES).map(",".join),
    st.lists(VALUES, min_size=1, max_size=N_FEATURES + 1).map(",".join),
    st.sampled_from(["", " ", "\t", "\r"]),
)
SEPARATORS = st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\n \n"])


@st.composite
def csv_bodies(draw):
    lines = draw(st.lists(LINES, min_size=1, max_size=12))
    body = lines[0]
    for line in lines[1:]:
        body += draw(SEPARATORS) + line
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + body + draw(st.sampled_from(["", "\n", "\r\n"]))).encode()


def outcome(parse):
    """(the matrix, None) or (None, the error's code and details) for one parse."""
    try:
        return parse(), None
    except Exception as error:  # noqa: BLE001 - compared between the parsers, not judged
        return None, (getattr(error, "code", type(error).__name__), getattr(error, "details", {}))


def parse_with(inference, body, *, small_lines):
    """inference.parse_csv with the pyarrow path taken above ``small_lines`` lines (0: always, huge: never)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inference, "SMALL_CSV_LINES", small_lines)
        return outcome(lambda: inference.parse_csv(body, N_FEATURES))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=csv_bodies())
@example(body=b"1,2,3\r4,5,6\n\n7,8,9")  # a bare CR and an empty line: pyarrow's counts used to cancel out
@example(body=b"1,2,3\r\n4,5,6\r\n")
@example(body=b"1,2,3\n \n4,5,6")
@example(body=b"1,2,3\n4,5,6\r7,8,9\n\n")
@example(body="\ufeff1,2,3\n4,5,6".encode())  # pyarrow skips a leading BOM; the exact parser must too
def test_the_pyarrow_path_answers_exactly_as_the_exact_parser(inference, body):
    # GIVEN any CSV body with CR, CRLF, empty and whitespace-only lines mixed in
    # WHEN the pyarrow path and the exact parser each parse it
    fast = parse_with(inference, body, small_lines=0)
    exact = parse_with(inference, body, small_lines=10**9)
    # THEN both refuse it with the same reason, or both return the same rows in the same order
    assert fast[1] == exact[1]
    if exact[0] is not None:
        np.testing.assert_array_equal(fast[0], exact[0])


def test_a_large_body_with_a_bare_cr_and_an_empty_line_is_refused(inference):
    # GIVEN 100 lines (the pyarrow path) where one line holds two rows joined by a bare CR and another is empty
    rows = [",".join(str(index + column) for column in range(N_FEATURES)) for index in range(100)]
    rows[10] = rows[10] + "\r" + rows[11]
    rows[49] = ""
    body = "\n".join(rows).encode()
    # WHEN it is parsed
    with pytest.raises(inference.InputError) as raised:
        inference.parse_csv(body, N_FEATURES)
    # THEN it is refused at the joined line, as the exact parser refuses it (no row is scored against another's input)
    assert raised.value.details["line"] == 11


def test_crlf_line_ends_give_the_same_rows_on_both_paths(inference):
    # GIVEN 100 rows with CRLF line ends (the pyarrow path) and the same rows with LF
    rows = [",".join(str(index * 10 + column) for column in range(N_FEATURES)) for index in range(100)]
    # WHEN both are parsed THEN the matrices are identical
    np.testing.assert_array_equal(inference.parse_csv("\r\n".join(rows).encode() + b"\r\n", N_FEATURES),
                                  inference.parse_csv("\n".join(rows).encode(), N_FEATURES))


def test_a_leading_byte_order_mark_is_ignored_on_both_paths(inference):
    # GIVEN one row and 100 rows, each body starting with a UTF-8 byte order mark (as Excel writes CSV)
    row = "1,2,3"
    for lines in (1, 100):
        body = ("\ufeff" + "\n".join([row] * lines)).encode()
        # WHEN parsed THEN the mark is not part of the first value, whichever parser reads the body
        np.testing.assert_array_equal(inference.parse_csv(body, N_FEATURES), np.tile([1.0, 2.0, 3.0], (lines, 1)))
