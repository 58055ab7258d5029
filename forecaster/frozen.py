"""Serving without torch: NumPy forward passes for the models that are a few array operations.

``ArrayForecaster`` loads the same artifact as ``Forecaster.load`` (safetensors weights, meta.json) and
predicts through NumPy. The default model (``mlp``), ``nlinear`` and the baselines have such a forward;
the recurrent and attention models do not, and ``load_frozen`` loads those through torch. An artifact that
the NumPy runtime refuses goes to torch only when the caller asks (``torch_fallback``), never silently. A
process that only serves the default model never imports torch (about 180 MB of resident memory, README.md
and BENCHMARKS.md). ``tests/test_frozen.py`` holds each forward to the torch model's output.

Every forward maps (N, window) scaled inputs to (N, horizon) scaled outputs in float32, as torch does. A
builder takes (pops) the weights it uses; weights left over make the artifact invalid, as torch's strict
``load_state_dict`` would.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import ArtifactError, read_artifact
from .predictor import Predictor, Restored

__all__ = ["FORWARDS", "HPARAMS", "ArrayForecaster", "load_frozen"]

Forward = Callable[[np.ndarray], np.ndarray]
# A builder returns the forward, or (forward, scout) where the gate's scout is cheaper (ForecastModel.scout).
Builder = Callable[[dict[str, np.ndarray], int, int, dict[str, Any]], Forward | tuple[Forward, Forward]]

_F = np.float32
_SQRT_HALF = _F(np.sqrt(0.5))
# erfc(u) = t exp(-u^2 + P(t)), t = 1 / (1 + u / 2), u >= 0: Numerical Recipes' Chebyshev fit, relative
# error below 1.2e-7 everywhere, so gelu below keeps float32 precision in both tails.
_ERFC = np.array(
    [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
     0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277],
    dtype=np.float32,
)  # fmt: skip
_CHUNK = 65536  # elements per pass: the scratch arrays stay in cache


def _gelu_into(x: np.ndarray, out: np.ndarray, t: np.ndarray, a: np.ndarray) -> None:
    """out = gelu(x) for 1-D float32 arrays, in place, with t and a as scratch; no temporaries."""
    np.abs(x, out=a)
    a *= _SQRT_HALF * _F(0.5)  # u / 2, u = |x| / sqrt 2
    np.add(a, _F(1.0), out=t)
    np.reciprocal(t, out=t)  # t = 1 / (1 + u / 2)
    np.multiply(t, _ERFC[-1], out=out)
    for c in _ERFC[-2:0:-1]:
        out += c
        out *= t
    out += _ERFC[0]  # P(t), by Horner
    a *= _F(2.0)
    a *= a
    out -= a
    np.exp(out, out=out)
    out *= t
    out *= _F(0.5)  # e = erfc(u) / 2 = Phi(-|x|), accurate deep into the tail
    np.multiply(out, _F(-2.0), out=t)
    t += _F(1.0)
    np.heaviside(x, _F(1.0), out=a)
    t *= a
    out += t  # Phi(x): e where x < 0, 1 - e where x >= 0 (arithmetic, not masked copies, which are slow)
    out *= x


def gelu(x: np.ndarray) -> np.ndarray:
    """torch.nn.functional.gelu (the exact, erf form) in float32: x Phi(x), Phi the normal CDF."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    res = np.empty_like(flat)
    t = np.empty(min(_CHUNK, flat.size), dtype=np.float32)
    a = np.empty_like(t)
    for i in range(0, flat.size, _CHUNK):
        n = min(_CHUNK, flat.size - i)
        _gelu_into(flat[i : i + n], res[i : i + n], t[:n], a[:n])
    return res.reshape(np.shape(x))


def _int(hp: dict[str, Any], key: str) -> int:
    """An integer hyperparameter, strictly: "4" or 4.0 in meta.json is an error, as it is in the model's Config."""
    value = hp[key]
    if type(value) is not int:
        raise ValueError(f"hyperparameter {key}={value!r} is not an integer")
    return value


def _take(arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
    """Pop ``key``, checking the shape that the hyperparameters imply, as torch's ``load_state_dict`` does."""
    value = arrays.pop(key)
    if value.shape != shape:
        raise ValueError(f"{key} has shape {list(value.shape)}, the hyperparameters give {list(shape)}")
    return value


def _naive(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> Forward:
    return lambda z: np.repeat(z[:, -1:], horizon, axis=1)


def _seasonal(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> Forward:
    period = _int(hp, "period")
    if not 1 <= period <= window:
        raise ValueError(f"seasonal_naive needs 1 <= period <= window, got period={period} window={window}")
    index = np.array([window - period + (h % period) for h in range(horizon)])
    return lambda z: z[:, index]


def _ar(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> Forward:
    order = _int(hp, "order") or window
    weight, bias = _take(arrays, "linear.weight", (horizon, order)), _take(arrays, "linear.bias", (horizon,))
    return lambda z: z[:, -order:] @ weight.T + bias


def _nlinear(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> Forward:
    weight, bias = _take(arrays, "linear.weight", (horizon, window)), _take(arrays, "linear.bias", (horizon,))

    def forward(z: np.ndarray) -> np.ndarray:
        last = z[:, -1:]
        return (z - last) @ weight.T + bias + last

    return forward


def _mlp(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> tuple[Forward, Forward]:
    members_n, layers = _int(hp, "members"), _int(hp, "layers") + 1
    widths = [window] + [_int(hp, "hidden")] * (layers - 1) + [horizon]
    weights = [_take(arrays, f"weights.{i}", (members_n, widths[i], widths[i + 1])) for i in range(layers)]
    biases = [_take(arrays, f"biases.{i}", (members_n, 1, widths[i + 1])) for i in range(layers)]
    if not 0.0 <= hp["dropout"] <= 1.0:  # unused at inference, but torch's nn.Dropout refuses it
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {hp['dropout']}")
    norm = {True: "meanstd", False: "none"}.get(hp["norm"], hp["norm"])  # as layers.InstanceNorm reads it
    if norm not in ("none", "last", "meanstd"):
        raise ValueError(f"unknown normalisation {norm!r}")

    def members(z: np.ndarray, m: int) -> np.ndarray:  # (B, W) -> (m, B, H): the first m members
        shift, scale = np.zeros_like(z[:, :1]), np.ones_like(z[:, :1])  # (B, 1) each, as layers.InstanceNorm
        if norm == "last":
            shift = z[:, -1:]
        elif norm == "meanstd":
            shift = z.mean(axis=1, keepdims=True)
            scale = np.sqrt(z.var(axis=1, keepdims=True) + np.float32(1e-5))
        h = (z - shift) / scale  # (B, W), then (M, B, out) per layer
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            h = np.matmul(h, w[:m]) + b[:m]
            if i < layers - 1:
                h = gelu(h)
        return h * scale + shift

    return (lambda z: members(z, members_n).mean(axis=0)), (lambda z: members(z, 1)[0])


# The hyperparameters each NumPy forward reads, exactly: an artifact with others (or fewer) goes to torch,
# which fills defaults and refuses unknown names. A test keeps these equal to the models' Config fields.
HPARAMS: dict[str, frozenset[str]] = {
    "naive": frozenset(),
    "seasonal_naive": frozenset({"period"}),
    "ar": frozenset({"order", "ridge"}),
    "nlinear": frozenset(),
    "mlp": frozenset({"hidden", "layers", "dropout", "members", "norm"}),
}

FORWARDS: dict[str, Builder] = {
    "naive": _naive,
    "seasonal_naive": _seasonal,
    "ar": _ar,
    "nlinear": _nlinear,
    "mlp": _mlp,
}


class ArrayForecaster(Predictor):
    """A frozen forecaster that predicts through NumPy; load it with ``ArrayForecaster.load``."""

    runtime = "numpy"

    def __init__(self, restored: Restored, forward: Forward, scout: Forward | None = None) -> None:
        self.model_name, self.window, self.horizon = restored.model, restored.window, restored.horizon
        self.step, self.max_gap = restored.step, restored.max_gap
        self._scaler, self._calibration = restored.scaler, restored.calibration
        self._forward, self.meta, self.gate = forward, restored.meta, restored.gate
        self._scout = scout or forward

    def _predict_scaled(self, z: np.ndarray) -> np.ndarray:
        return self._forward(np.ascontiguousarray(z, dtype=np.float32)).astype(np.float64)

    def _scout_scaled(self, z: np.ndarray) -> np.ndarray:
        return self._scout(np.ascontiguousarray(z, dtype=np.float32)).astype(np.float64)

    @classmethod
    def restore(cls, r: Restored, arrays: dict[str, np.ndarray]) -> ArrayForecaster:
        """An ArrayForecaster from an artifact already read: its checked meta.json and its weights."""
        if r.model not in FORWARDS:
            raise ArtifactError(f"{r.path}: model {r.model!r} has no NumPy forward; load it with Forecaster.load")
        if set(r.hparams) != HPARAMS[r.model]:
            raise ArtifactError(
                f"{r.path}: hyperparameters {sorted(r.hparams)}, the NumPy {r.model} reads {sorted(HPARAMS[r.model])}"
            )
        weights = {k: v.astype(np.float32, copy=False) for k, v in arrays.items()}
        try:
            built = FORWARDS[r.model](weights, r.window, r.horizon, r.hparams)
            if weights:
                raise ValueError(f"unexpected weights {sorted(weights)}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{r.path}: meta.json does not describe these weights: {exc}") from exc
        forward, scout = built if isinstance(built, tuple) else (built, None)
        return cls(r, forward, scout)


def load_frozen(
    path: str | Path, *, torch_fallback: bool = False, on_fallback: Callable[[str], None] | None = None
) -> Predictor:
    """The artifact at ``path``, ready to predict: through NumPy where the model has a NumPy forward, else torch.

    An artifact of a model with a NumPy forward that the NumPy runtime refuses (say, one whose hyperparameters
    predate a field) is never handed to torch silently. With ``torch_fallback`` false it is refused: ArtifactError
    with the NumPy runtime's reason. With it true, ``on_fallback`` receives that reason (by default it becomes a
    RuntimeWarning) and ``Forecaster.load`` decides as it always has: it raises ArtifactError for a corrupt
    artifact and serves an older one through torch. The artifact is read and checked once; a corrupt meta.json is
    refused before torch is ever imported."""
    arrays, meta = read_artifact(path)
    r = Restored(path, meta)
    if r.model in FORWARDS:
        try:
            return ArrayForecaster.restore(r, arrays)
        except ArtifactError as exc:
            if not torch_fallback:
                raise ArtifactError(f"{exc} (the NumPy runtime refuses it; torch_fallback is off)") from exc
            reason = f"{exc}; loading it through torch (torch_fallback is on)"
            if on_fallback is None:
                warnings.warn(reason, RuntimeWarning, stacklevel=2)
            else:
                on_fallback(reason)
    from .forecaster import Forecaster  # imports torch: models without a NumPy forward, or a fallback asked for

    return Forecaster.restore(r, arrays)
