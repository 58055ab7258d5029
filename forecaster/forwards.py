"""NumPy forward passes for the models that are a few array operations; ``forecaster.catalog`` names each
model's builder, and ``forecaster.frozen`` serves through them without torch.

Every forward maps (N, window) scaled inputs to (N, horizon) scaled outputs in float32, as torch does. A
builder takes (pops) the weights it uses; weights left over make the artifact invalid, as torch's strict
``load_state_dict`` would. ``tests/test_frozen.py`` holds each forward to the torch model's output.
"""

from __future__ import annotations

from collections.abc import Callable
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
]

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
# The mlp's seasonal feature (``MLPConfig.periods``): a candidate period spans at most this share of the window, so
# that at least a third of the window gives its autocorrelation; and how sharply the autocorrelations (in [-1, 1])
# pick the season (a softmax's inverse temperature).
SEASON_SHARE = 2 / 3
SHARPNESS = 10.0


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


def seasonal_features(z: np.ndarray, periods: tuple[int, ...], horizon: int) -> np.ndarray:
    """(B, W) windows normalised to mean 0 and spread 1 -> (B, horizon + P): the seasonal-naive forecast of each
    candidate period, weighted by a softmax of the periods' autocorrelations in the window, then those
    autocorrelations. As ``MLPNet.seasonal_features``; row-wise dot products (einsum), never a shifted copy."""
    window = z.shape[1]
    out = np.empty((z.shape[0], horizon + len(periods)), dtype=_F)
    acf = out[:, horizon:]
    for j, p in enumerate(periods):
        np.einsum("ij,ij->i", z[:, p:], z[:, :-p], out=acf[:, j])
    acf /= np.array([window - p for p in periods], dtype=_F)
    logits = _F(SHARPNESS) * acf
    weight = np.exp(logits - logits.max(axis=1, keepdims=True))
    weight /= weight.sum(axis=1, keepdims=True)
    season = out[:, :horizon]
    season[:] = 0.0
    for j, p in enumerate(periods):  # each period's seasonal naive: a slice of the window where p >= horizon
        back = z[:, window - p : window - p + horizon] if p >= horizon else z[:, window - p + np.arange(horizon) % p]
        season += weight[:, j : j + 1] * back
    return out


def mlp(arrays: dict[str, np.ndarray], window: int, horizon: int, hp: dict[str, Any]) -> tuple[Forward, Forward]:
    members_n, layers = _int(hp, "members"), _int(hp, "layers") + 1
    periods = tuple(hp.get("periods", ()))  # absent in artifacts made before the feature (ModelSpec.added)
    if not all(type(p) is int for p in periods):
        raise ValueError(f"hyperparameter periods={periods!r} holds a value that is not an integer")
    extra = horizon + len(periods) if periods else 0
    widths = [window + extra] + [_int(hp, "hidden")] * (layers - 1) + [horizon]
    weights = [_take(arrays, f"weights.{i}", (members_n, widths[i], widths[i + 1])) for i in range(layers)]
    biases = [_take(arrays, f"biases.{i}", (members_n, 1, widths[i + 1])) for i in range(layers)]
    if not 0.0 <= hp["dropout"] <= 1.0:  # unused at inference, but torch's nn.Dropout refuses it
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {hp['dropout']}")
    norm = {True: "meanstd", False: "none"}.get(hp["norm"], hp["norm"])  # as layers.InstanceNorm reads it
    if norm not in ("none", "last", "meanstd"):
        raise ValueError(f"unknown normalisation {norm!r}")
    check_periods(periods, norm, window)

    def members(z: np.ndarray, m: int) -> np.ndarray:  # (B, W) -> (m, B, H): the first m members
        # (B, 1) shift and scale, as layers.InstanceNorm; h: (B, W), then (M, B, out) per layer
        if norm == "meanstd":  # centred once, and the spread from that centred copy in one pass (np.var's formula)
            shift = z.mean(axis=1, keepdims=True)
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
                h = np.matmul(h, w[:m, :window]) + np.matmul(features, w[:m, window:]) + b[:m]
            else:
                h = np.matmul(h, w[:m]) + b[:m]
            if i < layers - 1:
                h = gelu(h)
        return h * scale + shift

    return (lambda z: members(z, members_n).mean(axis=0)), (lambda z: members(z, 1)[0])
