"""bench/follow_ups.py: the conversation file, the scores and the report."""
from __future__ import annotations

import pytest

from bench import follow_ups
from components.generator.answers import is_follow_up
from components.generator.knowledge import load_articles
from tests.e2e_fixtures import ROOT


def test_every_key_fact_is_stated_by_the_answering_article():
    articles = {a.slug: a.body.lower() for a in load_articles(ROOT / "data" / "knowledge")}
    for c in follow_ups.read_conversations(follow_ups.DATA):
        assert c["slug"] in articles, c
        for fact in c["facts"]:
            assert fact.lower() in articles[c["slug"]], (c["then"], fact)


def test_both_kinds_are_there_and_the_first_message_stands_alone():
    conversations = follow_ups.read_conversations(follow_ups.DATA)
    kinds = [c["kind"] for c in conversations]
    assert kinds.count("follow_up") >= 12 and kinds.count("new_topic") >= 6
    assert not any(is_follow_up(c["first"]) for c in conversations)


@pytest.mark.parametrize("text, message", [
    ("conversations: []\n", "has no `conversations`"),
    ("conversations:\n  - {first: a, then: b, kind: follow_up, slug: s}\n", r"lacks \['facts'\]"),
    ("conversations:\n  - {first: a, then: b, kind: other, slug: s, facts: []}\n", "kind"),
])
def test_a_broken_file_names_the_conversation(tmp_path, text, message):
    path = tmp_path / "f.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        follow_ups.read_conversations(path)


def test_scores_are_shares_per_kind():
    rows = [{"kind": "follow_up", "hit": True, "correct": True, "repeated": True},
            {"kind": "follow_up", "hit": True, "correct": False, "repeated": False},
            {"kind": "new_topic", "hit": False, "correct": False, "repeated": False}]
    assert follow_ups.score(rows) == {
        "follow_up": {"hit@1": 1.0, "correct": 0.5, "repeated": 0.5, "n": 2},
        "new_topic": {"hit@1": 0.0, "correct": 0.0, "repeated": 0.0, "n": 1}}


def test_the_report_is_fenced_and_lists_what_is_still_wrong(tmp_path, monkeypatch):
    monkeypatch.setattr(follow_ups, "PLOT", tmp_path / "plot.png")
    row = {"kind": "follow_up", "then": "and express?", "hit": False, "correct": False,
           "repeated": True, "text": "I'm not sure."}
    text = follow_ups.report({"alone": [row], "with earlier messages": [row]}, "m.tar.gz")
    assert text.startswith(follow_ups.MARK) and text.rstrip().endswith(follow_ups.MARK)
    assert '- follow up: "and express?" -> "I\'m not sure."' in text
    assert "| alone | follow up | 1 | 0% | 0% | 100% |" in text
    assert (tmp_path / "plot.png").stat().st_size > 0
