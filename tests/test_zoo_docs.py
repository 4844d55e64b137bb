"""docs/zoo.md is generated from the zoo and must be up to date."""

import functools
from pathlib import Path

from rfsym.zoo import names, table

DOC = Path(__file__).resolve().parent.parent / "docs" / "zoo.md"


@functools.cache
def markdown():
    return table.markdown()


def test_committed_zoo_table_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == markdown(), (
        "docs/zoo.md is stale: run python -m rfsym.zoo.table --write docs/zoo.md")


def test_table_has_one_row_per_entry():
    rows = [line for line in markdown().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == names()


def test_check_mode_reports_stale_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(table, "markdown", markdown)  # generated once per test session
    main = table.main
    stale = tmp_path / "zoo.md"
    stale.write_text("# old\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0
