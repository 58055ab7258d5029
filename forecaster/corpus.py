"""The real workload series of the corpus folder, as series for pretraining (``forecaster.pretrain``).

Its README gives the format: one ``.npz`` per source and metric, ``values`` ``[series, T]`` on a grid of ``step``
seconds, NaN where the source has no sample. Each series is split at its NaN runs into finite segments; a segment
shorter than ``min_points``, or flat in its training rows, is left out, and of the rest the series gives its longest
(the first of equals). That segment is a series of its own: its windows are cut inside it, so no window crosses a
NaN run. A Bitbrains series holds a few dozen runs, many a few points long, and gives few windows (below): one
segment each keeps ``corpus.json`` to a line per series and step, and leaves every segment validation windows.

Resolutions: every file is at 5 minutes, but a target may be scraped or recorded every 30 minutes or every hour.
Each series is also read at each coarser step of ``RESOLUTIONS``: the mean of the samples each block of columns
holds (NaN only where a block holds none), split and chosen in the same way at that step.

Balance: Bitbrains alone holds three quarters of the series. Each family of ``FAMILIES`` (Bitbrains, Azure, Google,
NAB) gives the same number of training windows, ``FAMILY_WINDOWS``, a third at each resolution, shared equally by
the series with a segment at it (at most all the windows a segment holds). The windows are evenly spaced, so the
corpus is the same on every run.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np

__all__ = [
    "FAMILIES",
    "FAMILY_WINDOWS",
    "RESOLUTIONS",
    "SOURCES",
    "TRAIN_SHARE",
    "Part",
    "balance",
    "coarse",
    "finite_runs",
    "load_corpus",
    "missing",
    "read_segments",
]

# Each family's source, licence and the citation it asks for (the corpus folder's README, "Sources and licences").
FAMILIES = {
    "bitbrains": 'Bitbrains GWA-T-12 Rnd, three months of 2013 (Shen, van Beek and Iosup, "Statistical '
    'characterization of business-critical workloads hosted in cloud datacenters", CCGrid 2015: the Grid Workloads '
    "Archive asks for this citation); copy from JessieRayeBauer/Time-Series-Forecasting- (BSD-2-Clause); the archive "
    "states no licence of its own",
    "azure": 'Azure Public Dataset V1 (Cortez et al., "Resource Central", SOSP 2017), CC BY 4.0: data Microsoft\'s, '
    "as packaged in the R package carlonlv/DataCenterSim (code GPL-2)",
    "google": "Google cluster-data 2011 (Reiss, Wilkes and Hellerstein), CC BY 4.0; per-job sums from "
    'HiPro-IT/CPU-and-Memory-resource-usage-from-Google-Cluster-Data, whose authors ask to cite "Virtual Machine '
    'Consolidation with Multiple Usage Prediction for Energy-Efficient Cloud Data Centers" (IEEE Transactions on '
    "Services Computing)",
    "nab": "numenta/NAB (realTweets, realAWSCloudwatch), MIT",
}
# The corpus's files (without .npz), each with its family.
SOURCES = {
    "bitbrains_rnd_cpu_pct_5m": "bitbrains",
    "bitbrains_rnd_net_rx_kbps_5m": "bitbrains",
    "bitbrains_rnd_net_tx_kbps_5m": "bitbrains",
    "bitbrains_rnd_disk_write_kbps_5m": "bitbrains",
    "azure2017_vm_cpu_avg_5m": "azure",
    "azure2017_vm_cpu_max_5m": "azure",
    "google2011_job_cpu_pct_5m": "google",
    "google2011_job_mem_pct_5m": "google",
    "nab_extra_5m": "nab",
}
FAMILY_WINDOWS = 50_000  # training windows from each family, over all its resolutions
RESOLUTIONS = (1, 6, 12)  # columns averaged into one step: 5 minutes, 30 minutes, 1 hour
TRAIN_SHARE = 0.875  # of each segment's rows train; the rest validates (as for the synthetic series)
FLAT = 0.05  # the corpus's own rule for a flat series, applied to a segment's training rows


@dataclasses.dataclass(frozen=True)
class Part:
    """One series of the pretraining corpus: its name, where it comes from, and the rows of each use."""

    name: str
    source: str
    step_seconds: float
    points: int  # rows of the whole series (a trace regularised as the benchmark loads it; a corpus segment)
    rows: int  # rows of the series used at all (its first 80 % for a trace)
    train_end: int  # rows [0, train_end) train; [train_end, rows) validate
    windows: int = 4000  # at most this many training windows, and a quarter as many validation windows


def missing(corpus: Path) -> list[str]:
    """The files of ``SOURCES`` that ``corpus`` lacks."""
    return [f"{stem}.npz" for stem in SOURCES if not (corpus / f"{stem}.npz").is_file()]


def finite_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """``[first, end)`` of every run of finite values of a 1-D array, in order."""
    ok = np.concatenate([[False], np.isfinite(values), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(ok))  # alternately a run's first index and its end
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def coarse(values: np.ndarray, k: int) -> np.ndarray:
    """``values`` ``[series, T]`` at a k times coarser step: the mean of the finite samples of each block of ``k``
    columns (NaN where it holds none); a last block of fewer than ``k`` columns is left out."""
    blocks = values[:, : values.shape[1] // k * k].astype(np.float64).reshape(len(values), -1, k)
    count = np.isfinite(blocks).sum(axis=2)
    total = np.where(np.isfinite(blocks), blocks, 0.0).sum(axis=2)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def read_segments(corpus: Path, min_points: int) -> list[tuple[Part, np.ndarray]]:
    """The segment each series of the ``SOURCES`` files present in ``corpus`` gives at each of ``RESOLUTIONS``
    (the module's rule): its part (``windows`` 0 until ``balance``) and its values."""
    out: list[tuple[Part, np.ndarray]] = []
    for stem in SOURCES:
        path = corpus / f"{stem}.npz"
        if not path.is_file():
            continue
        with np.load(path) as npz:
            raw, ids, step = npz["values"], npz["ids"], float(npz["step"])
        for k in RESOLUTIONS:
            values = raw if k == 1 else coarse(raw, k)
            at = "" if k == 1 else f"@{k}x"  # a coarse series' columns are blocks of k of the file's
            out.extend(_longest(values, ids, stem, at, step * k, min_points))
    return out


def _longest(
    values: np.ndarray, ids: np.ndarray, stem: str, at: str, step: float, min_points: int
) -> list[tuple[Part, np.ndarray]]:
    """Each row's longest finite segment of at least ``min_points``, not flat in its training rows."""
    out: list[tuple[Part, np.ndarray]] = []
    for row, series_id in enumerate(ids):
        kept = [
            (first, end)
            for first, end in finite_runs(values[row])
            if end - first >= min_points
            and float(values[row, first : first + int((end - first) * TRAIN_SHARE)].std()) >= FLAT
        ]
        if not kept:
            continue
        first, end = max(kept, key=lambda r: r[1] - r[0])  # max keeps the first of equals
        n = end - first
        name = f"{stem}/{series_id}{at}[{first}:{end}]"
        source = f"{stem}.npz row {row}" + (f", the mean of each {at[1:-1]} columns" if at else "")
        part = Part(name, source, step, n, n, int(n * TRAIN_SHARE), 0)
        out.append((part, values[row, first:end].astype(np.float64)))
    return out


def balance(
    segments: list[tuple[Part, np.ndarray]], window: int, horizon: int, family_windows: int = FAMILY_WINDOWS
) -> list[tuple[Part, np.ndarray]]:
    """The segments with their share of training windows (``Part.windows``), by the module's rule."""
    group = [(SOURCES[part.name.split("/")[0]], part.step_seconds) for part, _ in segments]
    count = Counter(group)
    share = family_windows // len(RESOLUTIONS)
    out = []
    for (part, values), g in zip(segments, group, strict=True):
        held = part.train_end - window - horizon + 1
        out.append((dataclasses.replace(part, windows=min(share // count[g], held)), values))
    return out


def load_corpus(
    corpus: Path, input_length: int, window: int, horizon: int, family_windows: int = FAMILY_WINDOWS
) -> list[tuple[Part, np.ndarray]]:
    """The balanced segments of ``corpus``, each at least twice a validation window's span long (its input and
    horizon), so that both its training and its validation rows hold windows."""
    segments = read_segments(corpus, 2 * (input_length + horizon))
    return balance(segments, window, horizon, family_windows)
