"""Scalers fitted on the training part only, invertible, and saved as plain numbers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["SCALERS", "WINDOW", "Scaler", "make_scaler", "row_scales", "scaler_from_dict"]

EPS = 1e-8


@dataclass(frozen=True)
class Scaler:
    """``z = (x - shift) / scale``. ``kind`` records how shift and scale were chosen."""

    kind: str
    shift: float
    scale: float

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.shift) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.scale + self.shift

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _magnitude(train: np.ndarray) -> float:
    """The largest absolute value (1 for all zeros): statistics of ``train / m`` cannot overflow near 1e308."""
    m = float(np.max(np.abs(train)))
    return m if m > 0 else 1.0


def _standard(train: np.ndarray) -> Scaler:
    m = _magnitude(train)
    return Scaler("standard", m * float(np.mean(train / m)), max(m * float(np.std(train / m)), EPS))


def _minmax(train: np.ndarray) -> Scaler:
    lo, hi = float(np.min(train)), float(np.max(train))
    return Scaler("minmax", lo, max(hi - lo, EPS))


SCALERS = {"standard": _standard, "minmax": _minmax}


def make_scaler(kind: str, train: np.ndarray) -> Scaler:
    """Fit a scaler of ``kind`` on ``train`` (NaN ignored). A flat series gets scale ``EPS``, never zero."""
    if kind not in SCALERS:
        raise ValueError(f"unknown scaler {kind!r}; choose one of {sorted(SCALERS)}")
    data = np.asarray(train, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        raise ValueError("cannot fit a scaler on no finite values")
    lo, hi = float(np.min(data)), float(np.max(data))
    if not np.isfinite(hi - lo):
        raise ValueError(f"values span {lo:g} to {hi:g}, too wide to scale in float64")
    return SCALERS[kind](data)


# Not fitted on data: each input window is scaled by its own mean and spread when it is forecast (the pretrained
# model, which must forecast a series of any level or unit); shift 0 and scale 1 stand for it in meta.json.
WINDOW = "window"


def scaler_from_dict(d: dict[str, Any]) -> Scaler:
    kind, shift, scale = d["kind"], float(d["shift"]), float(d["scale"])
    if kind not in (*SCALERS, WINDOW) or not np.isfinite(shift) or not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"invalid scaler {d!r}")
    return Scaler(kind, shift, scale)


def row_scales(scaler: Scaler, windows: np.ndarray) -> tuple[np.ndarray | float, np.ndarray | float]:
    """The (shift, scale) each row of ``windows`` is transformed with: the scaler's own, or for ``WINDOW`` each row's
    mean and standard deviation ((N, 1) each; a flat row gets its own magnitude, or 1, as its scale)."""
    if scaler.kind != WINDOW:
        return scaler.shift, scaler.scale
    shift = windows.mean(axis=1, keepdims=True)
    spread = windows.std(axis=1, keepdims=True)
    flat = spread <= EPS * np.maximum(np.abs(shift), 1.0)
    return shift, np.where(flat, np.maximum(np.abs(shift), 1.0), spread)
