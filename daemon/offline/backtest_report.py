"""``promcast backtest``'s report: report.md's Markdown, and the files daemon.offline.report writes."""

from __future__ import annotations

from promcast.daemon.offline.backtest import POLICIES, BacktestResult
from promcast.daemon.offline.backtest_plots import plot_capacity, plot_tradeoff
from promcast.daemon.offline.report import Report, plots_available

__all__ = ["FIGURES", "backtest_report", "markdown", "summary"]

FIGURES = ("capacity.png", "tradeoff.png")


def backtest_report(result: BacktestResult, plots: bool | None = None) -> Report:
    """metrics.json, report.md, and the figures capacity.png and tradeoff.png where ``plots`` (default: where
    matplotlib is installed); without them, report.md links to none."""
    if not (plots_available() if plots is None else plots):
        return Report(result, markdown(result, figures=False), skipped=FIGURES)
    figures = {"capacity.png": lambda: plot_capacity(result), "tradeoff.png": lambda: plot_tradeoff(result)}
    return Report(result, markdown(result), figures=figures)


def summary(result: BacktestResult) -> str:
    """What the command prints: the report up to its accuracy section."""
    return markdown(result).split("\n\n## ")[0]


def markdown(r: BacktestResult, figures: bool = True) -> str:
    s, model = r.settings, r.model
    fit = f"fitted in {model.fit_seconds:.1f} s" if model.fitted else f"not fitted: loaded from {model.artifact}"
    before = "the model is fitted on the 80 % before" if model.fitted else "the model saw none of it"
    lines = [
        f"# Autoscaling backtest: {r.input}",
        "",
        f"- Replay: {r.replay.steps} steps of {r.step_seconds:g} s, {r.replay.start} to "
        f"{r.replay.end} (the last 20 % of {r.points} points; {before}).",
        f"- Model: `{model.name}` (window {model.window}, {fit}; bands: {model.bands}).",
        f"- Settings: capacity_per_replica {s.capacity_per_replica:g}, target_utilization "
        f"{s.target_utilization:g}, replicas {s.min_replicas}..{s.max_replicas}, start-up "
        f"{s.startup_steps} steps, scale-in stabilisation {s.scale_in_steps} steps, level {s.level:g}, "
        f"horizon {s.horizon}, predict_linear range {s.linear_range} steps.",
        "",
        "| policy | under-provisioned steps | share | unserved | replica-hours | mean spare replicas | scale events |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in POLICIES:
        m = r.policies[name]
        lines.append(
            f"| {name} | {m.under_provisioned_steps} | {m.under_provisioned_share:.2%} | {m.unserved:.4g} | "
            f"{m.replica_hours:.1f} | {m.over_provisioning:.2f} | {m.scale_events} |"
        )
    lines += [
        "",
        "Under-provisioned: the step's demand exceeds the serving replicas x capacity_per_replica. Unserved: the sum "
        "of that excess (load units x steps). Replica-hours count replicas still starting. Over-provisioning: the "
        "mean spare serving capacity, in replicas.",
        "",
        "## Forecast accuracy over the replay (MAE, original units)",
        "",
        "| forecast | MAE | " + " | ".join(f"h={h + 1}" for h in range(s.horizon)) + " |",
        "|---|---:|" + "---:|" * s.horizon,
    ]
    for k, a in r.accuracy.items():
        lines.append(f"| {k} | {a.mae:.4g} | " + " | ".join(f"{v:.4g}" for v in a.mae_per_h) + " |")
    lines += [
        "",
        "## The trade-off as the level varies (share under-provisioned / replica-hours)",
        "",
        "| level | " + " | ".join(POLICIES[1:]) + " |",
        "|---|" + "---|" * (len(POLICIES) - 1),
    ]
    for lv, row in r.levels.items():
        cells = [f"{row[p].under_provisioned_share:.2%} / {row[p].replica_hours:.1f}" for p in POLICIES[1:]]
        lines.append(f"| {lv} | " + " | ".join(cells) + " |")
    reactive = r.policies["reactive"]
    lines += [
        "",
        f"reactive: {reactive.under_provisioned_share:.2%} / {reactive.replica_hours:.1f}.",
        "",
    ]
    if figures:
        lines += ["![demand and serving capacity](capacity.png)", "", "![trade-off](tradeoff.png)", ""]
    return "\n".join(lines)
