"""The reference pages under docs/ hold what the code says: the settings, the metric families and the commands.

Each page is read back as a Markdown table and held against an expectation the test builds itself from the code
(the pydantic models, FAMILIES, the parser), not from the generator; and a change in the code makes ``--check``
fail until the pages are written again.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from promcast.daemon import reference
from promcast.daemon.cli import build_parser
from promcast.daemon.http.families import FAMILIES
from promcast.daemon.settings import GuardSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = ("configuration.md", "metrics.md", "commands.md")


def _page(name: str) -> str:
    return (DOCS / name).read_text()


def _tables(page: str) -> dict[str, list[list[str]]]:
    """Each ``## heading`` of a page and the body rows of its table, split into stripped cells."""
    tables: dict[str, list[list[str]]] = {}
    heading = ""
    for line in page.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            tables[heading] = []
        elif line.startswith("|"):
            tables[heading].append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return {h: rows[2:] for h, rows in tables.items()}  # past the header and the --- line


def _rows(page: str) -> list[list[str]]:
    return [row for rows in _tables(page).values() for row in rows]


def _name(cell: str) -> str:
    """The first `code` span of a cell: a setting's or a family's name."""
    return cell.split("`")[1]


def _leaf_fields(model: type[BaseModel]) -> int:
    """Settings a reader can set: every field, a nested model's (or a list of models') fields in its stead."""
    count = 0
    for info in model.model_fields.values():
        held = info.annotation
        if typing.get_origin(held) is list:
            held = typing.get_args(held)[0]
        nested = isinstance(held, type) and issubclass(held, BaseModel)
        count += _leaf_fields(held) if nested else 1
    return count


# ---- (a) the committed pages are what the generator writes


def test_the_check_passes_on_the_committed_pages() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "promcast.daemon.reference", "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr


def test_the_check_exits_1_naming_the_page_that_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in PAGES:
        (tmp_path / name).write_text(_page(name))
    (tmp_path / "metrics.md").write_text(_page("metrics.md") + "\nedited by hand\n")
    monkeypatch.setattr(reference, "DOCS", tmp_path)
    assert reference.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "docs/metrics.md" in err
    assert "configuration.md" not in err


def test_writing_makes_the_check_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reference, "DOCS", tmp_path)
    assert reference.main([]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PAGES)
    assert reference.main(["--check"]) == 0


# ---- (b) each page against the code, read independently


def test_the_configuration_page_has_one_row_per_setting() -> None:
    rows = _rows(_page("configuration.md"))
    assert len(rows) == _leaf_fields(Settings)
    assert _leaf_fields(Settings) > len(Settings.model_fields)  # the nested models' fields are counted too


def test_the_configuration_page_shows_defaults_and_variables() -> None:
    tables = _tables(_page("configuration.md"))
    listen = next(r for r in tables["Top level"] if _name(r[0]) == "listen")
    assert "`0.0.0.0:10190`" in listen[2]
    assert "`PROMCAST_LISTEN`" in listen[0]
    url = next(r for r in tables["`prometheus`"] if _name(r[0]) == "url")
    assert "`PROMCAST_PROMETHEUS__URL`" in url[0]
    guard = {_name(r[0]): r for r in tables["`targets[].guard`"]}
    assert set(guard) == set(GuardSettings.model_fields)
    assert guard["patience"][2] == f"`{GuardSettings.model_fields['patience'].default}`"
    assert "PROMCAST_" not in guard["patience"][0]  # a target's settings have no environment variable


def test_every_setting_row_has_a_meaning() -> None:
    empty = [r[0] for r in _rows(_page("configuration.md")) if not r[3]]
    assert not empty


def test_the_configuration_page_example_loads(tmp_path: Path) -> None:
    example = re.search(r"```yaml\n(.*?)```", _page("configuration.md"), re.S)
    assert example is not None
    config = tmp_path / "promcast.yaml"
    config.write_text(example.group(1))
    settings = load_settings(config)
    assert [t.name for t in settings.targets] == ["requests"]


def test_the_metrics_page_lists_every_family() -> None:
    rows = _rows(_page("metrics.md"))
    assert {_name(r[0]) for r in rows} == {f.name for f in FAMILIES}
    assert len(rows) == len(FAMILIES)  # each family once


def test_the_metrics_page_shows_types_and_labels() -> None:
    rows = {_name(r[0]): r for r in _rows(_page("metrics.md"))}
    assert rows["promcast_forecast"][1] == "gauge"
    assert rows["promcast_errors"][1] == "counter"
    assert rows["promcast_errors"][2] == "`target`, `stage`"


def test_the_commands_page_lists_every_subcommand_and_flag() -> None:
    tables = _tables(_page("commands.md"))
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {f"`promcast {name}`" for name in sub.choices} <= set(tables)
    run = sub.choices["run"]
    flags = {a.option_strings[-1] for a in run._actions if a.option_strings and a.help != argparse.SUPPRESS}
    shown = {row[0].strip("`").split()[0] for row in tables["`promcast run`"]}
    assert shown == flags - {"--help"}


def test_the_commands_page_gives_the_exit_codes() -> None:
    codes = {row[0] for row in _tables(_page("commands.md"))["Exit codes"]}
    assert codes == {"0", "1", "2", "130"}


def test_the_pages_hold_no_history_or_local_paths() -> None:
    for name in PAGES:
        text = _page(name)
        assert not re.search(r"\b[Ii]ssues? #?\d+|\.\./shared|/work/|\b[0-9a-f]{40}\b", text), name
        assert "```\n|" not in text, f"{name}: a table inside a code fence"


# ---- (c) a change in the code makes the check fail


def test_a_changed_description_makes_the_page_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Settings.model_fields["listen"], "description", "where the daemon listens")
    assert reference.check(DOCS) == ["configuration.md"]


def test_a_changed_nested_description_makes_the_page_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GuardSettings.model_fields["patience"], "description", "scorings before a switch")
    assert reference.configuration_page() != _page("configuration.md")


def test_a_setting_without_a_description_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GuardSettings.model_fields["patience"], "description", None)
    with pytest.raises(ValueError, match=r"targets\[\]\.guard\.patience"):
        reference.configuration_page()


def test_a_changed_family_makes_the_page_differ() -> None:
    changed = (dataclasses.replace(FAMILIES[0], help="Something else."), *FAMILIES[1:])
    assert reference.metrics_page(changed) != _page("metrics.md")


def test_a_new_family_shows_on_the_page() -> None:
    new = dataclasses.replace(FAMILIES[0], name="promcast_new_family")
    assert "`promcast_new_family`" in reference.metrics_page((*FAMILIES, new))


def test_a_new_flag_makes_the_page_differ() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["run"].add_argument("--new-flag", help="a flag the page does not show")
    assert reference.commands_page(parser) != _page("commands.md")
