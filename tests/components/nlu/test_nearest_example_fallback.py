"""NearestExampleFallback: train -> persist -> load -> process, on real MiniLM features."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.nlu import minilm
from components.nlu.nearest_example_fallback import OUTPUT_KEY, NearestExampleFallback
from components.nlu.sentence_featurizer import SentenceEmbeddingFeaturizer

TRAIN = {
    "order_status": ["where is my order", "has my order shipped yet",
                     "when will my parcel arrive", "what's the status of my order"],
    "opening_hours": ["when are you open", "what are your opening hours",
                      "are you open on saturday"],
    "affirm": ["yes", "yes please", "sure"],
}
FAR = "what is the capital of France"


def featurized(*texts: str, intents=None) -> list:
    messages = [Message(data={TEXT: t, **({INTENT: i} if i else {})})
                for t, i in zip(texts, intents or [None] * len(texts))]
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process(messages)
    featurizer = SentenceEmbeddingFeaturizer(
        {**SentenceEmbeddingFeaturizer.get_default_config(), "alias": "minilm"}, "node")
    featurizer.process(messages)
    return messages


def as_diet_said(message: Message, *ranking) -> Message:
    """What DIET leaves on a message: the top intent and the ranking."""
    ranks = [{"name": name, "confidence": conf} for name, conf in ranking]
    message.set(INTENT, dict(ranks[0]), add_to_output=True)
    message.set(INTENT_RANKING_KEY, ranks, add_to_output=True)
    return message


@pytest.fixture
def storage(tmp_path):
    (tmp_path / "storage").mkdir()
    return LocalModelStorage.create(tmp_path / "storage")


@pytest.fixture
def context():
    return ExecutionContext(GraphSchema({}), "test-model")


def config(**changes):
    return {**NearestExampleFallback.get_default_config(), "featurizers": ["minilm"], **changes}


@pytest.fixture
def trained(storage, context):
    texts = [t for rows in TRAIN.values() for t in rows]
    intents = [i for i, rows in TRAIN.items() for _ in rows]
    data = TrainingData(featurized(*texts, intents=intents))
    resource = Resource("gate")
    NearestExampleFallback.create(config(), storage, resource, context).train(data)
    return lambda **changes: NearestExampleFallback.load(config(**changes), storage,
                                                         resource, context)


@pytest.mark.parametrize("changes", [{"threshold": 1.5}, {"threshold": "0.5"},
                                     {"threshold": True}, {"featurizers": "minilm"},
                                     {"exempt_intents": [1]}])
def test_bad_config_is_rejected_naming_the_option(storage, context, changes):
    with pytest.raises(InvalidConfigException, match=next(iter(changes))):
        NearestExampleFallback.create(config(**changes), storage, Resource("x"), context)


def test_similarity_is_the_cosine_to_the_nearest_example_of_the_top_intent(trained):
    gate = trained()
    message, = featurized("where's my order")
    as_diet_said(message, ("order_status", 0.9), ("opening_hours", 0.1))
    gate.process([message])
    encoded = minilm.load().encode(["where's my order"] + TRAIN["order_status"],
                                   normalize_embeddings=True)
    expected = float(np.max(encoded[1:] @ encoded[0]))
    scored = message.get(OUTPUT_KEY)
    assert scored["intent"] == "order_status"
    assert scored["similarity"] == pytest.approx(expected, abs=1e-3)
    assert scored["similarity"] > 0.5
    assert message.get(INTENT)["name"] == "order_status"  # near: DIET's intent stays
    assert message.as_dict(only_output_properties=True)[OUTPUT_KEY] == scored


def test_a_message_far_from_every_example_of_its_intent_falls_back(trained):
    message, = featurized(FAR)
    as_diet_said(message, ("opening_hours", 0.8), ("order_status", 0.2))
    trained(threshold=0.5).process([message])
    assert message.get(OUTPUT_KEY)["similarity"] < 0.5
    assert message.get(INTENT) == {"name": "nlu_fallback", "confidence": 0.5}
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == \
        ["nlu_fallback", "opening_hours", "order_status"]


def test_the_threshold_decides(trained):
    near, = featurized("where's my order")
    as_diet_said(near, ("order_status", 0.9))
    trained(threshold=0.99).process([near])
    assert near.get(INTENT)["name"] == "nlu_fallback"
    far, = featurized(FAR)
    as_diet_said(far, ("opening_hours", 0.9))
    trained(threshold=-1.0).process([far])
    assert far.get(INTENT)["name"] == "opening_hours"


def test_exempt_intents_are_scored_but_never_overridden(trained):
    message, = featurized(FAR)
    as_diet_said(message, ("affirm", 0.9))
    trained(exempt_intents=["affirm"]).process([message])
    assert message.get(INTENT)["name"] == "affirm"
    assert message.get(OUTPUT_KEY)["intent"] == "affirm"


def test_an_earlier_fallback_stays_and_the_learned_intent_is_scored(trained):
    message, = featurized(FAR)
    as_diet_said(message, ("nlu_fallback", 0.3), ("opening_hours", 0.25), ("affirm", 0.2))
    trained().process([message])
    assert message.get(INTENT) == {"name": "nlu_fallback", "confidence": 0.3}
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)].count("nlu_fallback") == 1
    assert message.get(OUTPUT_KEY)["intent"] == "opening_hours"


def test_payloads_unknown_intents_and_messages_without_features_are_left_alone(trained):
    gate = trained(threshold=0.99)
    payload, = featurized('/rate_reply{"rating": "helpful"}')
    as_diet_said(payload, ("affirm", 1.0))
    unknown, = featurized(FAR)
    as_diet_said(unknown, ("greet", 0.9))  # no training example of greet
    bare = as_diet_said(Message(data={TEXT: "where is my order"}), ("order_status", 0.9))
    gate.process([payload, unknown, bare])
    for message, intent in ((payload, "affirm"), (unknown, "greet"), (bare, "order_status")):
        assert message.get(INTENT)["name"] == intent
        assert message.get(OUTPUT_KEY) is None


def test_training_without_sentence_features_names_the_fix(storage, context):
    data = TrainingData([Message(data={TEXT: "where is my order", INTENT: "order_status"})])
    gate = NearestExampleFallback.create(config(), storage, Resource("g"), context)
    with pytest.raises(InvalidConfigException, match="SentenceEmbeddingFeaturizer"):
        gate.train(data)
    # Features from another featurizer alias do not count either.
    other = TrainingData(featurized("where is my order", intents=["order_status"]))
    gate = NearestExampleFallback.create(config(featurizers=["other"]), storage,
                                         Resource("h"), context)
    with pytest.raises(InvalidConfigException, match="other"):
        gate.train(other)


def test_a_model_without_stored_examples_loads_with_the_gate_off(storage, context, caplog):
    with caplog.at_level(logging.WARNING):
        gate = NearestExampleFallback.load(config(threshold=0.99), storage,
                                           Resource("never-trained"), context)
    assert "gate is off" in caplog.text
    message, = featurized(FAR)
    as_diet_said(message, ("opening_hours", 0.9))
    gate.process([message])
    assert message.get(INTENT)["name"] == "opening_hours"
