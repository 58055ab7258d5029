"""Makes an interpreter an install without torch (``PYTHONPATH=tests/support/notorch``), children included: the
environment carries the path, and every Python process imports ``sitecustomize`` at start-up.

``import torch`` then fails as it does where torch was never installed (ModuleNotFoundError, name "torch"), and
``importlib.util.find_spec("torch")`` raises it too."""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoTorch())
