"""Short reads of the recent span give what a full read gives, through churn, gaps, late samples and failures."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.cycle.recent import RecentData
from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources.prometheus import page_ranges
from promcast.daemon.sources.samples import as_samples
from promcast.daemon.types import SeriesKey, SourceUnavailable

STEP = timedelta(minutes=1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Evolving:
    """Series over time; a sample becomes readable ``delay`` after its timestamp, as with late remote writes."""

    def __init__(self, data: dict[SeriesKey, pd.Series], delay: timedelta) -> None:
        self.data, self.delay, self.now = data, delay, T0
        self.reads: list[tuple[datetime, datetime]] = []
        self.fail = False

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        if self.fail:
            raise SourceUnavailable("down")
        self.reads.append((start, end))
        visible = pd.Timestamp(self.now - self.delay)
        out = {}
        for key, s in self.data.items():
            part = s[(s.index >= pd.Timestamp(start)) & (s.index <= pd.Timestamp(end)) & (s.index <= visible)]
            if len(part):
                out[key] = part
        return out


def _data() -> dict[SeriesKey, pd.Series]:
    index = pd.date_range(T0 - timedelta(hours=2), periods=400, freq="1min")
    rng = np.random.default_rng(0)
    whole = pd.Series(rng.normal(10, 1, len(index)), index=index)
    return {
        (("pod", "steady"),): whole,
        (("pod", "gone"),): whole.iloc[:150] + 1,  # stops reporting 30 minutes in
        (("pod", "paused"),): whole.drop(whole.index[170:190]) + 4,  # 20 minutes without samples, then back
        (("pod", "new"),): whole.iloc[200:] + 2,  # appears 80 minutes in
        (("pod", "gappy"),): whole.drop(whole.index[160:163]) + 3,  # three samples missing
    }


@pytest.mark.parametrize("delay_steps", [0, 2])
def test_short_reads_equal_full_reads_cycle_after_cycle(delay_steps: int) -> None:
    target = TargetSettings(name="t", query="q", step_seconds=60, window=24, max_gap=2, history=timedelta(hours=2))
    span = STEP * (24 + 2 * 2 + 2)
    source = Evolving(_data(), STEP * delay_steps)
    recent = RecentData(source, target, span, resync_cycles=1000)
    reads = []
    for i in range(150):
        end = T0 + i * STEP
        source.now = end
        if i == 100:  # a cycle that fails: the next one goes on with a short read
            source.fail = True
            with pytest.raises(SourceUnavailable):
                recent.fetch(end)
            source.fail = False
            continue
        got = recent.fetch(end)
        reads.append(recent.last_read)
        want = source.fetch(target, end - span, end)
        # A full read also returns series with no sample in the last max_gap steps, which the job skips as stale.
        stale = {k for k, s in want.items() if s.index[-1] < pd.Timestamp(end - target.max_gap * STEP)}
        assert set(got) <= set(want), i
        assert set(want) - set(got) <= stale, i
        for key in got:
            full = as_samples(want[key])
            np.testing.assert_array_equal(got[key].times, full.times, err_msg=f"{dict(key)} at cycle {i}")
            np.testing.assert_array_equal(got[key].values, full.values, err_msg=f"{dict(key)} at cycle {i}")
    # Full reads: the first, and those that met a series not kept (the new one, the paused one on its return; with
    # samples 2 steps late, the gappy one too: its 3-step gap plus the delay leaves no sample in the last
    # max_gap + 2 steps for a cycle). Every other cycle read a few steps only.
    full = 3 + (delay_steps > 0)
    assert reads.count("full") == full
    assert reads.count("short") == len(reads) - full


def test_a_long_pause_a_step_back_and_the_resync_read_the_full_span() -> None:
    target = TargetSettings(name="t", query="q", step_seconds=60, window=24, max_gap=2, history=timedelta(hours=2))
    span = STEP * 30
    source = Evolving(_data(), timedelta(0))
    recent = RecentData(source, target, span, resync_cycles=3)
    kinds = []
    for end in [T0, T0 + STEP, T0 + 2 * STEP, T0 + 3 * STEP, T0 + 4 * STEP, T0 + 25 * STEP, T0 + 20 * STEP]:
        source.now = end
        recent.fetch(end)
        kinds.append(recent.last_read)
    # resync after 3 short reads; 21 steps pause > span / 2; the end moved back
    assert kinds == ["full", "short", "short", "short", "full", "full", "full"]
    start, end = source.reads[1]
    assert end - start == STEP * (1 + 2 + 2)  # the new step and max_gap + 2 steps read again


def test_a_series_that_stopped_stays_gone_through_the_full_reads() -> None:
    # A full read brings back a stopped series' old samples for as long as they lie in the span; both reads
    # leave out a series with no sample in the last max_gap + 2 steps, so it vanishes once, not at every full read.
    target = TargetSettings(name="t", query="q", step_seconds=60, window=24, max_gap=2, history=timedelta(hours=2))
    span = STEP * 60
    source = Evolving(_data(), timedelta(0))
    recent = RecentData(source, target, span, resync_cycles=3)
    gone = (("pod", "gone"),)  # its last sample is at T0 + 29 min
    seen, kinds = [], []
    for i in range(20, 60):
        end = T0 + i * STEP
        source.now = end
        seen.append(gone in recent.fetch(end))
        kinds.append(recent.last_read)
    last_present = 29 + 2 + 2  # its last sample, then max_gap + 2 steps
    assert seen == [20 + k <= last_present for k in range(40)]
    assert kinds.count("full") > 5  # resyncs happened while its old samples were still in the span


@pytest.mark.parametrize("points", [1, 2, 7, 10, 11, 100])
def test_page_ranges_cover_the_span_once_within_the_point_limit(points: int) -> None:
    start, step = datetime(2026, 1, 1, tzinfo=UTC), timedelta(minutes=1)
    end = start + 29 * step  # 30 grid points
    pages = page_ranges(start, end, step, points)
    assert pages[0][0] == start
    assert pages[-1][1] == end
    for lo, hi in pages:
        assert lo <= hi
        assert (hi - lo) / step + 1 <= points
    for (_, hi), (lo, _) in itertools.pairwise(pages):
        assert lo == hi + step  # no step read twice, none skipped
    assert len(pages) == -(-30 // points)
    assert page_ranges(end, start, step, points) == []
