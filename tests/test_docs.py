"""The user-facing pages read in ten minutes: short sentences, tables that render, links that resolve, no history.

The pages are README.md, week3_notes.md, CHANGELOG.md and every page under docs/. Each rule is a function that
returns its findings for one page's text; each is first shown to flag a small bad page and to pass a good one,
then run over the real pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_PAGE = "docs/benchmarks.md"  # the one page that may name the machine and the date of a measurement
MAX_MEAN_WORDS = 20.0
MAX_LINES = {"README.md": 150, "week3_notes.md": 200}
QUICK_START = ["./scripts/demo", "./scripts/test"]


def pages() -> list[Path]:
    top = [ROOT / name for name in ("README.md", "week3_notes.md", "CHANGELOG.md")]
    return top + sorted((ROOT / "docs").rglob("*.md"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- what a page must not say -----------------------------------------------------------------------------------

ISSUE = re.compile(r"\b(?:issues?|PR|pull request)\s*#?\d+|(?<![\w&])#\d+\b", re.I)
# A hexadecimal word of 7 to 40 characters with a digit and a letter: how a commit is named.
COMMIT = re.compile(r"(?<![\w.\-/])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}(?![\w\-])")
SHARED = re.compile(r"\.\./shared")
TRACKER = re.compile(r"issue tracker|\bsessions?\b", re.I)
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
ANECDOTE = re.compile(
    r"build machine|development machine|our machine|the machine's|\b\d+-core machine|\b\d{1,2}:\d\d UTC\b"
    r"|\b(?:morning|afternoon|evening) of\b|\bstretch of the machine|nothing else running|machine was (?:loaded|idle)",
    re.I,
)
DATE = re.compile(rf"\b\d{{1,2}} (?:{MONTHS})\b|\b(?:{MONTHS}) \d{{1,2}}\b|\b20\d\d-\d\d-\d\d\b")  # case matters: "may"


def history(text: str) -> list[str]:
    """Issue numbers, commit hashes, sibling-folder paths and the tracker: what a reader cannot follow."""
    found = [f"issue number {m.group(0)!r}" for m in ISSUE.finditer(text)]
    found += [f"commit hash {m.group(0)!r}" for m in COMMIT.finditer(text)]
    found += [f"path {m.group(0)!r}" for m in SHARED.finditer(text)]
    found += [f"process word {m.group(0)!r}" for m in TRACKER.finditer(text)]
    return found


def anecdotes(text: str) -> list[str]:
    """The machine something ran on, and when: allowed only beside a measurement in docs/benchmarks.md."""
    return [f"machine or date {m.group(0)!r}" for rule in (ANECDOTE, DATE) for m in rule.finditer(text)]


# --- prose -----------------------------------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)\)")


def prose_blocks(text: str) -> list[str]:
    """Paragraphs and list items, without code blocks, tables, headings, list markers or link targets."""
    blocks: list[list[str]] = []
    current: list[str] = []
    fenced = False

    def close() -> None:
        nonlocal current
        if current:
            blocks.append(current)
        current = []

    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            close()
            continue
        stripped = line.strip()
        if fenced or not stripped or stripped.startswith(("|", "#", "<!--")) or line.startswith("    "):
            close()  # a blank line, code, a table row or a heading ends the paragraph
            continue
        if LIST_MARKER.match(line):
            close()
            stripped = LIST_MARKER.sub("", line).strip()
        current.append(stripped)
    close()
    return [LINK.sub(r"\1", " ".join(b)) for b in blocks]


def sentences(text: str) -> list[int]:
    """Words per sentence of the page's prose; a sentence ends at . ? or ! before a space or the block's end."""
    counts = []
    for block in prose_blocks(text):
        for sentence in re.split(r"[.?!](?=\s|$)", block):
            words = [w for w in sentence.split() if re.search(r"\w", w)]
            if words:
                counts.append(len(words))
    return counts


def long_sentences(text: str, limit: float = MAX_MEAN_WORDS) -> list[str]:
    counts = sentences(text)
    if not counts:
        return []
    mean = sum(counts) / len(counts)
    return (
        [f"mean sentence length {mean:.1f} words over {len(counts)} sentences (at most {limit:g})"]
        if mean > limit
        else []
    )


# --- tables ----------------------------------------------------------------------------------------------------

DELIMITER = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def _cells(row: str) -> int:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return len(re.split(r"(?<!\\)\|", row))


def broken_tables(text: str) -> list[str]:
    """A table row inside a code fence shows as code; a table needs a blank line before it, a delimiter row
    under its header, and as many cells in every row as in the header."""
    found = []
    lines = text.splitlines()
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line):
            fenced = not fenced
            i += 1
            continue
        is_row = line.strip().startswith("|") and line.strip().endswith("|") and line.count("|") >= 2
        if fenced:
            if is_row:
                found.append(f"line {i + 1}: a table row inside a code fence")
            i += 1
            continue
        if not is_row:
            i += 1
            continue
        start = i
        while i < len(lines) and lines[i].strip().startswith("|"):
            i += 1
        rows = [r.strip() for r in lines[start:i]]
        if start > 0 and lines[start - 1].strip():
            found.append(f"line {start + 1}: a table without a blank line before it")
        if len(rows) < 2 or not DELIMITER.match(rows[1]):
            found.append(f"line {start + 1}: a table without a delimiter row under its header")
            continue
        width = _cells(rows[0])
        for n, row in enumerate(rows[1:], start + 2):
            if _cells(row) != width:
                found.append(f"line {n}: {_cells(row)} cells in a table of {width} columns")
    return found


# --- links -----------------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found, fenced = set(), False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6}\s+(.*?)\s*#*$", line)):
            found.add(slug(m.group(1)))
    return found


def _code_free(text: str) -> str:
    """The page without code blocks and code spans, where brackets are not links."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def dead_links(text: str, page: Path) -> list[str]:
    """Every relative link names a file that exists, and an anchor names a heading of that page."""
    found = []
    for _, target in LINK.findall(_code_free(text)):
        if not target or re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # an absolute URL, mailto:
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            found.append(f"link to {target!r}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text()):
            found.append(f"link to {target!r}: no such heading")
    return found


# --- the quick start -------------------------------------------------------------------------------------------


def quick_start_commands(readme: str) -> list[str]:
    """The commands of the code blocks of the README's "Quick start" section, comments dropped."""
    parts = re.split(r"^## +Quick start\s*$", readme, flags=re.M)
    if len(parts) < 2:
        return []
    section = re.split(r"^## ", parts[1], flags=re.M)[0]
    commands = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", section, re.S | re.M):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command:
                commands.append(command)
    return commands


def runs_the_test_command(script: str) -> bool:
    """A CI script runs scripts/test: a command line, not a comment, that calls it."""
    lines = [line.split("#", 1)[0] for line in script.splitlines()]
    return any(re.search(r"(^|[\s/;&|])(\./)?scripts/test(\s|$)", line) for line in lines)


# --- each rule against an independent expectation ---------------------------------------------------------------

GOOD = """# A page

promcast forecasts one metric. It publishes gauges.

| metric | meaning |
|---|---|
| `promcast_forecast` | the forecast, `a\\|b` |

- A list item with [a link](#a-page).

```sh
./scripts/demo   # a comment
```
"""


def test_the_rules_pass_a_good_page(tmp_path: Path) -> None:
    page = tmp_path / "good.md"
    page.write_text(GOOD)
    assert history(GOOD) == []
    assert anecdotes(GOOD) == []
    assert long_sentences(GOOD) == []
    assert broken_tables(GOOD) == []
    assert dead_links(GOOD, page) == []
    assert sentences(GOOD) == [4, 3, 6]


FLAGGED = {
    history: [
        "As issue 19 asked, it does.",
        "Fixed in #42.",
        "It landed at commit 80968f0.",
        "Run da74dde5 again.",
        "Read ../shared/BENCHMARK.md first.",
        "We said so in the issue tracker.",
        "This session measured it.",
    ],
    anecdotes: [
        "On our 2-core machine it took 3 s.",
        "The build machine was loaded.",
        "Run on 4 December 2026.",
        "Measured at 19:56 UTC.",
        "Rerun on the evening of 3 December.",
        "Since December 3 it is faster.",
        "It ran on 2026-12-07.",
        "Measured with nothing else running.",
        "On a slower stretch of the machine.",
    ],
}
SPARED = {
    history: [
        "The trace nab_ec2_cpu_5f5533_5m is spiky.",
        "`24ae8d` loses.",
        "Python 3.11 or newer.",
        "h = 1..12",
        "torch==2.13.0",
        "Use `#` for comments.",
        "The decade 2020 ended.",
    ],
    anecdotes: [
        "A retrain may fail.",
        "Size each replica at 2 cores.",
        "The daemon starts at 03:00 local time.",
        "Cron fields are read in UTC.",
        "Rerun a timing on a quiet machine.",
    ],
}


@pytest.mark.parametrize(("rule", "text"), [(r, t) for r, texts in FLAGGED.items() for t in texts])
def test_the_rule_flags_its_cases(rule: Callable[[str], list[str]], text: str) -> None:
    assert rule(text)


@pytest.mark.parametrize(("rule", "text"), [(r, t) for r, texts in SPARED.items() for t in texts])
def test_the_rule_spares_ordinary_words(rule: Callable[[str], list[str]], text: str) -> None:
    assert rule(text) == []


def test_sentence_length_counts_prose_only() -> None:
    long = " ".join(["word"] * 30) + "."
    assert long_sentences(long)
    assert sentences(f"# {long}\n\n| {long} |\n|---|\n\n```\n{long}\n```\n\n    {long}\n") == []
    assert sentences("- one two three\n- four five\n") == [3, 2]  # list items end sentences
    assert sentences("Version 0.602 of e.g. this. Two words!") == [4, 1, 2]
    assert sentences("See [the long link text here](docs/x.md).") == [6]


@pytest.mark.parametrize(
    "bad",
    [
        "```\n| a | b |\n|---|---|\n| 1 | 2 |\n```\n",  # rows in a fence show as code
        "| a | b |\n| 1 | 2 |\n",  # no delimiter row
        "| a | b |\n|---|---|\n| 1 | 2 | 3 |\n",  # a row wider than the header
        "Some text.\n| a | b |\n|---|---|\n",
    ],  # glued to a paragraph
)
def test_broken_tables_are_flagged(bad: str) -> None:
    assert broken_tables(bad)


def test_links_resolve_to_files_and_headings(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## The `current` link\n")
    page = tmp_path / "page.md"
    assert dead_links("[x](other.md) [y](other.md#the-current-link) [z](https://example.com/a.md)", page) == []
    assert dead_links("[x](missing.md)", page)
    assert dead_links("[x](other.md#no-such-heading)", page)
    assert dead_links("`[x](missing.md)` in code is no link", page) == []


def test_the_quick_start_reader() -> None:
    readme = "# x\n\n## Quick start\n\n```sh\n./scripts/demo  # demo\n./scripts/test\n```\n\n## Next\n\n```\nls\n```\n"
    assert quick_start_commands(readme) == QUICK_START
    assert quick_start_commands(readme.replace("./scripts/test\n", "./scripts/test\npip install x\n")) != QUICK_START
    assert runs_the_test_command("#!/bin/sh\nexec scripts/test\n")
    assert not runs_the_test_command("#!/bin/sh\n# exec scripts/test\npytest\n")


# --- the real pages ----------------------------------------------------------------------------------------------


@pytest.fixture(params=pages(), ids=_name)
def page(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_pages_exist() -> None:
    names = {_name(p) for p in pages()}
    for required in (
        "README.md",
        "week3_notes.md",
        "CHANGELOG.md",
        "docs/install.md",
        "docs/operations.md",
        "docs/autoscaling.md",
        "docs/benchmarks.md",
        "docs/development.md",
    ):
        assert required in names
        assert (ROOT / required).is_file()


def test_no_history(page: Path) -> None:
    assert history(page.read_text()) == []


def test_no_machine_anecdotes(page: Path) -> None:
    if _name(page) != BENCHMARKS_PAGE:
        assert anecdotes(page.read_text()) == []


def test_short_sentences(page: Path) -> None:
    assert long_sentences(page.read_text()) == []


def test_tables_render(page: Path) -> None:
    assert broken_tables(page.read_text()) == []


def test_relative_links_resolve(page: Path) -> None:
    assert dead_links(page.read_text(), page) == []


@pytest.mark.parametrize("name", sorted(MAX_LINES))
def test_page_length(name: str) -> None:
    assert len((ROOT / name).read_text().splitlines()) <= MAX_LINES[name]


def test_quick_start_is_the_two_commands_and_ci_runs_the_second() -> None:
    assert quick_start_commands((ROOT / "README.md").read_text()) == QUICK_START
    assert runs_the_test_command((ROOT / ".ci" / "run").read_text())
    for command in QUICK_START:
        assert (ROOT / command).is_file()
