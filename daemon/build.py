"""What this build of promcast is: its version, the git revision it came from, and the Python running it.

Read once, in main() or the Daemon, for `promcast --version` and `promcast_build_info`; never at import time.
"""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["BuildInfo", "build_info"]


@dataclass(frozen=True)
class BuildInfo:
    version: str
    revision: str  # the short git commit of a checkout; "unknown" for an installed copy without git
    python: str

    def line(self) -> str:
        return f"promcast {self.version} (revision {self.revision}, python {self.python})"


def _revision(root: Path) -> str:
    if not (root / ".git").exists():
        return "unknown"
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def build_info() -> BuildInfo:
    try:
        version = metadata.version("promcast")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return BuildInfo(version, _revision(Path(__file__).resolve().parents[1]), platform.python_version())
