"""Evaluation and model comparison: the rolling-origin protocol, measures, plots, report and benchmark.

Import the submodules you need; nothing heavy (matplotlib, the traces) is loaded at import time.
"""

from .evaluate import EvalConfig, Evaluation, evaluate
from .protocol import Protocol, Task, error_metrics, make_task, score

__all__ = ["EvalConfig", "Evaluation", "Protocol", "Task", "error_metrics", "evaluate", "make_task", "score"]
