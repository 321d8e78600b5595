"""build_generator: trains once, reuses the cached folder while the inputs are unchanged."""
from __future__ import annotations

import pytest

from components.generator import build
from components.generator import train as trainer
from components.generator.corpus import CorpusError
from components.generator.generator import Generator, read_meta
from tests.conftest import TINY_TRAIN


@pytest.fixture
def settings(tiny_corpus):
    return {"corpus": str(tiny_corpus), "base_model": None, "finetune": True,
            "promoted": None, "train": TINY_TRAIN, "system_prompt": None}


def no_training(*args, **kwargs):
    raise AssertionError("the generator was trained again")


def test_a_second_build_reuses_the_cached_folder(settings, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = build.build_generator(settings, cache)
    assert first == cache / build.cache_key(settings)
    assert Generator.load(first).model_version.startswith("kestrel-gpt-")
    assert [p.name for p in cache.iterdir()] == [first.name]  # no temporary folder left

    monkeypatch.setattr(trainer, "train", no_training)
    assert build.build_generator(settings, cache) == first


def test_a_changed_corpus_or_option_gives_a_new_key(settings, tiny_corpus, tmp_path,
                                                    monkeypatch):
    key = build.cache_key(settings)
    assert build.cache_key(dict(settings)) == key
    assert build.cache_key({**settings, "train": {**TINY_TRAIN, "epochs": 3}}) != key
    tiny_corpus.write_text(tiny_corpus.read_text() + "\n# a new comment\n")
    assert build.cache_key(settings) != key

    (tmp_path / "cache" / key).mkdir(parents=True)  # the old corpus's generator
    monkeypatch.setattr(trainer, "train", no_training)
    with pytest.raises(AssertionError, match="trained again"):
        build.build_generator(settings, tmp_path / "cache")


ARTICLE = """---
title: Shipping
slug: shipping
tags: [delivery]
last_reviewed: 2026-12-01
---
We ship to the US and Canada.
"""
QUESTIONS = """articles:
  - slug: shipping
    pairs:
      - question: do you ship to canada?
        section: ""
        answer: Yes, we ship to the US and Canada.
"""


def test_with_answer_from_passages_the_help_center_is_learnt_and_in_the_key(settings,
                                                                          tmp_path):
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "shipping.md").write_text(ARTICLE)
    (tmp_path / "grounded.yml").write_text(QUESTIONS)
    reading = {**settings, "knowledge": str(tmp_path / "kb"),
               "questions": str(tmp_path / "grounded.yml")}
    grounded = {**reading, "answer_from_passages": True}
    assert build.grounded_examples(settings) == []  # no help center: the corpus alone
    assert build.grounded_examples(reading) == []  # not asked to learn from it
    unread = build.cache_key(reading)
    [(question, answer, passages), _] = build.grounded_examples(grounded)
    assert (question, answer) == ("do you ship to canada?", "Yes, we ship to the US and Canada.")
    assert passages == ("Shipping\nWe ship to the US and Canada.",)

    key = build.cache_key(grounded)
    assert key != build.cache_key(settings) and key != unread
    (tmp_path / "grounded.yml").write_text(QUESTIONS.replace("Yes, we", "Yes, Kestrel Home"))
    assert build.cache_key(grounded) != key  # an edited answer trains again
    key = build.cache_key(grounded)
    (tmp_path / "kb" / "shipping.md").write_text(ARTICLE.replace("Canada", "Mexico"))
    assert build.cache_key(grounded) != key  # and so does an edited article
    assert build.cache_key(reading) == unread  # unless the generator never reads them

    built = build.build_generator(grounded, tmp_path / "cache")
    assert Generator.load(built).reads_passages


def test_the_cache_key_is_unchanged_by_the_refactor():
    # Pinned so that existing caches stay valid; change it only together with
    # train.TRAINING_CODE_VERSION (which is meant to invalidate them).
    assert trainer.TRAINING_CODE_VERSION == "4"
    assert build.cache_key({"corpus": "nowhere", "base_model": None, "finetune": True,
                            "train": {}, "system_prompt": None}) == "7683d9acb5d6d416"


def test_a_bad_corpus_raises_and_leaves_the_cache_empty(settings, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("dialogues:\n  - topic: x\n    turns: [{user: hi}]\n")
    for corpus in (bad, tmp_path / "nowhere"):
        with pytest.raises(CorpusError, match=corpus.name):
            build.build_generator({**settings, "corpus": str(corpus)}, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_invalid_train_options_raise_before_training(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "train", no_training)
    with pytest.raises(build.TrainOptionsError, match="no_such_option"):
        build.build_generator({**settings, "train": {"no_such_option": 1}}, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_base_model_without_finetuning_is_copied_as_is(settings, tiny_checkpoint, tmp_path,
                                                         monkeypatch):
    monkeypatch.setattr(trainer, "train", no_training)
    settings = {**settings, "base_model": str(tiny_checkpoint), "finetune": False}
    built = build.build_generator(settings, tmp_path / "cache")
    assert read_meta(built)["base_model"] == str(tiny_checkpoint)
    assert Generator.load(built).model_id == tiny_checkpoint.name


def test_the_promoted_generator_wins_over_base_model(settings, tiny_checkpoint, tmp_path):
    assert build.effective_base(settings) == (None, True)
    promoted = {**settings, "base_model": "elsewhere", "promoted": str(tiny_checkpoint)}
    assert build.effective_base(promoted) == (str(tiny_checkpoint.resolve()), False)
    missing = {**promoted, "promoted": str(tmp_path / "not-yet")}
    assert build.effective_base(missing) == ("elsewhere", True)


def test_generator_cache_dir_follows_rasa_cache_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path))
    assert build.generator_cache_dir() == tmp_path / "gpt_policy"
    monkeypatch.delenv("RASA_CACHE_DIRECTORY")
    assert str(build.generator_cache_dir()) == ".rasa/cache/gpt_policy"


def test_a_promoted_adapter_enters_the_archive_merged(settings, tiny_checkpoint, tmp_path):
    import json

    from components.feedback.finetune import LoraSettings, finetune
    import torch

    from components.generator.generator import Generator, is_adapter

    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "train.jsonl").write_text("".join(
        json.dumps({"reply_id": f"r{i}", "reply": "Gift cards start at $10.",
                    "context": [{"role": "user", "text": "gift cards?"}]}) + "\n"
        for i in range(4)))
    adapter = tmp_path / "adapter"
    finetune(tiny_checkpoint, dataset, adapter, {"epochs": 1, "batch_size": 2,
                                                 "max_seq_len": 64, "learning_rate": 1e-2},
             progress=False, lora=LoraSettings(r=2, alpha=4))
    built = build.build_generator({**settings, "promoted": str(adapter)}, tmp_path / "cache")
    assert not is_adapter(built) and (built / "model.safetensors").is_file()
    merged, packed = Generator.load(adapter), Generator.load(built)
    assert packed.model_version == merged.model_version
    for name, weight in merged.model.state_dict().items():
        assert torch.equal(weight, packed.model.state_dict()[name]), name
