"""The progress of a long command, on stderr so that stdout keeps its result: a tqdm bar on a terminal; off one (a
pipe, a log file, a CI job) one line per stage, which a bar's carriage returns would garble there.

Nothing here imports torch: the daemon's commands report their stages through it too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType

from tqdm import tqdm

__all__ = ["Emit", "Stage", "Stages", "quiet", "stderr_lines"]

Stage = Callable[[str], None]  # told what begins: "fitting mlp seed 1 of 3", "writing report"
# Off a terminal, what reports one stage: (its number from 1, the number of stages, what it does).
Emit = Callable[[int, int, str], None]


def quiet(what: str) -> None:
    """A ``Stage`` that reports nothing: the default of a function that a command may ask for its stages."""


def stderr_lines(prefix: str) -> Emit:
    """A plain line a stage on stderr, ``PREFIX [3/9] fitting mlp seed 1 of 1``, flushed as it is written."""

    def emit(number: int, total: int, what: str) -> None:
        print(f"{prefix} [{number}/{total}] {what}", file=sys.stderr, flush=True)

    return emit


class Stages:
    """``total`` stages of work, each begun by ``stage(what)``: on a terminal (``terminal``, by default whether
    stderr is one) a bar on stderr that counts the stages done and names the current one; off one, ``emit`` once
    per stage and no bar."""

    def __init__(self, total: int, desc: str, emit: Emit, terminal: bool | None = None) -> None:
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.total, self._emit, self._begun = total, emit, 0
        self._bar = tqdm(total=total, desc=desc, unit="stage", file=sys.stderr, disable=not self.terminal)

    def stage(self, what: str) -> None:
        """The previous stage is done; ``what`` begins."""
        self._begun += 1
        if not self.terminal:
            self._emit(self._begun, self.total, what)
            return
        if self._begun > 1:
            self._bar.update(1)
        self._bar.set_postfix_str(what)  # drawn now: a stage may last minutes

    def close(self) -> None:
        if self._begun:
            self._bar.update(1)
        self._bar.close()

    def __enter__(self) -> Stages:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:  # a failed command leaves the bar where it stopped, its error below it
            self._bar.close()
