"""The model store: per target, versioned artifact folders and a ``current`` link switched atomically."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from forecaster import Forecaster

__all__ = ["ModelStore", "StoreError"]


class StoreError(Exception):
    """The store has no such version, or no current version."""


class ModelStore:
    """``root/<target>/versions/<version>/`` holds artifacts; ``root/<target>/current`` links to one."""

    def __init__(self, root: Path, target: str, keep: int = 5) -> None:
        self.dir = Path(root) / target
        self.versions_dir = self.dir / "versions"
        self.keep = keep

    @property
    def current_link(self) -> Path:
        return self.dir / "current"

    def current_version(self) -> str | None:
        try:
            return Path(os.readlink(self.current_link)).name
        except OSError:
            return None

    def current_path(self) -> Path:
        version = self.current_version()
        if version is None:
            raise StoreError(f"{self.dir}: no current model")
        return self.versions_dir / version

    def versions(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def new_version(self) -> str:
        return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")

    def save(self, forecaster: Forecaster, version: str | None = None) -> str:
        """Write an artifact as a new version (not yet current); returns its name."""
        version = version or self.new_version()
        forecaster.save(self.versions_dir / version)
        return version

    def promote(self, version: str) -> None:
        """Point ``current`` at ``version`` with one atomic rename of a fresh symlink."""
        if not (self.versions_dir / version).is_dir():
            raise StoreError(f"{self.dir}: no version {version!r}; have {self.versions()}")
        tmp = self.dir / f".current-{os.getpid()}-{version}"
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(Path("versions") / version, tmp)
        os.replace(tmp, self.current_link)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def publish(self, forecaster: Forecaster) -> str:
        version = self.save(forecaster)
        self.promote(version)
        self.prune()
        return version

    def prune(self) -> list[str]:
        """Remove the oldest versions beyond ``keep``, never the current one."""
        current = self.current_version()
        old = [v for v in self.versions()[: -self.keep] if v != current] if self.keep else []
        for v in old:
            shutil.rmtree(self.versions_dir / v, ignore_errors=True)
        return old
