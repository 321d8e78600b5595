"""bench/written_replies.py: the held-out messages' labels and the threshold sweep."""
from __future__ import annotations

import pytest

from bench import written_replies as bench
from components.generator.replies import Match, WrittenReply, load_replies
from tests.e2e_fixtures import ROOT

BANK = ROOT / "data" / "grounded" / "no_answer.yml"


def test_every_kind_names_phrases_of_the_projects_written_replies():
    """A phrase no reply holds would count every reply as unfit: a stale label."""
    import yaml

    answers = " ".join(r.answer.lower() for r in load_replies(BANK))
    kinds = yaml.safe_load(bench.DEFAULT_HELDOUT.read_text(encoding="utf-8"))["kinds"]
    stale = [p for phrases in kinds.values() for p in phrases if p.lower() not in answers]
    assert not stale


def test_no_held_out_message_nearly_copies_a_written_question():
    """The messages were written after the replies; a copy would measure memory."""
    from bench.answers import NEAR_COPY
    from components.generator.retrieval import minilm_encoder

    encode = minilm_encoder()
    messages = [i["message"] for i in bench.read_heldout(bench.DEFAULT_HELDOUT)]
    assert len(messages) >= 40
    similarity = encode(messages) @ encode([r.question for r in load_replies(BANK)]).T
    assert similarity.max() < NEAR_COPY, messages[int(similarity.max(axis=1).argmax())]


def test_an_unknown_kind_is_refused_with_the_known_ones(tmp_path):
    path = tmp_path / "heldout.yml"
    path.write_text("kinds: {fun: [joke]}\nmessages: [{message: hi, fits: [fnu]}]\n")
    with pytest.raises(ValueError, match=r"unknown kind\(s\) \['fnu'\]; known: \['fun'\]"):
        bench.read_heldout(path)


class Bank:
    """A stand-in bank: each message's reply and its cosine, sent from that threshold."""

    def __init__(self, replies):
        self.replies = replies

    def nearest(self, message, threshold):
        answer, similarity = self.replies[message]
        if answer is None or similarity < threshold:
            return None
        return Match(WrittenReply("q", answer, "f#0"), similarity)


def test_the_sweep_counts_fitting_unfitting_and_canned_replies():
    items = [{"message": "you rock", "fits": ["kind of you"]},
             {"message": "what do you do for fun", "fits": ["assistant"]},
             {"message": "have a nice day", "fits": []}]
    bank = Bank({"you rock": ("That's kind of you to say!", 0.48),
                 "what do you do for fun": ("Better at parcels than punchlines!", 0.40),
                 "have a nice day": (None, 0.0)})
    rows = {r["threshold"]: r for r in bench.sweep(bank, items)}
    assert rows[0.35] == {"threshold": 0.35, "fit": 1, "unfit": 1, "canned": 1,
                          "canned_with_a_fit": 0}
    assert rows[0.45] == {"threshold": 0.45, "fit": 1, "unfit": 0, "canned": 2,
                          "canned_with_a_fit": 1}
    assert rows[0.5]["canned"] == 3 and rows[0.5]["canned_with_a_fit"] == 2
