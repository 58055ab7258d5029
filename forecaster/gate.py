"""The recent-skill gate: at each origin, weigh the model against naive by how each did just before it.

A network fitted on a workload's past keeps forecasting that past when the workload changes: a daily cycle that
collapses to zero, a level that drops after a spike, a VM that goes idle. The points just before the origin
say which forecaster is right *now*. The gate scores the model and naive (the last value repeated) on the
one-step forecasts each would have made at ``steps`` recent origins, ``stride`` steps apart (for an ensemble, the
forecasts of its first member: ``ForecastModel.scout``), using only points that the input already holds, and mixes
the two forecasts with exponential weights on those scores (the way Hedge-style forecast combination stays close to
the best expert). The input is therefore ``extra`` points longer
than the model's window: ``input_length = window + extra``.

With scores ``s_model`` and ``s_naive`` (mean absolute one-step errors on the z-scale of the training data) and
``gap = (s_model - s_naive) / (min(s_model, s_naive) + floor)``, the model's weight is
``1 / (1 + exp(eta * (gap - margin)))`` and naive's the rest. The margin is the model's benefit of the doubt:
naive takes the forecast over only where it has been clearly better (by half the better score, by default), as it
is after a load collapses or a level breaks, not where it merely matched the model on a calm stretch between
bursts, which is where the model's forecast of the decay after a burst is worth most. Without the margin the
gate cost the default 10 to 25 % of its accuracy on the five burstiest shared traces.

With ``median`` the gate has a third expert, the window's median (``median_level``: of at most ``MEDIAN_POINTS``
of its points, evenly strided back from the last): a level that rare bursts do not pull. The model-and-naive mix
is then weighed against it by the same rule, on the one-step errors that the mix and each recent window's median
would have made, with the same margin: the mix keeps the forecast unless the median has clearly done better. A
model that has never seen the series (``forecaster.load_pretrained``) forecasts a spiky one above its median,
where naive, the only other expert, forecasts the last burst.

What a fitted model serves afterwards is the verdict's (``forecaster.verdict``).

Nothing here imports torch: the NumPy serving path gates exactly as the torch one does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .names import BASELINES

__all__ = [
    "DEFAULT_GATE",
    "MEDIAN_POINTS",
    "MODEL",
    "NAIVE",
    "SERVES",
    "Gate",
    "default_gate",
    "gate_from_dict",
    "input_length",
    "median_level",
]

MODEL, NAIVE = "model", "naive"
SERVES = (MODEL, NAIVE)  # what a fitted model forecasts with: its network (gated), or the last value repeated

Forward = Callable[[np.ndarray], np.ndarray]  # (N, window) scaled -> (N, horizon) scaled
# The median expert reads at most this many points of each window, so that its cost stays a short sort.
MEDIAN_POINTS = 72


def median_level(windows: np.ndarray) -> np.ndarray:
    """(..., W) -> (...): the median of each window from at most ``MEDIAN_POINTS`` of its points, every
    ``ceil(W / MEDIAN_POINTS)``-th back from the last (the lower middle value for an even count)."""
    stride = -(-windows.shape[-1] // MEDIAN_POINTS)  # ceil(W / MEDIAN_POINTS)
    points = windows[..., ::-stride]  # the last point, then every stride-th back
    # the lower middle value: a sort of these short rows, which equals the partition's middle
    return np.sort(points, axis=-1)[..., (points.shape[-1] - 1) // 2]


@dataclass(frozen=True)
class Gate:
    """How many recent origins score the model against naive, how far apart, and how sharply they decide."""

    steps: int = 12
    stride: int = 1
    eta: float = 10.0
    floor: float = 1e-3  # on the z-scale: two flat series' scores of zero tie instead of dividing by zero
    margin: float = 0.5  # naive takes over only where its score beats the model's by this share of the better one
    # A third expert, the window's median (median_level), weighed against the model-and-naive mix alike.
    median: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.stride < 1 or not self.eta > 0 or not self.floor > 0 or not self.margin >= 0:
            raise ValueError(f"a gate needs steps >= 1, stride >= 1, eta > 0, floor > 0 and margin >= 0, got {self}")

    def _weight(self, err_model: np.ndarray, err_naive: np.ndarray) -> np.ndarray:
        """(N, K) absolute one-step errors of each -> (N,) the model's weight: 1 / (1 + exp(eta * (gap - margin)))."""
        s_model, s_naive = err_model.mean(axis=1), err_naive.mean(axis=1)
        gap = (s_model - s_naive) / (np.minimum(s_model, s_naive) + self.floor)
        return 1.0 / (1.0 + np.exp(np.clip(self.eta * (gap - self.margin), -50.0, 50.0)))  # clipped: no overflow

    @property
    def extra(self) -> int:
        """Points the input holds beyond the model's window: the farthest scored origin's target is this far back."""
        return 1 + (self.steps - 1) * self.stride

    def lags(self) -> np.ndarray:
        """How far before the input's end each scored target lies: 1, 1 + stride, ..."""
        return 1 + self.stride * np.arange(self.steps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def apply(self, z: np.ndarray, window: int, forward: Forward, scout: Forward | None = None) -> np.ndarray:
        """(N, window + extra) scaled inputs -> (N, horizon) gated forecasts, scaled.

        ``forward`` runs the model on the last window; ``scout`` (default ``forward``) makes the recent past's
        one-step forecasts that score it: an ensemble's first member, at a fraction of the cost."""
        n, length = z.shape
        if length != window + self.extra:
            raise ValueError(f"the gate needs inputs of window + {self.extra} = {window + self.extra}, got {length}")
        main = forward(z[:, -window:])  # (N, H)
        lags = self.lags()  # (K,)
        ends = length - lags  # the scored target sits at index `end`; its input is z[end - window : end]
        # (N*K, W): whole rows of a sliding view, in the float32 that both forwards compute in (the cast before the
        # copy is the cast after it, at a quarter of the bytes). The windows start at ends - window, extra - 1 down to
        # 0, stride apart: a slice of the view, which the reshape copies at most once (where N or K is 1 it stays a
        # read-only view: no forward writes into its input). A (K, W) fancy index gathered each element apart: 26 ms
        # of a 1,000-series batch's 86 (benchmarks/pretrained_zero_shot.py).
        recent = slice(self.extra - 1, None, -self.stride)  # the K windows' starts, lag 1 first
        view = sliding_window_view(z.astype(np.float32), window, axis=1)
        past = view[:, recent].reshape(n * len(lags), window)
        one_step = (scout or forward)(past)[:, 0].reshape(n, len(lags))  # (N, K)
        actual, before = z[:, ends], z[:, ends - 1]  # (N, K): each scored target, and naive's forecast of it
        w = self._weight(np.abs(one_step - actual), np.abs(before - actual))[:, None]  # (N, 1)
        mix = w * main + (1.0 - w) * z[:, -1:]
        if not self.median:
            return mix
        past_level = median_level(sliding_window_view(z, window, axis=1)[:, recent])  # (N, K)
        mixed = w * one_step + (1.0 - w) * before  # the mix's one-step forecasts, at today's weight
        w2 = self._weight(np.abs(mixed - actual), np.abs(past_level - actual))[:, None]  # (N, 1)
        return w2 * mix + (1.0 - w2) * median_level(z[:, -window:])[:, None]


DEFAULT_GATE = Gate()


def default_gate(model: str) -> Gate | None:
    """The production default: every learned model is gated; the baselines (naive, seasonal naive, AR) are not,
    so that they stay the plain peers a benchmark measures beside the model."""
    return None if model in BASELINES else DEFAULT_GATE


def input_length(window: int, gate: Gate | None) -> int:
    """Points one forecast reads: the model's window, plus the gate's recent past."""
    return window + (gate.extra if gate is not None else 0)


def gate_from_dict(d: dict[str, Any] | None) -> Gate | None:
    """The gate a (migrated: ``forecaster.artifact.migrate``) meta.json describes; None (no gate: input_length ==
    window) where it has none."""
    if d is None:
        return None
    fields = {"steps", "stride", "eta", "floor", "margin", "median"}
    if not isinstance(d, dict) or set(d) != fields:
        raise ValueError(f"invalid gate {d!r}: it needs exactly {', '.join(sorted(fields))}")
    if type(d["steps"]) is not int or type(d["stride"]) is not int:
        raise ValueError(f"invalid gate {d!r}: steps and stride must be integers")
    if type(d["median"]) is not bool:
        raise ValueError(f"invalid gate {d!r}: median must be true or false")
    floats = {k: float(d[k]) for k in ("eta", "floor", "margin")}
    return Gate(d["steps"], d["stride"], **floats, median=d["median"])
