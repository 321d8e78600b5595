"""Written replies: loading and refusing files, the nearest reply, save and load."""
from __future__ import annotations

import numpy as np
import pytest

from components.generator.replies import (ReplyBank, ReplyBankError, WrittenReply,
                                          load_replies, stems, topic_words)

WORDS = ["joke", "weather", "colour", "order"]


def bag_of_words(texts):
    """A deterministic stand-in encoder: one dimension per word of WORDS, L2-normalised."""
    rows = np.array([[float(w in t.lower()) for w in WORDS] + [0.01] for t in texts],
                    dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def write(tmp_path, text, name="no_answer.yml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
no_answer:
  - question: "tell me a joke"
    answer: "I'm better at parcels than jokes! Is there anything about a Kestrel Home order I can help with?"
  - question: "what's the weather like"
    answer: "I can't check the weather, sorry."
"""


def test_load_replies_reads_questions_answers_and_where_they_came_from(tmp_path):
    replies = load_replies(write(tmp_path, GOOD))
    assert [r.question for r in replies] == ["tell me a joke", "what's the weather like"]
    assert replies[1].source.endswith("no_answer.yml#1")
    assert load_replies(tmp_path) == replies  # a folder reads its .yml files


def test_one_answer_may_reply_to_several_questions(tmp_path):
    replies = load_replies(write(tmp_path, """
no_answer:
  - questions: ["this is so frustrating", "you're useless"]
    answer: "I'm sorry for the trouble."
  - question: "tell me a joke"
    answer: "Not my strong suit!"
"""))
    assert [(r.question, r.answer) for r in replies] == [
        ("this is so frustrating", "I'm sorry for the trouble."),
        ("you're useless", "I'm sorry for the trouble."),
        ("tell me a joke", "Not my strong suit!")]
    assert [r.source[-2:] for r in replies] == ["#0", "#0", "#1"]


@pytest.mark.parametrize("text,message", [
    ("no_answer: [{question: hi}]", "needs a `question` (or a `questions` list"),
    ("no_answer: [{questions: [hi, ''], answer: 'Hello!'}]", "needs a `question`"),
    ("no_answer: [{questions: hi, answer: 'Hello!'}]", "needs a `question`"),
    ("dialogues: []", "expected a top-level `no_answer:` list"),
    ("no_answer: [{question: 'x', answer: 'Shipping costs $4.95.'}]", "$4.95"),
    ("no_answer: [{question: 'x', answer: 'Write to help@kestrel.example.'}]",
     "help@kestrel.example"),
    ("no_answer: [a: b: c]", "invalid YAML"),
])
def test_bad_files_and_replies_that_state_store_facts_are_refused(tmp_path, text, message):
    with pytest.raises(ReplyBankError, match="no_answer.yml") as err:
        load_replies(write(tmp_path, text))
    assert message in str(err.value)


def test_a_missing_file_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ReplyBankError, match="set the GPT policy's `replies`"):
        load_replies(tmp_path / "absent.yml")


def test_nearest_keeps_only_replies_close_enough(tmp_path):
    bank = ReplyBank.build(load_replies(write(tmp_path, GOOD)), bag_of_words)
    match = bank.nearest("Tell me a JOKE!", 0.6)
    assert match.reply.question == "tell me a joke" and match.similarity > 0.9
    assert match.record()["id"].endswith("#0")
    assert bank.nearest("where is my order", 0.6) is None
    for odd in ("", "x" * 100_000, "日本語の質問"):
        bank.nearest(odd, 0.6)  # answered, never an error


TOPICS = [WrittenReply("can you recommend a good book",
                        "Book recommendations are outside what I can help with.", "f#0"),
          WrittenReply("are aliens real?", "That's beyond what I can help with!", "f#1"),
          WrittenReply("what's the weather like",
                       "I can't check the weather, sorry. I can help with orders.", "f#2")]


def recommendations(texts):
    """A stand-in encoder that finds "recommend ... book" and "recommend ... series" close."""
    rows = np.array([[float("recommend" in t.lower()), float("alien" in t.lower()),
                      float("weather" in t.lower()), 0.3] for t in texts], dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_topic_words_are_what_an_answer_echoes_from_its_question_less_shared_words():
    assert topic_words(TOPICS) == [{"recom", "book"}, set(), {"weath"}]
    # "help" and "can" are everywhere: never a topic, even where a question says it.
    many = [WrittenReply(f"can you help with {w}", f"I can't help with {w}.", f"f#{i}")
            for i, w in enumerate(["kites", "boats", "golf", "cards", "darts"])]
    assert topic_words(many) == [{"kite"}, {"boat"}, {"golf"}, {"card"}, {"dart"}]


def test_stems_treat_singular_and_plural_alike():
    assert stems("car tyres") == stems("a car tyre") == {"car", "tyre"}
    assert stems("Recommendations for books") == {"recom", "book"}


def test_a_reply_naming_a_topic_the_message_does_not_is_skipped_for_the_next():
    bank = ReplyBank.build(TOPICS, recommendations)
    # Closest: the book reply (cosine 1.0), but the message names no book.
    assert bank.nearest("recommend a good netflix series", 0.05).reply.source == "f#1"
    assert bank.nearest("can you recommend some BOOKS", 0.05).reply.source == "f#0"
    assert bank.nearest("recommend a good netflix series", 0.5) is None  # none left close
    assert bank.nearest("what's the weather like", 0.9).reply.source == "f#2"


def test_save_and_load_round_trip(tmp_path):
    bank = ReplyBank.build([WrittenReply("tell me a joke", "Not my strong suit!", "f#0")],
                           bag_of_words)
    bank.save(tmp_path / "replies")
    loaded = ReplyBank.load(tmp_path / "replies", bag_of_words)
    assert loaded.replies == bank.replies
    np.testing.assert_array_equal(loaded.embeddings, bank.embeddings)


def test_an_empty_bank_and_mismatched_files_are_refused():
    with pytest.raises(ValueError, match="No written replies"):
        ReplyBank.build([], bag_of_words)
    with pytest.raises(ValueError, match="rebuild with `rasa train`"):
        ReplyBank([WrittenReply("a", "b", "f#0")], np.zeros((2, 5), dtype=np.float32),
                  bag_of_words)


def test_the_projects_written_replies_load():
    assert len(load_replies("data/grounded/no_answer.yml")) >= 50
