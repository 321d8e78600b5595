"""bench/answer_seeds.py: the report of the held-out answers per tuning seed."""
from __future__ import annotations

from bench import answer_seeds


def test_the_report_gives_each_seed_and_the_spread():
    rows = [{"seed": 0, "correct": 173, "hit@1": 185, "questions": 204},
            {"seed": 1, "correct": 168, "hit@1": 181, "questions": 204},
            {"seed": 2, "correct": 170, "hit@1": 179, "questions": 204}]
    text = answer_seeds.report(rows)
    assert text.startswith(answer_seeds.MARK) and text.rstrip().endswith(answer_seeds.MARK)
    assert "| 0 | 173 (84.8%) | 185 (90.7%) |" in text
    assert "| 1 | 168 (82.4%) | 181 (88.7%) |" in text
    assert "mean 170.3 of 204 (83.5%), from 168 to 173" in text
