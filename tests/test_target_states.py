"""What a target's cycle did, as an operator reads it: a series that stops is withdrawn and counted vanished as soon
as it lags past max_lag; a cycle that forecasts nothing zeroes its input gauges; each target's state is a gauge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from promcast.daemon.app import Daemon
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import Settings, TargetSettings
from promcast.daemon.types import SeriesKey, SourceUnavailable
from promcast.forecaster import Forecaster
from promcast.forecaster.synthetic import diurnal

STEP = timedelta(minutes=1)
START = datetime(2026, 3, 2, tzinfo=UTC)
W = 16
A: SeriesKey = (("s", "a"),)
B: SeriesKey = (("s", "b"),)


class TwoSeries:
    """Two series one sample a minute from START; ``b`` has no sample after ``b_stops``; ``down`` fails every
    read. ``at`` is the source's now."""

    def __init__(self, b_stops: datetime) -> None:
        self.at, self.b_stops, self.down = START + 200 * STEP, b_stops, False
        self.index = pd.date_range(START, periods=400, freq=STEP, tz="UTC")
        self.values = 50 + 10 * np.sin(np.arange(400) / 9.0)

    def now(self) -> datetime:
        return self.at

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        if self.down:
            raise SourceUnavailable("connection refused")
        keep = (self.index >= pd.Timestamp(start)) & (self.index <= pd.Timestamp(min(end, self.at)))
        a = pd.Series(self.values[keep], index=self.index[keep]).dropna()  # NaN: no sample at that step
        return {A: a, B: a[a.index <= pd.Timestamp(self.b_stops)] + 1.0}


def _daemon(tmp_path, source: TwoSeries, **target: object) -> Daemon:
    t = TargetSettings(name="load", query="load", step_seconds=60, window=W, history="PT2H", model="naive", **target)
    ModelStore(tmp_path, "load").publish(Forecaster("naive", window=W, step="60s").fit(diurnal(W + 300, "1min")))
    return Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path), source, [t])


def _gauge(d: Daemon, name: str, **labels: str) -> float | None:
    return d.registry.get_sample_value(name, {"target": "load", **labels})


def _published(d: Daemon) -> list[SeriesKey]:
    fc = d.metrics.snapshot()[0].get("load")
    return list(fc.keys) if fc is not None else []


def test_a_series_that_stops_is_withdrawn_and_counted_vanished_once_it_lags_past_max_lag(tmp_path) -> None:
    stops = START + 200 * STEP
    source = TwoSeries(b_stops=stops)
    d = _daemon(tmp_path, source)
    lags = {}
    for k in range(5):  # cycles 0..4 steps after b's last sample
        source.at = stops + k * STEP
        d.run_once()
        lags[k] = (B in _published(d), _gauge(d, "promcast_errors_total", stage="vanished"))
    # b lags 0 then 1 step (max_lag 1): forecast; at 2 steps it has stopped: withdrawn and counted, once.
    assert lags == {0: (True, 0), 1: (True, 0), 2: (False, 1), 3: (False, 1), 4: (False, 1)}
    assert _published(d) == [A]
    assert _gauge(d, "promcast_input_lagging_series") == 0  # a lag of 0 for a: nothing is behind


def test_a_cycle_that_forecasts_nothing_zeroes_the_input_gauges_and_says_its_state(tmp_path) -> None:
    source = TwoSeries(b_stops=START + 198 * STEP)  # b lags 1 step at START + 199 steps
    d = _daemon(tmp_path, source, max_gap=2)
    source.at = START + 199 * STEP
    d.run_once()
    assert (_gauge(d, "promcast_series"), _gauge(d, "promcast_input_lagging_series")) == (2, 1)
    assert _gauge(d, "promcast_target_state", state="forecasting") == 1
    source.down = True
    source.at += STEP
    (result,) = d.run_once()
    assert not result.ok
    assert _gauge(d, "promcast_series") == 0
    assert _gauge(d, "promcast_input_lagging_series") == 0
    assert _gauge(d, "promcast_input_imputed_ratio") == 0
    states = {s: _gauge(d, "promcast_target_state", state=s) for s in ("forecasting", "query_failed")}
    assert states == {"forecasting": 0, "query_failed": 1}


def test_a_target_whose_series_all_stopped_has_no_data_and_zeroed_gauges(tmp_path) -> None:
    source = TwoSeries(b_stops=START + 199 * STEP)
    d = _daemon(tmp_path, source)
    source.at = START + 199 * STEP
    d.run_once()
    assert _gauge(d, "promcast_series") == 2
    source.b_stops, source.at = START + 199 * STEP, START + 202 * STEP
    source.values[200:] = np.nan  # a stops too: no sample after START + 199 steps
    (result,) = d.run_once()
    assert result.state == "no_data", result
    assert (_gauge(d, "promcast_series"), _gauge(d, "promcast_merged_series")) == (0, 0)
    assert _gauge(d, "promcast_target_state", state="no_data") == 1
