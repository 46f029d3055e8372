"""The break-even search behind --plot, on curves whose crossings are known."""
from __future__ import annotations

import pytest

from ops.cost.plot import break_evens, curves, draw


def flat_and_linear(requests_per_day: float) -> dict[str, float]:
    # GIVEN a $300 always-on pattern and one paying $0.0001 a request a day: equal at 3,000,000/day
    return {"always_on": 300.0, "per_request": requests_per_day * 0.0001}


def test_a_crossing_is_found_where_the_costs_are_equal():
    traffic, lines = curves(flat_and_linear)
    ((first, second, requests, usd),) = break_evens(flat_and_linear, traffic, lines)
    assert (first, second) == ("always_on", "per_request")
    assert requests == pytest.approx(3_000_000, rel=1e-6) and usd == pytest.approx(300, rel=1e-6)


def test_lines_that_never_cross_have_no_break_even():
    def parallel(requests_per_day: float) -> dict[str, float]:
        return {"a": 10 + requests_per_day, "b": 20 + requests_per_day}

    traffic, lines = curves(parallel)
    assert break_evens(parallel, traffic, lines) == []


def test_steps_that_recross_the_same_line_nearby_count_once():
    # GIVEN an autoscaled fleet that steps up just after the per-request line reaches it, twice
    def stepped(requests_per_day: float) -> dict[str, float]:
        fleet = 300.0 if requests_per_day < 3.2e6 else 340.0 if requests_per_day < 3.5e6 else 2000.0
        return {"fleet": fleet, "lambda": requests_per_day * 0.0001}

    traffic, lines = curves(stepped)
    # THEN the re-crossings at 3.2M and 3.4M/day fold into the first; the far one at 20M/day stays
    found = [requests for _, _, requests, _ in break_evens(stepped, traffic, lines)]
    assert found == [pytest.approx(3e6, rel=1e-6), pytest.approx(2e7, rel=1e-6)]


def test_draw_writes_a_png(tmp_path):
    picture = tmp_path / "plot.png"
    crossings = draw(picture, flat_and_linear, today=100_000, title="test", limits={"per_request": 4e6})
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(crossings) == 1
