"""The backtest's figures, as PNG bytes: matplotlib's object API on the Agg canvas (no pyplot, no display).
matplotlib is optional (daemon.offline.report.PLOTS_EXTRA): it is imported only when a figure is drawn."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from promcast.daemon.offline.backtest import BacktestResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_capacity", "plot_tradeoff"]

STYLES = {
    "reactive": "tab:gray",
    "forecast": "tab:blue",
    "forecast_naive": "tab:orange",
    "forecast_linear": "tab:green",
}


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def plot_capacity(result: BacktestResult) -> bytes:
    """Per policy, one panel: the demand, the serving capacity, and the steps it was under-provisioned."""
    series = result.series
    demand, serving = series.demand, {k: r.serving for k, r in series.replays.items()}
    times = series.start.to_datetime64() + series.origins.astype(np.int64) * series.step.to_timedelta64()
    capacity = result.settings.capacity_per_replica
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 2.2 * len(serving)))
    axes = fig.subplots(len(serving), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, srv) in zip(axes, serving.items(), strict=True):
        cap = srv * capacity
        ax.plot(times, demand, color="black", lw=0.7, label="demand")
        ax.step(times, cap, where="post", color=STYLES[name], lw=1.0, label="serving capacity")
        short = demand > cap
        ax.scatter(times[short], demand[short], s=4, color="tab:red", label="under-provisioned", zorder=3)
        m = result.policies[name]
        ax.set_title(
            f"{name}: {m.under_provisioned_share:.1%} of steps under-provisioned, {m.replica_hours:.0f} replica-hours",
            fontsize=9,
        )
        ax.legend(loc="upper right", fontsize=7)
    return _png(fig)


def plot_tradeoff(result: BacktestResult) -> bytes:
    """Share of steps under-provisioned against replica-hours, for each forecast policy as the level varies."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    levels = list(result.levels)
    for name in ("forecast", "forecast_naive", "forecast_linear"):
        x = [result.levels[lv][name].replica_hours for lv in levels]
        y = [result.levels[lv][name].under_provisioned_share for lv in levels]
        ax.plot(x, y, marker="o", color=STYLES[name], label=name)
        for lv, xi, yi in zip(levels, x, y, strict=True):
            ax.annotate(lv, (xi, yi), fontsize=7, textcoords="offset points", xytext=(3, 3))
    r = result.policies["reactive"]
    ax.scatter([r.replica_hours], [r.under_provisioned_share], color=STYLES["reactive"], marker="s", s=40)
    ax.annotate(
        "reactive",
        (r.replica_hours, r.under_provisioned_share),
        fontsize=8,
        xytext=(4, 4),
        textcoords="offset points",
    )
    ax.set_xlabel("replica-hours")
    ax.set_ylabel("share of steps under-provisioned")
    ax.set_title(f"{result.input}: the level of the upper bound, traded", fontsize=9)
    ax.legend(fontsize=8)
    return _png(fig)
