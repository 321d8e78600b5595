"""bench/short_questions.py: the question file, each reply's outcome and the report."""
from __future__ import annotations

import pytest

from bench import short_questions
from components.generator.knowledge import load_known_questions
from tests.e2e_fixtures import ROOT


def test_every_question_names_articles_of_the_help_center_and_was_never_trained_on():
    slugs = {p.stem for p in (ROOT / "data" / "knowledge").glob("*.md")}
    trained = {q.question.lower().strip(" ?") for q in
               load_known_questions(ROOT / "data" / "grounded")}
    questions = short_questions.read_questions(short_questions.DATA)
    assert len(questions) >= 50
    for q in questions:
        assert set(q["slugs"]) <= slugs, q
        assert q["question"].lower().strip(" ?") not in trained, q
        assert len(q["question"].split()) <= 6, q  # short, as the benchmark says


@pytest.mark.parametrize("text, message", [
    ("questions: []\n", "has no `questions`"),
    ("questions:\n  - {question: refund}\n", "needs a `question` and its `slugs`"),
])
def test_a_broken_file_names_the_question(tmp_path, text, message):
    path = tmp_path / "q.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        short_questions.read_questions(path)


@pytest.mark.parametrize("generation, outcome", [
    ({"mode": "extractive", "sources": [{"slug": "return-policy"}]}, "right article"),
    ({"mode": "generated", "sources": [{"slug": "return-policy"}]}, "right article"),
    ({"mode": "extractive", "sources": [{"slug": "how-to-start-a-return"}]}, "wrong article"),
    ({"mode": "retrieved", "sources": [{"id": "chitchat.yml#3"}]}, "no answer"),
    ({"mode": "fallback"}, "no answer"),
    ({}, "no answer"),
])
def test_each_reply_gets_one_outcome(generation, outcome):
    assert short_questions.outcome(generation, ["return-policy"]) == outcome


def test_the_report_is_fenced_and_lists_the_misses(tmp_path, monkeypatch):
    monkeypatch.setattr(short_questions, "PLOT", tmp_path / "plot.png")
    rows = [{"question": "return window?", "outcome": "wrong article",
             "slug": "how-to-start-a-return"},
            {"question": "store hours", "outcome": "no answer", "slug": None},
            {"question": "shipping fee", "outcome": "right article", "slug": "shipping-costs"}]
    text = short_questions.report(rows, "m.tar.gz")
    assert text.startswith(short_questions.MARK)
    assert text.rstrip().endswith(short_questions.MARK)
    assert "| right article | 1 | 33% |" in text and "| no answer | 1 | 33% |" in text
    assert '- "return window?": wrong article (how-to-start-a-return)' in text
    assert '- "store hours": no answer' in text and "shipping fee" not in text
    assert (tmp_path / "plot.png").stat().st_size > 0
