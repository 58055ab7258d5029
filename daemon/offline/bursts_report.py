"""``promcast bursts``'s report: bursts.csv (every scored step), report.md's Markdown and bursts.png, the files
daemon.offline.report writes. The figure needs matplotlib, imported only when it is drawn."""

from __future__ import annotations

import io

import pandas as pd

from promcast.daemon.offline.bursts import LEVEL, BurstsResult
from promcast.daemon.offline.report import Report, plots_available
from promcast.forecaster.evaluation.nab import PROFILES

__all__ = ["bursts_report", "markdown", "summary", "table"]


def bursts_report(result: BurstsResult, plots: bool | None = None) -> Report:
    """metrics.json, bursts.csv, report.md, and bursts.png where ``plots`` (default: where matplotlib is installed);
    without it, report.md links to no figure."""
    tables = {"bursts.csv": table(result).to_csv(index=False).encode()}
    if not (plots_available() if plots is None else plots):
        return Report(result, markdown(result, figure=False), tables=tables, skipped=("bursts.png",))
    return Report(result, markdown(result), tables=tables, figures={"bursts.png": lambda: _plot(result)})


def summary(result: BurstsResult) -> str:
    """What the command prints: the report up to its figure."""
    return markdown(result).split("\n![")[0]


def table(result: BurstsResult) -> pd.DataFrame:
    """Every scored step: its value, the one-step-ahead band, the score, and whether it is in a burst or starts one."""
    s = result.series
    rows = slice(s.start, None)
    return pd.DataFrame(
        {
            "timestamp": s.index[rows],
            "value": s.values[rows],
            "lower": s.band[0],
            "upper": s.band[1],
            "score": s.scores[rows],
            "burst": s.flag[rows].astype(int),
            "onset": s.onsets[rows].astype(int),
        }
    )


def markdown(r: BurstsResult, figure: bool = True) -> str:
    st, m = r.settings, r.model
    fit = f"was fitted on the first {r.fit_points} (NAB's probationary period)"
    if not m.fitted:
        fit = f"was loaded from {m.artifact}, not fitted; the first {r.fit_points} are NAB's probationary period"
    lines = [
        f"# Bursts: {r.input}",
        "",
        f"- {r.points} points of {r.step_seconds:g} s; the model (`{m.name}`, window {m.window}) {fit}; steps from "
        f"{r.scored_from} are scored.",
        f"- A burst: the score (how far outside the {st.level:g} band of every forecast that covered the step, in "
        f"band widths) above {st.threshold:g} for {st.persistence} steps running, or above {st.spike} once. "
        "Detections are burst onsets.",
        f"- Detections: promcast {r.detections.promcast}, k-sigma (window {st.ksigma.window}, k "
        f"{st.ksigma.k:g}) {r.detections.ksigma}.",
    ]
    if r.score is not None and r.baselines is not None:
        lines += ["", "| detector | " + " | ".join(PROFILES) + " |", "|---|" + "---:|" * len(PROFILES)]
        rows = {"promcast": r.score, **{k: v.score for k, v in r.baselines.items()}}
        for name, sc in rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{sc[p]:.1f}" for p in PROFILES) + " |")
        lines += ["", "NAB's normalised score: 0 is the null detector, 100 one detection at the start of every window."]
    if r.hits is not None:
        lines += ["", "| detector | labelled windows found | false positives | per day |", "|---|---:|---:|---:|"]
        for name, h in r.hits.items():
            lines.append(f"| {name} | {h.found} of {h.windows} | {h.false} | {h.false_per_day:g} |")
    lines += ["", "![bursts](bursts.png)", ""] if figure else [""]
    return "\n".join(lines)


def _plot(r: BurstsResult) -> bytes:
    """The series, the one-step-ahead band over the scored steps, the burst onsets and the labelled windows."""
    from matplotlib.dates import date2num
    from matplotlib.figure import Figure

    s = r.series
    fig = Figure(figsize=(12, 4))
    ax = fig.subplots()
    t = s.index[s.start :]
    ax.plot(s.index, s.values, color="black", lw=0.6, label="actual")
    ax.fill_between(t, s.band[0], s.band[1], color="tab:blue", alpha=0.3, lw=0, label=f"{LEVEL:g} band (h=1)")
    on = s.onsets
    ax.scatter(s.index[on], s.values[on], color="tab:red", s=25, zorder=3, label="burst onset")
    for i, (a, b) in enumerate(r.windows or []):
        ax.axvspan(
            float(date2num(pd.Timestamp(a))),
            float(date2num(pd.Timestamp(b))),
            color="tab:orange",
            alpha=0.15,
            lw=0,
            label="labelled window" if i == 0 else None,
        )
    ax.set_title(r.input, fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
