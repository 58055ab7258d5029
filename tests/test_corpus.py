"""The pretraining corpus of real series (``forecaster.corpus``): a series is split at its NaN runs and no window
crosses one, the families are balanced, pretraining without the corpus says what is missing, and pretraining reads
only the first 80 % of each shared trace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from promcast.forecaster.corpus import coarse, load_corpus
from promcast.forecaster.pretrain import build_corpus, pretrain

from .conftest import shared_data

T = 3000
# Each test series: its finite runs, [first, end), NaN everywhere else. The loader keeps a series' longest run of
# at least 2 x (300 + 12) = 624 points; the third series has none, the fourth is flat.
RUNS = {
    0: [(0, 700), (705, 1900), (1901, 2800)],  # a 5-point and a 1-point NaN run, a NaN tail
    1: [(100, 800), (1000, 3000)],  # a NaN head, a 200-point NaN run
    2: [(0, 600), (601, 1200), (1300, 1900)],  # no run long enough
    3: [(0, 3000)],  # flat
}
KEPT = {0: (705, 1900), 1: (1000, 3000)}  # the longest run of each series the loader keeps


def _write(path: Path, runs: dict[int, list[tuple[int, int]]], flat: tuple[int, ...] = (3,)) -> np.ndarray:
    """An npz in the corpus's format: series r is 10,000 r + c + c² / 10,000 at column c inside its runs, NaN
    outside them: a curve, so that a window's z-scaled values still tell its columns."""
    values = np.full((len(runs), T), np.nan, dtype=np.float32)
    for r, spans in runs.items():
        for first, end in spans:
            c = np.arange(first, end, dtype=np.float64)
            values[r, first:end] = 5.0 if r in flat else 10_000 * r + c + c**2 / 10_000
    ids = np.array([f"s{r}" for r in runs])
    np.savez_compressed(path, values=values, ids=ids, start=np.int64(1_700_000_000), step=np.int64(300))
    return values


def _columns(z: np.ndarray, raw: np.ndarray) -> tuple[int, np.ndarray] | None:
    """The series and the columns a z-scaled window (inputs then targets) was cut from, undoing the z-scale of each
    kept segment's training rows (its first 87.5 %) and finding the values in the whole row ``raw`` written; None for
    a window that matches no kept segment (a synthetic series' window)."""
    for r, (first, end) in KEPT.items():
        train = raw[r, first : first + int((end - first) * 0.875)].astype(np.float64)
        values = z * train.std() + train.mean()
        c = np.arange(T, dtype=np.float64)
        curve = 10_000 * r + c + c**2 / 10_000  # the row without its NaN runs: sorted
        # its points lie at least 1 apart: the first at or above a value less 0.5 is the value's own, if any
        cols = np.clip(np.searchsorted(curve, values - 0.5), 0, T - 1)
        if np.allclose(curve[cols], values, atol=1e-2) and (np.diff(cols) == 1).all():
            return r, cols
    return None


def test_the_loader_splits_a_series_at_its_nan_runs_and_never_cuts_a_window_across_one(tmp_path: Path) -> None:
    raw = _write(tmp_path / "nab_extra_5m.npz", RUNS)
    parts = load_corpus(tmp_path, 300, 288, 12)
    assert [p.name for p, _ in parts] == [f"nab_extra_5m/s{r}[{a}:{b}]" for r, (a, b) in KEPT.items()]
    for (part, values), (r, (first, end)) in zip(parts, KEPT.items(), strict=True):
        np.testing.assert_array_equal(values, raw[r, first:end])
        assert part.source == f"nab_extra_5m.npz row {r}"
    # Windows as pretraining cuts them; the synthetic series' windows match no segment.
    (tx, ty), (vx, vy), _ = build_corpus(None, 300, 288, 12, 0, mixed=0, mixups=0, corpus=tmp_path)
    for x, y, validation in ((tx, ty, False), (vx, vy, True)):
        assert np.isfinite(x).all()
        assert np.isfinite(y).all()
        found = {0: 0, 1: 0}
        for window in np.concatenate([x, y], axis=1):
            hit = _columns(window, raw)
            if hit is None:
                continue
            r, cols = hit
            first, end = KEPT[r]
            train_end = first + int((end - first) * 0.875)
            assert first <= cols[0]
            assert cols[-1] < end
            targets = cols[-12:]
            assert (targets >= train_end).all() if validation else (targets < train_end).all()
            found[r] += 1
        # Every training window a segment holds (the family's quota is far larger): targets from column 288 + 12 - 1
        # of its rows to the last training row; validation windows: a quarter as many, at most all it holds.
        trains = {r: int((end - first) * 0.875) for r, (first, end) in KEPT.items()}
        held = {r: t - 288 - 12 + 1 for r, t in trains.items()}
        vals = {r: min(held[r] // 4, end - first - trains[r] - 12 + 1) for r, (first, end) in KEPT.items()}
        assert found == (vals if validation else held)


def test_every_family_gives_the_same_number_of_windows(tmp_path: Path) -> None:
    _write(tmp_path / "nab_extra_5m.npz", {0: [(0, T)]}, flat=())
    _write(tmp_path / "google2011_job_cpu_pct_5m.npz", {r: [(0, T)] for r in range(4)}, flat=())
    # 3,000 points at 5 minutes are too few for a segment at 30 minutes or 1 hour: a third of each family's
    # windows, at 5 minutes, is all it gives.
    parts = load_corpus(tmp_path, 300, 288, 12, family_windows=1200)
    windows = {f: sum(p.windows for p, _ in parts if p.name.startswith(f)) for f in ("nab_", "google")}
    assert windows == {"nab_": 400, "google": 400}  # one NAB series against four Google ones: 400 each
    assert sorted(p.windows for p, _ in parts) == [100, 100, 100, 100, 400]


def test_a_coarser_step_is_the_mean_of_the_samples_each_block_holds() -> None:
    values = np.array([[1, 2, np.nan, 4, np.nan, np.nan, 7, 8, 9]], dtype=np.float32)
    np.testing.assert_array_equal(coarse(values, 2), [[1.5, 4.0, np.nan, 7.5]])  # the 9th point: no whole block


def test_pretraining_without_the_corpus_says_what_is_missing_and_exits_2(tmp_path: Path) -> None:
    gone = tmp_path / "no-corpus"
    cmd = [sys.executable, "-m", "promcast.forecaster.pretrain", "--corpus", str(gone), "--out", str(tmp_path / "o")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert str(gone) in done.stderr
    assert "bitbrains_rnd_cpu_pct_5m.npz" in done.stderr
    assert "nab_extra_5m.npz" in done.stderr
    assert not (tmp_path / "o").exists()
    # the shipped recipe learns from the corpus: leaving it out takes --no-corpus, said on purpose
    silent = subprocess.run([*cmd[:3], "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert silent.returncode == 2, silent.stderr
    assert "--corpus" in silent.stderr
    assert not (tmp_path / "o").exists()


def test_pretraining_reads_only_the_first_80_percent_of_each_trace(tmp_path: Path) -> None:
    name = "nab_ec2_cpu_24ae8d_5m"  # 4,032 points at 5 minutes, no gap
    trace = shared_data(f"{name}.csv")  # skips, saying why, without ../shared/data
    frame = pd.read_csv(trace)
    n = len(frame)
    # The last 20 % poisoned: a window holding any of it would reach 1e9 even after z-scaling.
    frame.iloc[int(n * 0.7) + int(n * 0.1) :, 1] = 1e12
    data = tmp_path / "data"
    data.mkdir()
    frame.to_csv(data / f"{name}.csv", index=False)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write(corpus / "nab_extra_5m.npz", RUNS)
    (tx, ty), (vx, vy), _ = build_corpus(data, 300, 288, 12, 0, traces=[name], mixed=0, mixups=0, corpus=corpus)
    assert max(np.abs(a).max() for a in (tx, ty, vx, vy)) < 1e3
    out = tmp_path / "out"
    pretrain(data, out, epochs=1, traces=[name], mixed=0, mixups=0, corpus=corpus, hidden=8)
    meta = json.loads((out / "artifact" / "meta.json").read_text())
    assert meta["model"]["hparams"]["hidden"] == 8  # --hidden sizes the network; the card's command says so
    assert "--corpus CORPUS --out forecaster/pretrained --seed 0 --hidden 8`" in (out / "MODEL_CARD.md").read_text()
    record = json.loads((out / "corpus.json").read_text())
    (part,) = [p for p in record if p["source"] == f"../shared/data/{name}.csv"]
    assert (part["points"], part["rows"], part["train_end"]) == (n, int(n * 0.7) + int(n * 0.1), int(n * 0.7))
    segments = sorted(p["name"] for p in record if p["source"].startswith("nab_extra_5m.npz row "))
    assert segments == sorted(f"nab_extra_5m/s{r}[{a}:{b}]" for r, (a, b) in KEPT.items())


def test_the_unseen_benchmark_reads_the_corpus_beside_its_data_folder_by_default(tmp_path: Path) -> None:
    """benchmarks.pretrained_unseen measures the shipped recipe: with the corpus, from ``corpus`` beside ``--data``."""
    (tmp_path / "data").mkdir()
    cmd = [sys.executable, "-m", "benchmarks.pretrained_unseen", "--data", str(tmp_path / "data")]
    cmd_dir = Path(__file__).parents[1]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cmd_dir)
    assert done.returncode == 2, done.stderr
    assert f"{tmp_path / 'corpus'} lacks" in done.stderr
    both = subprocess.run([*cmd, "--corpus", str(tmp_path), "--no-corpus"], capture_output=True, text=True, cwd=cmd_dir)
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
