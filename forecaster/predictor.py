"""The prediction half of a fitted forecaster: windows in original units in, forecasts and intervals out.

``Predictor`` holds what a fitted model needs besides its network (window, horizon, step, gap policy,
scaler, interval calibration, metadata) and implements every prediction method on top of one hook,
``_predict_scaled``: (N, window) scaled inputs to (N, horizon) scaled outputs. ``Forecaster`` runs that
hook through torch; ``ArrayForecaster`` (``forecaster.numpy_runtime``) through NumPy, so that a process that only
serves forecasts need not import torch. Nothing in this module imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from .artifact import ArtifactError, read_artifact
from .data import as_series, regularise, validate_values
from .forwards import repeat_last
from .gate import MODEL, NAIVE, SERVES, Gate, gate_from_dict, input_length
from .intervals import Calibration, window_scale
from .names import MODEL_NAMES
from .scalers import WINDOW, Scaler, row_scales, scaler_from_dict

__all__ = ["NotFittedError", "Predictor", "Restored", "is_pretrained"]


def is_pretrained(scaler_kind: str | None, training: dict[str, Any] | None) -> bool:
    """A model fitted on a corpus of many series: it scales each window by its own statistics, and was not fine-tuned
    on one series since (``Forecaster.fine_tune`` records ``fine_tuned_from``)."""
    return scaler_kind == WINDOW and "fine_tuned_from" not in (training or {})


class NotFittedError(ValueError):
    """predict or save was called before fit (or load)."""


class Restored:
    """What an artifact's meta.json says about a fitted model, checked: the fields ``Predictor`` needs. ``meta`` is
    migrated (``forecaster.artifact.migrate``): every field the format has is present."""

    def __init__(self, path: object, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta
        try:
            spec = meta["model"]
            if spec["name"] not in MODEL_NAMES:
                raise ArtifactError(f"{path}: unknown model {spec['name']!r}")
            if not all(type(meta[k]) is int for k in ("window", "horizon")):  # "8" would pass the header check
                raise ArtifactError(f"{path}: window and horizon must be integers in meta.json")
            self.model: str = spec["name"]
            if not isinstance(spec["hparams"], dict):
                raise ArtifactError(f"{path}: model.hparams must be an object in meta.json")
            self.hparams: dict[str, Any] = dict(spec["hparams"])
            self.window, self.horizon = int(meta["window"]), int(meta["horizon"])
            self.scaler_kind: str = meta["scaler"]["kind"]
            step = meta["step_seconds"]  # null: a model for any step (the pretrained one), which scales each window
            if step is None and self.scaler_kind != WINDOW:
                raise ArtifactError(f"{path}: step_seconds is null, but a model scaled by {self.scaler_kind!r} has one")
            self.step: pd.Timedelta | None = None if step is None else pd.Timedelta(seconds=float(step))
            self.max_gap: int | None = meta["max_gap"]
            self.scaler = scaler_from_dict(meta["scaler"])
            intervals = meta["intervals"]
            self.calibration = Calibration.from_dict(intervals, self.horizon) if intervals else None
            self.gate: Gate | None = gate_from_dict(meta["gate"])
            self.serves: str = meta["serves"]
            if self.serves not in SERVES:
                raise ArtifactError(f"{path}: serves {self.serves!r} in meta.json; expected one of {', '.join(SERVES)}")
            length = input_length(self.window, self.gate)
            if type(meta["input_length"]) is not int or meta["input_length"] != length:
                raise ArtifactError(
                    f"{path}: input_length {meta['input_length']!r} in meta.json, the window and gate give {length}"
                )
        except ArtifactError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{path}: meta.json does not describe these weights: {exc}") from exc


class Predictor:
    """Forecasts of ``horizon`` future steps from the last ``window`` points of one series, in original units.

    Subclasses set ``window``, ``horizon``, ``step``, ``max_gap``, ``_scaler``, ``_calibration`` and
    ``meta`` and ``gate``, and implement ``_predict_scaled``. Prediction never changes the model.

    With a gate (``forecaster.gate``) one forecast reads ``input_length = window + gate.extra`` points: the
    model forecasts from the last ``window`` of them, and the gate weighs that forecast against naive by how
    each did on the recent past the rest holds. Without one, ``input_length == window``.
    """

    runtime: str  # what computes the forward pass: "torch" or "numpy"
    model_name: str
    window: int
    horizon: int
    step: pd.Timedelta | None
    max_gap: int | None
    meta: dict[str, Any]
    _scaler: Scaler | None
    _calibration: Calibration | None
    gate: Gate | None = None
    serves: str = MODEL  # NAIVE: the gated model lost to naive on its validation windows (the verdict)
    # Rows that are scaled and go through the gate and the network in one pass (``_in_blocks``): the gate runs the
    # network on its 12 recent windows of every row, so a pass holds 13 windows a row. Each runtime sets its size.
    block: int

    @property
    def input_length(self) -> int:
        """Points one forecast reads: ``predict`` takes (N, input_length); ``forecast`` uses the last this many."""
        return input_length(self.window, self.gate)

    def _predict_scaled(self, z: np.ndarray) -> np.ndarray:  # (N, window) -> (N, horizon), scaled units
        raise NotImplementedError

    def _in_blocks(self, forecast: Callable[[np.ndarray], np.ndarray], rows: np.ndarray) -> np.ndarray:
        """``forecast`` applied to ``block`` rows at a time, the results stacked: one pass's memory, whatever N."""
        if len(rows) <= self.block:
            return forecast(rows)
        return np.concatenate([forecast(rows[i : i + self.block]) for i in range(0, len(rows), self.block)])

    def _predict_served(self, z: np.ndarray) -> np.ndarray:
        """(N, input_length) scaled -> (N, horizon) scaled, in one pass: the model, gated where it has a gate; the
        last value repeated where the model serves naive (``forecaster.verdict.judge``)."""
        if self.serves == NAIVE:
            return repeat_last(z, self.horizon)
        if self.gate is None:
            return self._predict_scaled(z)
        return self.gate.apply(z, self.window, self._predict_scaled, self._scout_scaled)

    def _scout_scaled(self, z: np.ndarray) -> np.ndarray:
        """What the gate scores on the recent past (``ForecastModel.scout``): by default the model itself."""
        return self._predict_scaled(z)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Rebuild a fitted forecaster from an artifact; raises ArtifactError on any mismatch or corruption."""
        arrays, meta = read_artifact(path)
        return cls.restore(Restored(path, meta), arrays)

    @classmethod
    def restore(cls, r: Restored, arrays: dict[str, np.ndarray]) -> Self:
        """A fitted forecaster from an artifact already read: its checked meta.json and its weights."""
        raise NotImplementedError

    @property
    def fitted(self) -> bool:
        return self._scaler is not None

    @property
    def pretrained(self) -> bool:
        """True for a model fitted on a corpus of many series (``forecaster.load_pretrained``): it scales each
        window by its own statistics and holds no step, so it forecasts a series it never saw."""
        return self._scaler is not None and is_pretrained(self._scaler.kind, self.meta.get("training"))

    def _require_fitted(self) -> Scaler:
        if self._scaler is None:
            raise NotFittedError("this Forecaster is not fitted: call fit() or Forecaster.load() first")
        return self._scaler

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Forecast each row of an (N, input_length) array in original units; returns (N, horizon)."""
        scaler = self._require_fitted()
        arr = np.asarray(windows, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.input_length:
            raise ValueError(f"expected windows of shape (N, {self.input_length}), got {arr.shape}")
        validate_values(arr, "windows")
        if len(arr) == 0:
            return np.empty((0, self.horizon))
        return self._in_blocks(lambda rows: self._predict_rows(scaler, rows), arr)

    def _predict_rows(self, scaler: Scaler, arr: np.ndarray) -> np.ndarray:
        """One pass of ``predict``: checked (N, input_length) windows, scaled, served, unscaled."""
        shift, scale = row_scales(scaler, arr)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, as a ValueError
            z = (arr - shift) / scale
            out = self._predict_served(z) * scale + shift
        if not np.isfinite(out).all():
            raise ValueError(
                f"the forecast overflows: windows up to {np.abs(arr).max():g} lie too far outside the "
                f"training scale (shift {scaler.shift:g}, scale {scaler.scale:g})"
            )
        return out

    def last_window(self, recent: pd.Series | np.ndarray | list[float]) -> np.ndarray:
        """The last ``input_length`` regular points of ``recent``; a Series is regularised with the fitted step."""
        if isinstance(recent, pd.Series):
            reg = regularise(as_series(recent), self.step, self.max_gap)
            values = reg.values
        else:
            values = np.asarray(recent, dtype=np.float64)
            if values.ndim != 1:
                raise ValueError(f"expected a 1-D series, got an array of shape {values.shape}")
            validate_values(values, "recent values")
        need = self.input_length
        if len(values) < need:
            raise ValueError(f"need at least input_length = {need} points to predict, got {len(values)}")
        last = values[-need:]
        if not np.isfinite(last).all():
            raise ValueError(
                f"the last {need} points cross a gap longer than max_gap = {self.max_gap} steps; cannot predict over it"
            )
        return last

    def forecast(self, recent: pd.Series | np.ndarray | list[float]) -> np.ndarray:
        """The next ``horizon`` values after ``recent``, in original units: shape (horizon,)."""
        self._require_fitted()
        return self.predict(self.last_window(recent)[None, :])[0]

    def predict_next(self, n: int, recent: pd.Series | np.ndarray | list[float]) -> np.ndarray:
        """The next ``n`` values after ``recent``: shape (n,). ``n`` must be the horizon the model was trained for:
        a model forecasts exactly its horizon, and a longer one would be extrapolated, a shorter one truncated."""
        if n != self.horizon:
            raise ValueError(f"this forecaster was trained for horizon={self.horizon}, not {n}; use forecast()")
        return self.forecast(recent)

    def predict_next_12(self, recent: pd.Series | np.ndarray | list[float]) -> np.ndarray:
        """The next 12 values after ``recent``: shape (12,). The seed's name for ``predict_next(12, recent)``."""
        return self.predict_next(12, recent)

    def predict_interval(
        self, windows: np.ndarray, levels: tuple[float, ...] = (0.8, 0.95), *, point: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]]:
        """Point forecasts (N, H) and, per level, split-conformal (lower, upper) bounds, in original units.
        ``point``: what ``predict(windows)`` already returned, so that the windows are not forecast twice.

        Like ``predict``, raises ValueError rather than return a non-finite value."""
        scaler = self._require_fitted()
        if self._calibration is None:
            raise ValueError("this model has no interval calibration (it was fitted without validation windows)")
        point = self.predict(windows) if point is None else point
        arr = np.asarray(windows, dtype=np.float64)
        shift, scale = row_scales(scaler, arr)  # as predict scaled each row
        recent = arr[:, -self.window :]  # the model's own window, as calibrated
        spread = window_scale((recent - shift) / scale) * scale  # (N, 1)
        bounds = {}
        widths = self._calibration.widths(levels)  # strictly increasing with the level: distinct, nested bands
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, as predict does
            for level in levels:
                half = spread * widths[level][None, :]  # (N, H)
                bounds[level] = (point - half, point + half)
        if not all(np.isfinite(b).all() for pair in bounds.values() for b in pair):
            raise ValueError("the interval bounds overflow: the windows lie too far outside the training scale")
        return point, bounds

    def forecast_interval(
        self, recent: pd.Series | np.ndarray | list[float], levels: tuple[float, ...] = (0.8, 0.95)
    ) -> tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]]:
        """The next ``horizon`` values after ``recent`` (H,), with (lower, upper) bounds (H,) per level."""
        self._require_fitted()
        point, bounds = self.predict_interval(self.last_window(recent)[None, :], levels)
        return point[0], {k: (lo[0], hi[0]) for k, (lo, hi) in bounds.items()}

    @property
    def calibration(self) -> Calibration | None:
        return self._calibration

    def __repr__(self) -> str:
        state = "fitted" if self.fitted else "unfitted"
        return (
            f"{type(self).__name__}(model={self.model_name!r}, window={self.window}, "
            f"input_length={self.input_length}, horizon={self.horizon}, {state})"
        )
