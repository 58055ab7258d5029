"""Comments and docstrings say what and why, not history: no issue numbers, notes references, dates of trials,
commit hashes, scratch scripts or stories of a build machine (those live in git history). The product, its tests and
its benchmarks are all read."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("daemon", "forecaster", "tests", "benchmarks")
CHECKERS = {"test_code_comments.py", "test_docs.py"}  # their examples of bad prose are the point
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
HISTORY = {
    "an issue number": re.compile(r"\b[Ii]ssues? #?\d+"),
    "a notes reference": re.compile(r"week3_notes|\bsection \d+\b"),
    "a dated claim": re.compile(rf"\b\d{{1,2}} ({MONTHS}) \d{{4}}\b|\b({MONTHS}) \d{{4}}\b"),
    "a commit hash": re.compile(r"\b(commit|at|before|after|since) [0-9a-f]{7,40}\b"),
    "a scratch script": re.compile(r"\bscratch (script|copy|trial)"),
    "a build-machine story": re.compile(r"\b(2-core|two-core) (build )?machine|\bbuild machine\b"),
}


def prose(source: str) -> list[tuple[int, str]]:
    """The comments and string literals of a Python file, with their line numbers."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            out.append((tok.start[0], tok.string))
    return out


def findings(source: str) -> list[str]:
    return [
        f"{line}: {what}: {text.strip()[:100]}"
        for line, text in prose(source)
        for what, rx in HISTORY.items()
        if rx.search(text)
    ]


@pytest.mark.parametrize("package", PRODUCT)
def test_product_comments_hold_no_history(package: str) -> None:
    bad = {
        str(path.relative_to(ROOT)): hits
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name not in CHECKERS and (hits := findings(path.read_text()))
    }
    assert not bad, bad


def test_the_check_finds_each_kind_of_history() -> None:
    source = '''
# as issue 19 asks
x = 1  # measured on 6 December 2026
def f():
    """The median expert (week3_notes.md, section 10); slower at commit 92116bd."""
# tried in a scratch script on the 2-core build machine
'''
    kinds = {hit.split(": ")[1] for hit in findings(source)}
    assert kinds == set(HISTORY)


def test_the_check_leaves_plain_prose_alone() -> None:
    assert findings('# the section of the window that repeats\nx = "2026-01-01"  # a start date\n') == []
