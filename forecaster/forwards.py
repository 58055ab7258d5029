"""NumPy forward passes for the models that are a few array operations; ``forecaster.catalog`` names each
model's builder, and ``forecaster.numpy_runtime`` serves through them without torch.

Every forward maps (N, window) scaled inputs to (N, horizon) scaled outputs in float32, as torch does. A
builder takes (pops) the weights it uses; weights left over make the artifact invalid, as torch's strict
``load_state_dict`` would. ``tests/test_frozen.py`` holds each forward to the torch model's output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "SEASON_SHARE",
    "SHARPNESS",
    "Builder",
    "Forward",
    "ar",
    "check_periods",
    "gelu",
    "mlp",
    "naive",
    "nlinear",
    "repeat_last",
    "seasonal_features",
    "seasonal_naive",
    "seasonal_width",
]

Forward = Callable[[np.ndarray], np.ndarray]
# A builder returns the forward, or (forward, scout) where the gate's scout is cheaper (ForecastModel.scout).
Builder = Callable[[dict[str, np.ndarray], int, int, dict[str, Any]], Forward | tuple[Forward, Forward]]

_F = np.float32
# erfc(u) = t exp(-u^2 + P(t)), t = 1 / (1 + u / 2), u >= 0: Numerical Recipes' Chebyshev fit, relative
# error below 1.2e-7 everywhere, so gelu below keeps float32 precision in both tails.
_ERFC = np.array(
    [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
     0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277],
    dtype=np.float32,
)  # fmt: skip
_HALF_ERFC0 = _F(_ERFC[0] - np.log(2.0))  # P(t) - log 2: the exponential gives erfc(u) / 2
_T_SLOPE = _F(0.5 * np.sqrt(0.5))  # t = 1 / (1 + |x| _T_SLOPE), as u = |x| / sqrt 2
_CHUNK = 65536  # elements per pass: the four scratch arrays (256 KiB each) fit a core's 2 MiB L2 cache
# The mlp's seasonal feature (``MLPConfig.periods``): a candidate period spans at most this share of the window, so
# that at least a third of the window gives its autocorrelation; and how sharply the autocorrelations (in [-1, 1])
# pick the season (a softmax's inverse temperature).
SEASON_SHARE = 2 / 3
SHARPNESS = 10.0


def _gelu_into(x: np.ndarray, out: np.ndarray, t: np.ndarray, a: np.ndarray, b: np.ndarray, pos: np.ndarray) -> None:
    """out = gelu(x) for 1-D float32 arrays (out may be x), with t, a, b and pos as scratch; no temporaries.

    With e = Phi(-|x|) = erfc(|x| / sqrt 2) / 2, gelu(x) = x (1 - e) for x >= 0 and x e below: max(x, 0) - |x| e,
    in arithmetic passes only: no np.heaviside (the form before it) and no masked copy."""
    np.maximum(x, _F(0.0), out=pos)  # x is read here and in the next line only, so out may be x
    np.abs(x, out=a)
    np.multiply(a, _T_SLOPE, out=t)
    t += _F(1.0)
    np.reciprocal(t, out=t)
    np.multiply(t, _ERFC[-1], out=out)
    for coef in _ERFC[-2:0:-1]:
        out += coef
        out *= t
    out += _HALF_ERFC0  # P(t) - log 2, by Horner
    np.square(a, out=b)
    b *= _F(0.5)
    out -= b  # - u^2
    np.exp(out, out=out)
    out *= t  # e, with its relative precision deep into the tail
    out *= a
    np.subtract(pos, out, out=out)


def gelu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """torch.nn.functional.gelu (the exact, erf form) in float32: x Phi(x), Phi the normal CDF. ``out`` (say, ``x``
    itself: in place) is a C-contiguous float32 array of x's shape."""
    if out is not None and (out.dtype != np.float32 or out.shape != np.shape(x) or not out.flags.c_contiguous):
        raise ValueError("gelu's out must be a C-contiguous float32 array of the input's shape")
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    res = np.empty_like(flat) if out is None else out.reshape(-1)  # a view of out: it is C-contiguous
    t = np.empty(min(_CHUNK, flat.size), dtype=np.float32)
    a, b, pos = np.empty_like(t), np.empty_like(t), np.empty_like(t)
    for i in range(0, flat.size, _CHUNK):
        n = min(_CHUNK, flat.size - i)
        _gelu_into(flat[i : i + n], res[i : i + n], t[:n], a[:n], b[:n], pos[:n])
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


def repeat_last(z: np.ndarray, horizon: int) -> np.ndarray:
    """(N, L) windows -> (N, horizon): naive's forecast, the last value repeated."""
    return np.repeat(z[:, -1:], horizon, axis=1)


def naive(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> Forward:
    return lambda z: repeat_last(z, horizon)


def seasonal_naive(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> Forward:
    period = _int(hp, "period")
    if not 1 <= period <= window:
        raise ValueError(f"seasonal_naive needs 1 <= period <= window, got period={period} window={window}")
    index = np.array([window - period + (h % period) for h in range(horizon)])
    return lambda z: z[:, index]


def ar(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> Forward:
    order = _int(hp, "order") or window
    weight, bias = _take(arrays, "linear.weight", (horizon, order)), _take(arrays, "linear.bias", (horizon,))
    return lambda z: z[:, -order:] @ weight.T + bias


def nlinear(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> Forward:
    weight, bias = _take(arrays, "linear.weight", (horizon, window)), _take(arrays, "linear.bias", (horizon,))

    def forward(z: np.ndarray) -> np.ndarray:
        last = z[:, -1:]
        return (z - last) @ weight.T + bias + last

    return forward


def check_periods(periods: tuple[int, ...], norm: str, window: int) -> None:
    """The seasonal feature's one rule, for the torch network and the NumPy forward alike: it reads windows
    normalised to mean 0 and spread 1, and every period fits ``SEASON_SHARE`` of the window."""
    if periods and (norm != "meanstd" or not all(2 <= p <= SEASON_SHARE * window for p in periods)):
        raise ValueError(f"mlp periods need norm='meanstd' and each period in [2, {SEASON_SHARE:.3g} x window]")


def seasonal_width(periods: Sequence[int], horizon: int) -> int:
    """Inputs the seasonal feature adds to the mlp's window: each period's forecast mixed into one (``horizon``
    values) and each period's autocorrelation; none without periods."""
    return horizon + len(periods) if periods else 0


def seasonal_features(z: np.ndarray, periods: tuple[int, ...], horizon: int) -> np.ndarray:
    """(B, W) windows normalised to mean 0 and spread 1 -> (B, horizon + P): the seasonal-naive forecast of each
    candidate period, weighted by a softmax of the periods' autocorrelations in the window, then those
    autocorrelations. As ``MLPNet.seasonal_features``; row-wise dot products (einsum), never a shifted copy, and the
    (P, B) autocorrelations and weights held period by period, each a contiguous row."""
    window = z.shape[1]
    acf = np.empty((len(periods), z.shape[0]), dtype=_F)
    for j, p in enumerate(periods):
        np.einsum("ij,ij->i", z[:, p:], z[:, :-p], out=acf[j])
    acf /= np.array([[window - p] for p in periods], dtype=_F)
    logits = _F(SHARPNESS) * acf
    weight = np.exp(logits - logits.max(axis=0))
    weight /= weight.sum(axis=0)
    out = np.empty((z.shape[0], horizon + len(periods)), dtype=_F)
    season = out[:, :horizon]
    season[:] = 0.0
    for j, p in enumerate(periods):  # each period's seasonal naive: a slice of the window where p >= horizon
        back = z[:, window - p : window - p + horizon] if p >= horizon else z[:, window - p + np.arange(horizon) % p]
        season += weight[j][:, None] * back
    out[:, horizon:] = acf.T
    return out


def mlp(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> tuple[Forward, Forward]:
    members_n, layers = _int(hp, "members"), _int(hp, "layers") + 1
    periods = tuple(hp["periods"])
    if not all(type(p) is int for p in periods):
        raise ValueError(f"hyperparameter periods={periods!r} holds a value that is not an integer")
    widths = [window + seasonal_width(periods, horizon)] + [_int(hp, "hidden")] * (layers - 1) + [horizon]
    weights = [_take(arrays, f"weights.{i}", (members_n, widths[i], widths[i + 1])) for i in range(layers)]
    biases = [_take(arrays, f"biases.{i}", (members_n, 1, widths[i + 1])) for i in range(layers)]
    if not 0.0 <= hp["dropout"] <= 1.0:  # unused at inference, but torch's nn.Dropout refuses it
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {hp['dropout']}")
    norm = {True: "meanstd", False: "none"}.get(hp["norm"], hp["norm"])  # as layers.InstanceNorm reads it
    if norm not in ("none", "last", "meanstd"):
        raise ValueError(f"unknown normalisation {norm!r}")
    check_periods(periods, norm, window)

    def members(z: np.ndarray, m: int) -> np.ndarray:  # (B, W) -> (m, B, H): the first m members
        z = np.ascontiguousarray(z, dtype=_F)  # float32, as the in-place GELU needs (a no-op from ArrayForecaster)
        # (B, 1) shift and scale, as layers.InstanceNorm; h: (B, W), then (M, B, out) per layer
        if norm == "meanstd":  # centred once, and the spread from that centred copy in one pass (np.var's formula)
            shift = z @ np.full((z.shape[1], 1), 1.0 / z.shape[1], dtype=_F)  # the mean: one BLAS call, not a reduction
            h = z - shift
            scale = np.sqrt(np.einsum("ij,ij->i", h, h)[:, None] / np.float32(z.shape[1]) + np.float32(1e-5))
            h /= scale
        else:
            shift = z[:, -1:] if norm == "last" else np.zeros_like(z[:, :1])
            scale = np.ones_like(z[:, :1])
            h = z - shift
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            if i == 0 and periods:  # the first layer's rows for the window, then the feature's: nothing concatenated
                features = seasonal_features(h, periods, horizon)
                h = np.matmul(h, w[:m, :window])
                h += np.matmul(features, w[:m, window:])
            else:
                h = np.matmul(h, w[:m])
            h += b[:m]  # in place, as the GELU below: a batch's activations are not copied from layer to layer
            if i < layers - 1:
                gelu(h, out=h)
        h *= scale
        h += shift
        return h

    return (lambda z: members(z, members_n).mean(axis=0)), (lambda z: members(z, 1)[0])
