"""Series that ``drop_labels`` summed together: a gauge per target, and one log line each time the count changes.

Dropping a churning label (``pod``) is meant to join one series across restarts; when the labels left over are
not unique, unrelated series are summed too, and the forecast is of their sum. The source counts what each read
merged (``MergeStats``); after each read the job calls ``report_merges``, which sets the gauge every cycle and
logs only when the count differs from the one logged last, so a steady collision is one line, not one a cycle.
"""

from __future__ import annotations

from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import get_logger
from promcast.daemon.sources import Source
from promcast.daemon.sources.prometheus import MergeStats

__all__ = ["report_merges"]

log = get_logger("promcast.merges")


def report_merges(source: Source, target: str, metrics: Metrics) -> None:
    """Set ``promcast_merged_series{target}`` from the source's last read of ``target``; log a change once."""
    stats = getattr(source, "merges", None)
    if not isinstance(stats, MergeStats):
        return  # a source that never merges series (the demo's, a test's)
    metrics.merged_series.labels(target).set(stats.last(target).merged)
    change = stats.take_change(target)
    if change is None:
        return
    if change.merged == 0:
        log.info("series_merged", target=target, merged=0)
        return
    log.warning(
        "series_merged",
        target=target,
        merged=change.merged,
        example=dict(change.example or ()),
        members=change.members,
        hint="these series were summed once drop_labels were removed; keep a label that tells them apart",
    )
