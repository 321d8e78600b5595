"""bench/report.py: sections of docs/benchmarks.md are replaced in place, and published."""
from __future__ import annotations

import pytest

from bench.report import median_spread, publish, write_section

MARK = "<!-- demo -->"


def test_publish_prints_and_replaces_only_its_section(tmp_path, capsys):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nkept\n\n{MARK}\nold\n{MARK}\n\nalso kept\n")
    publish(f"{MARK}\nnew\n{MARK}", MARK, doc, tmp_path / "plot.png")
    assert doc.read_text() == f"# Benchmarks\n\nkept\n\n{MARK}\nnew\n{MARK}\n\nalso kept\n"
    out = capsys.readouterr().out
    assert out.startswith(f"{MARK}\nnew") and f"wrote {doc} and {tmp_path / 'plot.png'}" in out


def test_publish_without_a_report_only_prints(tmp_path, capsys):
    publish(f"{MARK}\nx\n{MARK}", MARK, None)
    assert "wrote" not in capsys.readouterr().out and not list(tmp_path.iterdir())


def test_a_new_section_is_appended_and_a_bad_one_refused(tmp_path):
    doc = tmp_path / "new.md"
    write_section(doc, MARK, f"{MARK}\nfirst\n{MARK}")
    assert doc.read_text().startswith("# Benchmarks\n") and "first" in doc.read_text()
    with pytest.raises(ValueError, match="has to start and end"):
        write_section(doc, MARK, "no marks")


def test_median_spread():
    assert median_spread([3.0, 1.0, 2.0]) == "2.0 (1.0-3.0)"
    with pytest.raises(ValueError):
        median_spread([])
