import pytest

from components.generator.corpus import (
    CorpusError, all_texts, fingerprint, load_dialogues, training_examples,
)


def test_load_dialogues_reads_turns(tiny_corpus):
    dialogues = load_dialogues(tiny_corpus.parent)
    assert [d.topic for d in dialogues] == ["shipping", "warranty", "chitchat", "gifts"]
    assert dialogues[0].turns[1].role == "assistant"
    assert len(all_texts(dialogues)) == 10


def test_training_examples_pair_context_with_reply(tiny_corpus):
    examples = training_examples(load_dialogues(tiny_corpus), max_turns=4)
    context, reply = examples[1]
    assert [t.text for t in context] == [
        "Do you ship to Canada?", "Yes, we ship to the US and Canada.", "How long does it take?"]
    assert reply == "Standard shipping takes 3-5 business days."
    assert len(examples) == 5


def test_fingerprint_changes_with_content(tiny_corpus):
    before = fingerprint(tiny_corpus.parent)
    tiny_corpus.write_text(tiny_corpus.read_text() + "\n# edited\n")
    assert fingerprint(tiny_corpus.parent) != before


@pytest.mark.parametrize("content, message", [
    ("nlu: []", "dialogues"),
    ("dialogues: [{turns: [{user: hi}]}]", "`user` and `bot`"),
    ("dialogues: [{turns: [{user: '', bot: x}]}]", "must not be empty"),
    ("dialogues: [{topic: x}]", "turns"),
    ("dialogues: [unclosed", "invalid YAML"),
])
def test_malformed_corpus_names_the_problem(tmp_path, content, message):
    bad = tmp_path / "bad.yml"
    bad.write_text(content)
    with pytest.raises(CorpusError, match=message) as err:
        load_dialogues(bad)
    assert "bad.yml" in str(err.value)


def test_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_dialogues(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .yml"):
        load_dialogues(tmp_path / "empty")
