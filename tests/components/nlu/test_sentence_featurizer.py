"""components/nlu/sentence_featurizer.py against the real all-MiniLM-L6-v2 (shipped offline)."""
from __future__ import annotations

import numpy as np
import pytest
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.nlu import minilm
from components.nlu.sentence_featurizer import SentenceEmbeddingFeaturizer


def featurizer(**config) -> SentenceEmbeddingFeaturizer:
    return SentenceEmbeddingFeaturizer(
        {**SentenceEmbeddingFeaturizer.get_default_config(), **config}, "minilm")


def tokenized(*texts: str) -> list:
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    messages = [Message(data={TEXT: t}) for t in texts]
    tokenizer.process(messages)
    return messages


def features(message: Message):
    seq, sent = message.get_dense_features(TEXT, ["minilm"])
    return seq.features, sent.features


@pytest.mark.parametrize("config", [{"batch_size": 0}, {"batch_size": "8"},
                                    {"batch_size": True}, {"max_wordpieces": 2},
                                    {"max_wordpieces": 257}, {"max_wordpieces": 64.0},
                                    {"runtime": "tensorflow"}, {"runtime": None}])
def test_bad_config_is_rejected_naming_the_option(config):
    with pytest.raises(InvalidConfigException, match=next(iter(config))):
        featurizer(**config)


@pytest.mark.parametrize("runtime", minilm.RUNTIMES)
def test_shapes_and_sentence_vector_equal_sentence_transformers(runtime):
    texts = ("my card still hasn't arrived", "Can I top up with Apple Pay?",
             "why was I charged twice for one payment")
    messages = tokenized(*texts)
    featurizer(runtime=runtime).process(messages)
    expected = minilm.load().encode(list(texts), normalize_embeddings=True)
    for message, vector in zip(messages, expected):
        seq, sent = features(message)
        assert seq.shape == (len(message.get("text_tokens")), 384)
        assert sent.shape == (1, 384) and sent.dtype == np.float32
        np.testing.assert_allclose(sent[0], vector, atol=1e-5)


def test_onnx_runtime_gives_pytorchs_features():
    texts = ("where is KC-10424??", "hi", "I'd like to return the kettle I bought last week, "
             "it leaks from the bottom and the lid doesn't close", "日本語のメッセージ 🙂")
    runs = {}
    for runtime in minilm.RUNTIMES:
        messages = tokenized(*texts)
        featurizer(runtime=runtime).process(messages)
        runs[runtime] = [features(m) for m in messages]
    for (seq_onnx, sent_onnx), (seq_torch, sent_torch) in zip(runs["onnx"], runs["torch"]):
        np.testing.assert_allclose(seq_onnx, seq_torch, atol=2e-4)
        assert float(sent_onnx[0] @ sent_torch[0]) > 0.99999


def test_hidden_states_refuses_an_unknown_runtime():
    with pytest.raises(ValueError, match="runtime 'gpu' is not one of"):
        minilm.hidden_states(np.ones((1, 3), dtype=np.int64), np.ones((1, 3), dtype=np.int64),
                             "gpu")


def test_paraphrases_are_closer_than_other_intents():
    messages = tokenized("my card has not arrived yet", "still waiting for my new card",
                         "how do I change my PIN")
    featurizer().process(messages)
    a, b, c = (features(m)[1][0] for m in messages)
    assert a @ b > a @ c + 0.1


def test_token_vector_is_the_mean_of_its_word_pieces():
    message, = tokenized("unbelievably slow transfer")
    featurizer().process([message])
    seq, _ = features(message)
    model = minilm.load()
    encoded = model.tokenizer(["unbelievably slow transfer"], return_tensors="pt")
    import torch

    with torch.inference_mode():
        hidden = model[0].auto_model(**encoded).last_hidden_state[0].numpy()
    pieces = model.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    first_word = [i for i, p in enumerate(pieces) if p not in ("[CLS]", "[SEP]")][:-2]
    assert len(first_word) > 1  # "unbelievably" is split into several word pieces
    np.testing.assert_allclose(seq[0], hidden[first_word].mean(axis=0), atol=1e-5)


def test_tokens_past_the_word_piece_limit_get_zeros():
    text = " ".join(["card"] * 10)  # "card" is one word piece
    message, = tokenized(text)
    featurizer(max_wordpieces=5).process([message])  # [CLS] + 3 words + [SEP]
    seq, _ = features(message)
    assert np.abs(seq[:3]).sum(axis=1).min() > 0
    assert not seq[3:].any()


def test_training_data_is_featurized_in_batches_and_messages_without_text_skipped():
    messages = tokenized(*[f"question number {i} about my account" for i in range(5)])
    no_text = Message(data={"intent": "greet"})
    data = TrainingData(training_examples=messages + [no_text])
    featurizer(batch_size=2).process_training_data(data)
    for m in messages:
        assert features(m)[1].shape == (1, 384)
    assert no_text.features == []


def test_empty_and_blank_messages_get_features_like_any_other():
    messages = tokenized("", "   ", "!!!")
    featurizer().process(messages)
    for message in messages:
        seq, sent = features(message)
        assert seq.shape == (1, 384) and sent.shape == (1, 384)
        assert abs(float(np.linalg.norm(sent)) - 1.0) < 1e-4
    assert not features(messages[0])[0].any()  # no word piece inside an empty token
