"""bench/console_scale.py: it times every page against a real store, and its report section."""
from __future__ import annotations

from bench import console_scale as bench


def test_measures_every_page_and_writes_the_section(tmp_path):
    figures = bench.measure(conversations=12, repeats=2)
    assert set(figures["times"]) == set(bench.pages("2026-01-01", "2026-01-07", 6)) | {
        "list after one new conversation", "analytics (cached)"}
    assert all(len(t) in (1, 2) and min(t) > 0 for t in figures["times"].values())
    assert figures["events"] > 12 * 10 and figures["first_ms"] > 0
    assert 0 < figures["search_hits"] <= 12  # "gift cards" is one of the bench's questions
    bench.plot(figures, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 5_000
    section = bench.report(figures, "python bench/console_scale.py", "2026-12-04", "test")
    assert section.startswith(bench.MARK) and section.rstrip().endswith(bench.MARK)
    assert "| review queue |" in section and "12 conversations" in section
