"""bench/passage_training.py: the data it trains on, and a two-step run end to end."""
from __future__ import annotations

import pytest

from bench import passage_training
from components.generator import knowledge
from tests.e2e_fixtures import ROOT


def test_every_grounded_pair_finds_its_passage():
    passages = knowledge.load_passages(ROOT / "data" / "knowledge")
    pairs = passage_training.grounded_pairs(passages)
    assert len(pairs) >= 600
    for question, answer, passage in pairs[:50]:
        assert question and answer and passage.text


@pytest.mark.slow
def test_a_two_step_run_reports_every_figure(tmp_path):
    result = passage_training.run(steps=2, held_out=3)
    assert result["steps"] == 2 and len(result["rows"]) == 3
    assert set(result["sweep"]) == set(passage_training.BIASES)
    assert result["shipped_bias"] in passage_training.BIASES  # the shipped value was measured
    assert {"question", "reply", "reference", "grounded", "numbers_right"} <= set(result["rows"][0])
    section = passage_training.report(result, 2)
    assert section.startswith(passage_training.MARK) and section.rstrip().endswith(
        passage_training.MARK)
    assert "held-out perplexity" in section and "| copy_bias |" in section
