"""The model store: per target, versioned artifact folders and a ``current`` link switched atomically."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promcast.daemon.logs import get_logger
from promcast.forecaster.artifact import fsync_dir

if TYPE_CHECKING:
    from promcast.forecaster import Forecaster

__all__ = ["DECISION_FILE", "PIN_FILE", "ModelStore", "StoreError", "holdout_maes", "log_pin"]

log = get_logger("promcast.store")

DECISION_FILE = "decision.json"  # the retrain job's report, inside the version it promoted
PIN_FILE = "pin.json"  # the operator's choice of version: no retrain promotes over it while it is there
_LOCKS = (".lock", ".pin.lock")  # a retrain run's, and the pin's: never removed as leftovers
_STALE_SECONDS = 600.0  # leftovers of a killed writer (dot-names) older than this are removed by prune


class StoreError(Exception):
    """The store has no such version, no current version, or a ``current`` that is not a readable link."""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``path`` whole or not at all: a temporary sibling, fsync, rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class ModelStore:
    """``root/<target>/versions/<version>/`` holds artifacts; ``root/<target>/current`` links to one.

    Every change is a rename: a version folder appears whole, ``current`` moves in one step, and a pruned
    version is renamed to a dot-name before it is deleted. Dot-names are invisible to readers, so a writer
    killed at any point leaves a store whose ``current`` loads.
    """

    def __init__(self, root: Path, target: str, keep: int = 5) -> None:
        self.dir = Path(root) / target
        self.versions_dir = self.dir / "versions"
        self.decisions_dir = self.dir / "decisions"
        self.keep = keep

    @property
    def current_link(self) -> Path:
        return self.dir / "current"

    def current_version(self) -> str | None:
        """The version ``current`` names; None only when there is no ``current`` at all.

        A ``current`` that exists but is not a readable symlink (a folder, a file, an I/O error) raises
        StoreError with the cause: it is not "no model", so nothing may train or promote over it unseen."""
        try:
            return Path(os.readlink(self.current_link)).name
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{self.current_link} is not a readable symlink: {exc.strerror or exc}") from exc

    def has_current(self) -> bool:
        """Whether anything is at ``current`` (a link, dangling or not, or something broken in its place)."""
        return os.path.lexists(self.current_link)

    def current_path(self) -> Path:
        version = self.current_version()
        if version is None:
            raise StoreError(f"{self.dir}: no current model")
        return self.versions_dir / version

    def versions(self) -> list[str]:
        """Version names, oldest first (names are UTC timestamps)."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def new_version(self) -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")

    def save(self, forecaster: Forecaster, version: str | None = None, decision: dict[str, Any] | None = None) -> str:
        """Write an artifact, and its decision report if given, as a new version (not yet current)."""
        version = version or self.new_version()
        final = self.versions_dir / version
        if final.exists():
            raise StoreError(f"{self.dir}: version {version!r} exists already")
        staging = self.versions_dir / f".incoming-{version}"
        forecaster.save(staging)  # itself written aside and renamed
        if decision is not None:
            _write_json(staging / DECISION_FILE, {**decision, "version": version})
        os.replace(staging, final)
        fsync_dir(self.versions_dir)
        return version

    def install(self, artifact: Path) -> str:
        """Copy an artifact folder (the pretrained model's) in as a new version and make it current.

        The copy is staged aside and renamed, as ``save`` writes; the store then serves, scores and rolls back to
        it like any version, and a retrain's promotion has it as its champion."""
        version = self.new_version()
        staging = self.versions_dir / f".incoming-{version}"
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(artifact, staging)
        for p in staging.iterdir():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(staging, self.versions_dir / version)
        fsync_dir(self.versions_dir)
        self.promote(version)
        return version

    def promote(self, version: str) -> None:
        """Point ``current`` at ``version`` with one atomic rename of a fresh symlink."""
        self._check_promotable(version)
        tmp = self.dir / f".current-{os.getpid()}-{version}"
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(Path("versions") / version, tmp)
        os.replace(tmp, self.current_link)
        fsync_dir(self.dir)

    def _check_promotable(self, version: str) -> None:
        if not (self.versions_dir / version).is_dir():
            raise StoreError(f"{self.dir}: no version {version!r}; have {self.versions()}")
        if self.current_link.is_dir() and not self.current_link.is_symlink():
            raise StoreError(f"{self.current_link} is a folder, not a link; move it away to promote {version}")

    def publish(
        self, forecaster: Forecaster, version: str | None = None, decision: dict[str, Any] | None = None
    ) -> str:
        version = self.save(forecaster, version, decision)
        self.promote(version)
        self.prune()
        return version

    def previous_version(self) -> str | None:
        """The newest version older than the current one."""
        older = self.older_versions(self.current_version())
        return older[0] if older else None

    def older_versions(self, than: str | None) -> list[str]:
        """Versions older than ``than``, newest first (every version when ``than`` is None): fallback order.

        Newer versions are never candidates: a version newer than ``current`` was rolled back from."""
        return [v for v in reversed(self.versions()) if than is None or v < than]

    def prune(self) -> list[str]:
        """Remove the oldest versions beyond ``keep``, never the current one, and stale leftovers."""
        current = self.current_version()
        old = [v for v in self.versions()[: -self.keep] if v != current] if self.keep else []
        for v in old:
            trash = self.versions_dir / f".trash-{v}"
            os.replace(self.versions_dir / v, trash)
            shutil.rmtree(trash, ignore_errors=True)
        self._remove_stale()
        return old

    def _remove_stale(self) -> None:
        cutoff = time.time() - _STALE_SECONDS
        for folder in (self.dir, self.versions_dir, self.decisions_dir):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if p.name.startswith(".") and p.name not in _LOCKS and p.lstat().st_mtime < cutoff:
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
        reports = self.decisions()
        for name in reports[: -4 * self.keep]:
            (self.decisions_dir / f"{name}.json").unlink(missing_ok=True)

    # ---- the operator's pin ----------------------------------------------------------------------
    @contextmanager
    def pin_lock(self) -> Iterator[None]:
        """Held while the pin is read and ``current`` moved by it: a rollback lands wholly before a retrain's
        promotion or wholly after it. Held for a few file operations, never across a training."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".pin.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def pin(self) -> dict[str, Any] | None:
        """The operator's pin (``pin.json``: version, by, at, previous), or None when there is none. A pin file
        that cannot be read still holds, with version None: an operator's choice is never overridden unseen."""
        path = self.dir / PIN_FILE
        if not os.path.lexists(path):
            return None
        data = _read_json(path)
        if data is None or not isinstance(data.get("version"), str):
            return {"version": None, "error": f"{path} is not a readable pin; promcast models unpin removes it"}
        return data

    def pin_to(self, version: str, by: str, previous: str | None) -> dict[str, Any]:
        """Record the operator's choice of ``version``, then point ``current`` at it. The pin is written first: a
        writer killed in between leaves a pin that holds, never a rollback that the next retrain undoes."""
        self._check_promotable(version)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        record = {"version": version, "by": by, "at": at, "previous": previous}
        with self.pin_lock():
            _write_json(self.dir / PIN_FILE, record)
            self.promote(version)
        return record

    def unpin(self) -> dict[str, Any] | None:
        """Remove the pin, leaving ``current`` where it is; the pin there was, or None."""
        if self.pin() is None:  # nothing to release: create no folder for a lock
            return None
        with self.pin_lock():
            pin = self.pin()
            if pin is not None:
                (self.dir / PIN_FILE).unlink()
                fsync_dir(self.dir)
        return pin

    # ---- decision reports ----------------------------------------------------------------------
    def write_decision(self, run: str, report: dict[str, Any]) -> Path:
        """Record one retrain run's report under ``decisions/<run>.json`` (promoted or kept)."""
        self.decisions_dir.mkdir(parents=True, exist_ok=True)
        path = self.decisions_dir / f"{run}.json"
        _write_json(path, report)
        return path

    def decisions(self) -> list[str]:
        if not self.decisions_dir.is_dir():
            return []
        return sorted(p.stem for p in self.decisions_dir.glob("*.json") if not p.name.startswith("."))

    def decision(self, run: str) -> dict[str, Any] | None:
        """The report of retrain run ``run`` (``decisions/<run>.json``); None when unreadable."""
        return _read_json(self.decisions_dir / f"{run}.json")

    def latest_decision(self) -> dict[str, Any] | None:
        runs = self.decisions()
        return self.decision(runs[-1]) if runs else None

    def decision_of(self, version: str) -> dict[str, Any] | None:
        """The report of the run that promoted ``version``; None for a version trained another way."""
        return _read_json(self.versions_dir / version / DECISION_FILE)


def holdout_maes(store: ModelStore, served: str | None) -> dict[str, float]:
    """The serving champion's and the last challenger's holdout MAE, read from the decision reports."""
    out = {"champion": float("nan"), "challenger": float("nan")}
    with suppress(KeyError, TypeError, ValueError, AttributeError):  # a hand-edited report: gauges stay unknown
        _read_maes(store, served, out)
    return out


def _read_maes(store: ModelStore, served: str | None, out: dict[str, float]) -> None:
    latest = store.latest_decision() or {}
    scores = latest.get("scores") or {}
    if scores.get("challenger"):
        out["challenger"] = float(scores["challenger"]["mae"])
    if served is not None and latest.get("version") == served:
        out["champion"] = out["challenger"]
    elif served is not None and latest.get("champion_version") == served and scores.get("champion"):
        out["champion"] = float(scores["champion"]["mae"])  # scored on the latest holdout
    elif served is not None:
        own = (store.decision_of(served) or {}).get("scores") or {}
        if own.get("challenger"):
            out["champion"] = float(own["challenger"]["mae"])  # scored when it was promoted


def log_pin(target: str, pin: dict[str, Any], skipped: str) -> None:
    """The one line that says an operator's pin held, and what it held back."""
    log.info("pin_holds", target=target, pinned=pin["version"], by=pin.get("by"), since=pin.get("at"), skipped=skipped)
