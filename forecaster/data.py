"""Series input: loading, validation, regularisation to a fixed step, and the gap policy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["RegularSeries", "StepLike", "as_series", "load_csv", "regularise", "validate_values"]

StepLike = pd.Timedelta | dt.timedelta | str

_TIME_COLUMNS = ("timestamp", "time", "date", "datetime", "ds")


@dataclass(frozen=True)
class RegularSeries:
    """A series on a regular grid. Points inside gaps longer than ``max_gap`` steps stay NaN."""

    values: np.ndarray  # (T,) float64; NaN only inside unbridged gaps
    start: pd.Timestamp
    step: pd.Timedelta
    imputed: int  # points filled by interpolation
    unbridged: int  # points left NaN because their gap was too long

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=len(self.values), freq=self.step)

    @property
    def end(self) -> pd.Timestamp:
        return self.start + (len(self.values) - 1) * self.step

    @property
    def imputed_ratio(self) -> float:
        return self.imputed / max(1, len(self.values))

    def to_series(self) -> pd.Series:
        return pd.Series(self.values, index=self.index, name="value")


def load_csv(path: str | Path, value_column: str | None = None, time_column: str | None = None) -> pd.Series:
    """Read ``timestamp,value`` (or a named value column such as ``OT``) into a Series on a DatetimeIndex."""
    frame = pd.read_csv(path)
    if frame.empty:
        raise ValueError(f"{path}: the file holds no rows")
    tcol = time_column or next((c for c in frame.columns if str(c).lower() in _TIME_COLUMNS), frame.columns[0])
    if tcol not in frame.columns:
        raise ValueError(f"{path}: no time column {tcol!r}; columns are {list(frame.columns)}")
    others = [c for c in frame.columns if c != tcol]
    vcol = value_column or ("value" if "value" in others else (others[0] if len(others) == 1 else None))
    if vcol is None:
        raise ValueError(f"{path}: several value columns {others}; name one with value_column")
    if vcol not in frame.columns:
        raise ValueError(f"{path}: no value column {vcol!r}; columns are {list(frame.columns)}")
    values = pd.to_numeric(frame[vcol], errors="coerce")
    bad = values.isna() & frame[vcol].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: non-numeric value {frame[vcol].iloc[row]!r} in column {vcol!r} at row {row + 2}")
    # Numbers are Unix seconds, as Prometheus and promtool write them; anything else parses as a date and time.
    numeric = pd.api.types.is_numeric_dtype(frame[tcol])
    try:
        stamps = pd.to_datetime(frame[tcol], unit="s") if numeric else pd.to_datetime(frame[tcol], utc=False)
        index = pd.DatetimeIndex(stamps)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: column {tcol!r} does not parse as timestamps: {exc}") from exc
    return pd.Series(values.to_numpy(dtype=np.float64), index=index, name=str(vcol))


def validate_values(values: np.ndarray, what: str = "series") -> None:
    """Raise ValueError naming the first NaN or infinite value."""
    finite = np.isfinite(values)
    if not finite.all():
        pos = int(np.flatnonzero(~finite)[0])
        kind = "NaN" if np.isnan(values[pos]) else "infinite"
        count = int((~finite).sum())
        raise ValueError(f"{what} holds {count} NaN or infinite value(s); the first ({kind}) is at position {pos}")


def as_series(data: pd.Series | np.ndarray | list[float], step: StepLike | None = None) -> pd.Series:
    """Accept a Series on a DatetimeIndex, or a plain 1-D array (then ``step`` lays it on a grid)."""
    if isinstance(data, pd.Series):
        if not isinstance(data.index, pd.DatetimeIndex):
            raise ValueError(f"a Series needs a DatetimeIndex, got {type(data.index).__name__}")
        try:
            values = data.to_numpy(dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"series values are not numeric: {exc}") from exc
        return pd.Series(values, index=data.index, name=data.name)
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"series values are not numeric: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D series, got an array of shape {arr.shape}")
    grid_step = pd.Timedelta(step) if step is not None else pd.Timedelta(minutes=1)
    index = pd.date_range("1970-01-01", periods=len(arr), freq=grid_step)
    return pd.Series(arr, index=index)


def _check_timestamps(index: pd.DatetimeIndex) -> None:
    deltas = np.diff(index.asi8)
    if (deltas == 0).any():
        pos = int(np.flatnonzero(deltas == 0)[0]) + 1
        raise ValueError(f"duplicate timestamp {index[pos]} at position {pos}")
    if (deltas < 0).any():
        pos = int(np.flatnonzero(deltas < 0)[0]) + 1
        raise ValueError(f"decreasing timestamps: {index[pos]} at position {pos} follows {index[pos - 1]}")


def median_step(index: pd.DatetimeIndex) -> pd.Timedelta:
    """A series' own step: the median spacing of its timestamps."""
    if len(index) < 2:
        raise ValueError("cannot infer the step from a single point; give step")
    return pd.Timedelta(int(np.median(np.diff(pd.DatetimeIndex(index).as_unit("ns").asi8))), unit="ns")


def regularise(
    series: pd.Series,
    step: StepLike | None = None,
    max_gap: int | None = 5,
) -> RegularSeries:
    """Put ``series`` on a regular grid of ``step`` (default: the median step), averaging points per step.

    Gaps of up to ``max_gap`` missing steps are filled by linear interpolation; longer gaps stay NaN so that
    callers can drop the windows that cross them. ``max_gap=None`` bridges every gap.
    """
    if len(series) == 0:
        raise ValueError("the series is empty")
    validate_values(series.to_numpy(dtype=np.float64))
    index = pd.DatetimeIndex(series.index).as_unit("ns")
    _check_timestamps(index)
    step_td = median_step(index) if step is None else pd.Timedelta(step)
    if step_td <= pd.Timedelta(0):
        raise ValueError(f"step must be positive, got {step_td}")
    start = pd.Timestamp(index[0])
    slots = ((index.asi8 - start.value) // step_td.value).astype(np.int64)
    n = int(slots[-1]) + 1
    sums = np.bincount(slots, weights=series.to_numpy(dtype=np.float64), minlength=n)
    counts = np.bincount(slots, minlength=n)
    values = np.full(n, np.nan)
    present = counts > 0
    values[present] = sums[present] / counts[present]
    imputed, unbridged = _fill_gaps(values, max_gap)
    return RegularSeries(values=values, start=start, step=step_td, imputed=imputed, unbridged=unbridged)


def _fill_gaps(values: np.ndarray, max_gap: int | None) -> tuple[int, int]:
    """Interpolate runs of NaN no longer than ``max_gap`` in place; return (imputed, left unbridged)."""
    missing = np.isnan(values)
    if not missing.any():
        return 0, 0
    # Runs of missing points: starts where missing begins, ends where it stops.
    edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    known = np.flatnonzero(~missing)
    filled = np.interp(np.arange(len(values)), known, values[known])
    imputed = unbridged = 0
    for lo, hi in zip(run_starts, run_ends, strict=True):
        length = int(hi - lo)
        if max_gap is None or length <= max_gap:
            values[lo:hi] = filled[lo:hi]
            imputed += length
        else:
            unbridged += length
    return imputed, unbridged
