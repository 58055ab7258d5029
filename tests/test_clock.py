"""Step time: the first scheduled cycle falls ``settle`` after a boundary of the interval, counted from the Unix
epoch in UTC, strictly after now; to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from promcast.daemon.clock import first_cycle, origin

MS = timedelta(milliseconds=1)
S = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
# A boundary of every interval used here: 2026-03-01 12:00:00 UTC is 1,772,366,400 s after the epoch, a multiple
# of 420 s (7 minutes, an interval that does not divide an hour) and so of 60 s and 15 s.
BOUNDARY = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_boundary_is_a_multiple_of_each_interval_since_the_epoch() -> None:
    assert BOUNDARY.timestamp() == 1_772_366_400
    assert 1_772_366_400 % 420 == 0


@pytest.mark.parametrize(
    ("now", "interval", "settle", "expected"),
    [
        # 7.25 s after a minute boundary: the boundary's cycle (at 5 s) is past, so the next minute's
        pytest.param(BOUNDARY + 7250 * MS, MINUTE, 5 * S, BOUNDARY + 65 * S, id="past-the-boundarys-cycle"),
        # 1 ms before the boundary's cycle: that one
        pytest.param(BOUNDARY + 4999 * MS, MINUTE, 5 * S, BOUNDARY + 5 * S, id="1ms-before-its-cycle"),
        # exactly at the boundary's cycle: strictly after now, so the next
        pytest.param(BOUNDARY + 5 * S, MINUTE, 5 * S, BOUNDARY + 65 * S, id="exactly-at-its-cycle"),
        # a millisecond after a boundary, with a settle of 1.5 s on a 15 s interval
        pytest.param(
            BOUNDARY + 30 * S + 1 * MS, 15 * S, 1500 * MS, BOUNDARY + 31500 * MS, id="1ms-after-a-15s-boundary"
        ),
        # 1.4 s after the 12:00:30 boundary, before its cycle at 12:00:31.5
        pytest.param(BOUNDARY + 31400 * MS, 15 * S, 1500 * MS, BOUNDARY + 31500 * MS, id="before-a-1.5s-settle"),
        # 7 minutes: boundaries at 12:00 and 12:07, multiples of 420 s since the epoch; now is 100.25 s after 12:00
        pytest.param(
            BOUNDARY + 100250 * MS, 7 * MINUTE, 5 * S, BOUNDARY + 7 * MINUTE + 5 * S, id="7min-after-its-cycle"
        ),
        # 3 ms before 12:07: the 12:00 cycle is past, the next is 12:07 + 0.25 s
        pytest.param(
            BOUNDARY + 7 * MINUTE - 3 * MS,
            7 * MINUTE,
            250 * MS,
            BOUNDARY + 7 * MINUTE + 250 * MS,
            id="7min-3ms-before-a-boundary",
        ),
        # no settle, exactly on a boundary: the next boundary
        pytest.param(BOUNDARY, MINUTE, timedelta(0), BOUNDARY + MINUTE, id="no-settle-on-a-boundary"),
    ],
)
def test_first_cycle_is_settle_after_the_next_boundary_strictly_after_now(now, interval, settle, expected) -> None:
    assert first_cycle(now, interval, settle) == expected


def test_first_cycle_reads_the_clock_in_utc_whatever_its_zone() -> None:
    paris = timezone(timedelta(hours=1))
    now = (BOUNDARY + 7250 * MS).astimezone(paris)  # 13:00:07.250 in Paris
    assert first_cycle(now, MINUTE, 5 * S) == BOUNDARY + 65 * S
    assert first_cycle(now, 7 * MINUTE, 5 * S) == BOUNDARY + 7 * MINUTE + 5 * S


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (BOUNDARY + 59999 * MS, BOUNDARY),  # a millisecond before the next boundary: the step is not complete
        (BOUNDARY + MINUTE, BOUNDARY + MINUTE),  # on a boundary: that boundary
        (BOUNDARY - 1 * MS, BOUNDARY - MINUTE),
    ],
)
def test_the_origin_is_the_last_boundary_at_or_before_now(now, expected) -> None:
    assert origin(now, MINUTE) == expected
