import json

import pytest
import torch

from components.generator.config import TrainConfig
from components.generator.corpus import load_dialogues, training_examples
from components.generator.generator import KNOWN_FILE, META_FILE, Generator
from components.generator.knowledge import KnownQuestion, Passage
from components.generator.prompt import Turn, format_passage
from components.generator.train import encode, fit, passage_examples, train
from tests.conftest import TINY_TRAIN


def test_train_writes_a_loadable_versioned_checkpoint(tiny_corpus, tmp_path):
    out = tmp_path / "gen"
    meta = train(tiny_corpus, out, TrainConfig(**TINY_TRAIN), progress=False)
    assert json.loads((out / META_FILE).read_text())["version"] == meta["version"]
    assert meta["version"].startswith("kestrel-gpt-")
    assert meta["corpus_sha256"] and meta["train_config"]["n_layer"] == 1
    # 4 dialogues, one held out: 3-4 examples in one batch of 4, for 2 epochs.
    assert meta["train_examples"] + meta["val_examples"] == 5
    assert (meta["epochs"], meta["steps"]) == (2, 2)
    generator = Generator.load(out)
    assert generator.model_version == meta["version"]
    assert generator.generate([Turn("user", "Do you ship to Canada?")]).generated_tokens >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "gen"], \
        "temporary folder left behind"


def test_the_built_in_model_knows_the_sentences_of_the_replies_it_learnt(tiny_corpus,
                                                                          tmp_path):
    train(tiny_corpus, tmp_path / "gen", TrainConfig(**TINY_TRAIN), progress=False)
    known = Generator.load(tmp_path / "gen").known_sentences
    # Every bot sentence of the 5 dialogues (one held out for validation counts too).
    assert known == {"yes we ship to the us and canada",
                     "standard shipping takes 3 5 business days",
                     "yes small appliances have a two year warranty",
                     "i'm doing well thanks for asking", "how can i help",
                     "yes kestrel gift cards come in any amount from 10"}
    # A model fine-tuned from it learns the new replies' sentences as well.
    more = tiny_corpus.parent / "more.yml"
    more.write_text('dialogues:\n  - topic: hi\n    turns:\n      - user: "hello"\n'
                    '        bot: "Hi there! What can I do for you?"\n', encoding="utf-8")
    train(more, tmp_path / "tuned", TrainConfig(**TINY_TRAIN), base_model=tmp_path / "gen",
          progress=False)
    tuned = json.loads((tmp_path / "tuned" / KNOWN_FILE).read_text())
    assert set(tuned) == known | {"hi there", "what can i do for you"}


def test_training_is_reproducible(tiny_corpus, tmp_path):
    a = train(tiny_corpus, tmp_path / "a", TrainConfig(**TINY_TRAIN), progress=False)
    b = train(tiny_corpus, tmp_path / "b", TrainConfig(**TINY_TRAIN), progress=False)
    assert a["version"] == b["version"]
    assert a["best_val_loss"] == b["best_val_loss"]
    wa = Generator.load(tmp_path / "a").model.state_dict()
    wb = Generator.load(tmp_path / "b").model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_another_seed_gives_another_model(tiny_corpus, tmp_path):
    a = train(tiny_corpus, tmp_path / "a", TrainConfig(**TINY_TRAIN), progress=False)
    b = train(tiny_corpus, tmp_path / "b", TrainConfig(**{**TINY_TRAIN, "seed": 7}),
              progress=False)
    assert a["version"] != b["version"]


def test_loss_covers_only_the_reply(tiny_checkpoint, tiny_corpus):
    tok = Generator.load(tiny_checkpoint).tokenizer
    examples = training_examples(load_dialogues(tiny_corpus), max_turns=4)
    cfg = TrainConfig(**{**TINY_TRAIN, "max_seq_len": 96})
    for (ids, labels), (_, reply) in zip(encode(tok, examples, cfg), examples):
        assert len(ids) == len(labels) <= cfg.max_seq_len
        learned = [t for t in labels if t != -100]
        assert learned[-1] == tok.eos_token_id
        assert tok.decode(learned[:-1]) == reply
        assert ids[-len(learned):] == learned


def test_fine_tuning_keeps_the_base_model_id(tiny_checkpoint, tiny_corpus, tmp_path):
    meta = train(tiny_corpus, tmp_path / "ft", TrainConfig(**{**TINY_TRAIN, "n_positions": 96}),
                 base_model=tiny_checkpoint, progress=False)
    assert meta["model_id"] == tiny_checkpoint.name
    assert meta["base_version"].endswith("-unversioned")
    assert meta["base_model"] == str(tiny_checkpoint)
    assert Generator.load(tmp_path / "ft").model_version == meta["version"]


def test_early_stopping_ends_when_validation_stops_improving(tiny_checkpoint, tiny_corpus):
    generator = Generator.load(tiny_checkpoint)
    cfg = TrainConfig(**{**TINY_TRAIN, "epochs": 20, "max_steps": None, "patience": 2,
                         "learning_rate": 0.0})
    data = encode(generator.tokenizer, training_examples(load_dialogues(tiny_corpus), 4), cfg)
    summary = fit(generator.model, generator.tokenizer, data[:3], data[3:], cfg, progress=False)
    # Epoch 1 sets the best loss; with lr 0 it never improves, so 2 more epochs end it.
    assert summary["epochs"] == 3
    assert summary["val_perplexity"] == pytest.approx(torch.exp(
        torch.tensor(summary["best_val_loss"])).item())


# --- Answers from passages (train.passage_examples) ---------------------------------

SHIPPING = [Passage("shipping#0", "shipping", "Shipping", "", "We ship to the US and Canada."),
            Passage("shipping#1", "shipping", "Shipping", "Costs",
                    "Standard shipping costs $4.95 and is free over $50."),
            Passage("care#0", "care", "Care", "", "Wipe the kettle with a damp cloth.")]
QUESTIONS = [KnownQuestion("how much is shipping?", "shipping", "Costs",
                           "Standard shipping costs $4.95, free over $50."),
             KnownQuestion("do you ship to canada?", "shipping", "",
                           "Yes, we ship to the US and Canada."),
             KnownQuestion("no written answer", "shipping", ""),
             KnownQuestion("a section that is gone", "shipping", "Returns", "Anything.")]
ANSWERS = {q.question: q.answer for q in QUESTIONS}


def test_each_answered_question_is_learnt_with_its_passage_alone_and_beside_a_distractor():
    examples = passage_examples(SHIPPING, QUESTIONS)
    assert [(q, a) for q, a, _ in examples] == [
        (q, ANSWERS[q]) for q in ("how much is shipping?",) * 2 + ("do you ship to canada?",) * 2]
    costs = format_passage("Shipping", "Costs", SHIPPING[1].text)
    opening = format_passage("Shipping", "", SHIPPING[0].text)
    assert examples[0][2] == (costs,)
    assert sorted(examples[1][2]) == sorted([costs, opening])  # the other section of its article
    assert examples[2][2] == (opening,) and sorted(examples[3][2]) == sorted([opening, costs])
    assert passage_examples(SHIPPING, QUESTIONS) == examples  # seeded


def test_a_model_trained_on_passages_says_so_and_sees_them_in_its_prompt(tiny_corpus, tmp_path):
    grounded = passage_examples(SHIPPING, QUESTIONS)
    meta = train(tiny_corpus, tmp_path / "gen", TrainConfig(**{**TINY_TRAIN, "val_fraction": 0.5}),
                 progress=False, grounded=grounded)
    assert meta["reads_passages"] and meta["passage_examples"] == 4
    generator = Generator.load(tmp_path / "gen")
    assert generator.reads_passages
    plain = train(tiny_corpus, tmp_path / "plain", TrainConfig(**TINY_TRAIN), progress=False)
    assert not plain["reads_passages"] and not Generator.load(tmp_path / "plain").reads_passages
    assert plain["version"] != meta["version"]  # other training data, another version
    # encode puts the passages in the prompt, and learns the answer only.
    [(ids, labels)] = encode(generator.tokenizer, [([Turn("user", "how much is shipping?")],
                                                    ANSWERS["how much is shipping?"],
                                                    grounded[0][2])],
                             TrainConfig(**{**TINY_TRAIN, "max_seq_len": 400, "n_positions": 400}))
    text = generator.tokenizer.decode(ids)
    assert "Standard shipping costs $4.95 and is free over $50." in text
    learnt = generator.tokenizer.decode([t for t in labels if t != -100])
    assert learnt.startswith(ANSWERS["how much is shipping?"])
