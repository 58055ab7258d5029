"""A serving install without torch beside one with the training extra: install size, time to the first forecasts
from an empty model store, and resident memory.

    .venv/bin/python -m benchmarks.serving_install [SERIES [HOURS]] [--reads N]   # default 100 series of a week

Install size: the files (RECORD) of every distribution in the closure of promcast's requirements, without and with
the ``train`` extra, as this virtual environment holds them.

Then, for each mode, SERIES series of HOURS hours at 1 minute are backfilled into a local Prometheus and a real
`promcast run` starts with an empty model store:
- ``serving, no torch``: torch blocked from import in the daemon and its children (tests/support/notorch, whose
  sitecustomize makes ``import torch`` fail as in an install that never had it): the pretrained model serves;
- ``with torch``: the pretrained model serves at once and the target's own model trains in a child behind it;
- ``train first``: ``first_model: train``, the behaviour before the pretrained model: no forecast until it trained.
Each prints the seconds to forecasts for every series, the daemon's VmRSS (median of ``--reads`` reads, default 10,
1 s apart, once they are out) and VmHWM, and for the modes that train, the training child's peak (VmHWM, read every
0.2 s) and what the gate decided. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from benchmarks.daemon_bench import FROZEN, _backfill, _forecasts, _vm, daemon_process
from tests.support.localprom import PrometheusServer, ensure_prometheus_installed

NOTORCH = Path(__file__).resolve().parents[1] / "tests" / "support" / "notorch"
MIB = 1024 * 1024


def _closure(name: str, extras: tuple[str, ...] = ()) -> set[str]:
    """The distributions ``name`` (with ``extras``) needs, itself included, as installed here."""
    seen: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(name, extras)]
    while todo:
        dist_name, want = todo.pop()
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            continue
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen and not want:
            continue
        seen.add(key)
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in want] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, tuple(req.extras)))
    return seen


def _size(names: set[str]) -> int:
    total = 0
    for name in names:
        for f in md.distribution(name).files or []:
            path = Path(str(f.locate()))
            if path.is_file():
                total += path.stat().st_size
    return total


def install_sizes() -> tuple[float, float, list[str]]:
    """MiB installed without and with the train extra, and the distributions the extra adds."""
    serving, training = _closure("promcast"), _closure("promcast", ("train",))
    return _size(serving) / MIB, _size(training) / MIB, sorted(training - serving)


def _children_peak(pid: int) -> int:
    """The largest VmHWM among ``pid``'s children and theirs, in KiB (0 without children). A child belongs to
    the thread that started it (the retrain's), so every thread's list is read."""
    peak, kids = 0, []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += (task / "children").read_text().split()
        except OSError:
            continue
    for kid in map(int, kids):
        try:
            peak = max(peak, _vm(kid, "VmHWM"), _children_peak(kid))
        except OSError:
            continue
    return peak


def _events(tmp: Path, name: str) -> list[dict[str, Any]]:
    out = []
    for line in (tmp / "daemon.log").read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("event") == name:
            out.append(row)
    return out


def run_mode(mode: str, series: int, hours: int, limit: float = 900.0, reads: int = 10) -> dict[str, Any]:
    target: dict[str, Any] = {
        "name": "bench", "query": "bench_load", "step_seconds": 60, "history": f"PT{hours}H", **FROZEN,
    }  # fmt: skip
    env = dict(os.environ)
    if mode == "serving, no torch":
        env["PYTHONPATH"] = str(NOTORCH)
    if mode == "train first":
        target["first_model"] = "train"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _backfill(tmp, series, hours)
        with (
            PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb") as prom,
            daemon_process(tmp, prom.url, target, env=env, log_level="info") as (proc, url),
        ):
            t0, child = time.monotonic(), 0
            while not _forecasts(url, series):  # as daemon_bench.wait_for_forecasts, watching the training child
                if proc.poll() is not None or time.monotonic() - t0 > limit:
                    raise RuntimeError(f"no forecasts (exit {proc.poll()}): {(tmp / 'daemon.log').read_text()[-2000:]}")
                child = max(child, _children_peak(proc.pid))
                time.sleep(0.2)
            seconds = time.monotonic() - t0
            rss = []
            for _ in range(reads):
                rss.append(_vm(proc.pid, "VmRSS"))
                child = max(child, _children_peak(proc.pid))
                time.sleep(1.0)
            out: dict[str, Any] = {"first_forecasts_s": seconds, "rss_mib": statistics.median(rss) / 1024}
            out["hwm_mib"] = _vm(proc.pid, "VmHWM") / 1024
            if mode == "with torch":  # the own model behind the pretrained one: wait for the gate's decision
                while not _events(tmp, "retrain_process") and time.monotonic() - t0 < limit:
                    child = max(child, _children_peak(proc.pid))
                    time.sleep(0.2)
                (done,) = _events(tmp, "retrain_process") or [{}]
                out["own_model_s"] = done.get("seconds")
                out["gate"] = str(done.get("result", ""))[:160]
            if mode == "serving, no torch":
                out["log"] = [row["reason"][:80] for row in _events(tmp, "own_model_unavailable")]
            out["child_hwm_mib"] = child / 1024
            return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serving_install", description=__doc__.splitlines()[0])
    p.add_argument("series", nargs="?", type=int, default=100, help="series backfilled (default 100)")
    p.add_argument("hours", nargs="?", type=int, default=168, help="hours of each, at 1 min (default a week)")
    p.add_argument("--reads", type=int, default=10, help="VmRSS reads, 1 s apart, once the forecasts are out")
    args = p.parse_args(argv)
    series, hours = args.series, args.hours
    ensure_prometheus_installed()
    serving, training, extra = install_sizes()
    print(f"install: serving {serving:.0f} MiB, with the train extra {training:.0f} MiB")
    print(f"  the extra adds: {', '.join(extra)}")
    print(f"{series} series of {hours} h at 1 min, an empty model store, one `promcast run` per mode:")
    for mode in ("serving, no torch", "with torch", "train first"):
        r = run_mode(mode, series, hours, reads=args.reads)
        line = (
            f"  {mode:18s} first forecasts {r['first_forecasts_s']:6.1f} s; daemon VmRSS {r['rss_mib']:4.0f} MiB, "
            f"VmHWM {r['hwm_mib']:4.0f} MiB; training child peak {r['child_hwm_mib']:4.0f} MiB"
        )
        print(line)
        for key in ("own_model_s", "gate", "log"):
            if key in r:
                print(f"      {key}: {r[key]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
