"""SentenceIntentClassifier: calibrate on synthetic clusters; train -> persist -> load -> process on MiniLM."""
from __future__ import annotations

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

from components.nlu.sentence_featurizer import SentenceEmbeddingFeaturizer
from components.nlu.sentence_intent_classifier import (OUTPUT_KEY, Calibration, in_scope_score,
                                                       references, rule_at,
                                                       SentenceIntentClassifier, calibrate)

TRAIN = {
    "order_status": ["where is my order", "has my order shipped yet", "when will my order arrive",
                     "what's the status of my order", "is my purchase on its way",
                     "any news on the order I placed"],
    "opening_hours": ["when are you open", "what are your opening hours",
                      "are you open on saturday", "what time does support close",
                      "is the help desk open on sundays", "until when can I reach you today"],
    "reset_password": ["I forgot my password", "reset my password please",
                       "I can't log in to my account", "my login doesn't work",
                       "how do I change my password", "locked out of my account"],
    "out_of_scope": ["what's the weather tomorrow", "write me a poem about the sea",
                     "who won the football game", "what's the capital of mongolia",
                     "solve 3x + 5 = 20", "recommend a movie for tonight"],
}
FAR = "explain how black holes form in distant galaxies"


def clusters(n_intents: int, per_intent: int, seed: int = 0, noise: float = 0.15,
             oos: int = 0):
    """Unit vectors around orthogonal centres: (N, 32) and N intent names."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(32, 32)))[0][: n_intents + 1]
    rows, names = [], []
    for i in range(n_intents):
        rows.append(centres[i] + noise * rng.normal(size=(per_intent, 32)))
        names += [f"intent_{i}"] * per_intent
    if oos:
        rows.append(centres[n_intents] + noise * rng.normal(size=(oos, 32)))
        names += ["out_of_scope"] * oos
    vectors = np.concatenate(rows)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), names


def test_without_out_of_scope_examples_held_out_intents_calibrate_the_rule():
    vectors, names = clusters(10, 12)
    calibration = calibrate(vectors, names, folds=5, seed=1)
    assert calibration.oos_source == "held-out intents"
    # Each held-out intent is a cluster of its own: far from every trained one.
    assert calibration.oos_recall >= 0.9
    assert calibration.in_scope_accuracy >= 0.85
    assert 0 < calibration.quantile <= 0.5
    assert 0 < calibration.threshold < 0.5  # a fused score: the mean of two ranks
    assert calibrate(vectors, names, folds=5, seed=1) == calibration  # seeded


def test_out_of_scope_examples_are_the_out_of_scope_side_when_there_are_some():
    vectors, names = clusters(4, 12, oos=12)
    calibration = calibrate(vectors, names, folds=4, seed=0)
    assert calibration.oos_source == "open-intent examples"
    # The classifier learns the out_of_scope cluster itself: no threshold is needed
    # to catch it, so the calibrated rule costs at most a point of in-scope accuracy.
    assert calibration.oos_recall == 1.0
    assert calibration.in_scope_accuracy >= 0.98


def test_two_open_intents_taken_for_each_other_still_count_as_routed_to_the_fallback():
    # out_of_scope and chitchat share one cluster: the classifier cannot tell them
    # apart, but either intent reaches the generator, as a fallback does.
    vectors, names = clusters(4, 12, oos=24)
    names = names[:48] + ["out_of_scope", "chitchat"] * 12
    as_routed = calibrate(vectors, names, folds=4, seed=0,
                          open_intents=["out_of_scope", "chitchat"])
    assert as_routed.oos_source == "open-intent examples"
    assert as_routed.oos_recall == 1.0
    assert as_routed.in_scope_accuracy >= 0.98
    # Scored by label, chitchat is an in-scope intent the classifier half gets
    # wrong, and half the out_of_scope examples are "missed".
    by_label = calibrate(vectors, names, folds=4, seed=0)
    assert by_label.oos_recall < 1.0 or by_label.in_scope_accuracy < 0.9


def test_the_in_scope_score_is_the_mean_of_the_two_percentile_ranks():
    confidences = np.array([0.2, 0.4, 0.6, 0.8])
    similarities = np.array([0.5, 0.6, 0.7, 0.8])
    score = in_scope_score(np.array([0.1, 0.5, 0.9, 0.9]), np.array([0.4, 0.65, 0.9, 0.55]),
                           confidences, similarities)
    # Below both references: 0. In the middle of both: 0.5. Above both: 1.
    # Highest confidence, low similarity: the high rank makes up for the low one.
    assert score.tolist() == [0.0, 0.5, 1.0, (1.0 + 0.25) / 2]
    assert in_scope_score(np.array([0.1]), np.array([0.1]), np.zeros(0), np.zeros(0)) == 1.0


def test_a_turn_low_on_one_score_only_is_kept_where_low_on_both_falls_back():
    held = {"confidence": np.linspace(0.5, 1.0, 100), "similarity": np.linspace(0.4, 0.9, 100),
            "right": np.ones(100, bool), "is_oos": np.zeros(100, bool),
            "top_open": np.zeros(100, bool)}
    held = {k: np.concatenate([v, v[:10]]) for k, v in held.items()}
    held["is_oos"][100:] = True  # ten out-of-scope examples, as low as the lowest in scope
    rule = rule_at(held, 0.1, "held-out intents")
    refs = references(held)
    one_low = in_scope_score(np.array([0.5]), np.array([0.9]), *refs)
    both_low = in_scope_score(np.array([0.54]), np.array([0.44]), *refs)
    assert one_low >= rule.threshold > both_low
    assert rule.oos_recall == pytest.approx(0.9)  # all but the one tied with the 10% quantile


def test_too_few_examples_to_calibrate_name_the_fix():
    vectors, names = clusters(2, 2)
    with pytest.raises(InvalidConfigException, match="at least 5 examples"):
        calibrate(vectors, names, folds=5)


@pytest.fixture
def storage(tmp_path):
    (tmp_path / "storage").mkdir()
    return LocalModelStorage.create(tmp_path / "storage")


@pytest.fixture
def context():
    return ExecutionContext(GraphSchema({}), "test-model")


def config(**changes):
    return {**SentenceIntentClassifier.get_default_config(), "featurizers": ["minilm"],
            "folds": 3, **changes}


def featurized(*texts: str, intents=None) -> list:
    messages = [Message(data={TEXT: t, **({INTENT: i} if i else {})})
                for t, i in zip(texts, intents or [None] * len(texts))]
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process(messages)
    SentenceEmbeddingFeaturizer({**SentenceEmbeddingFeaturizer.get_default_config(),
                                 "alias": "minilm"}, "node").process(messages)
    return messages


def training_data(train=TRAIN) -> TrainingData:
    texts = [t for rows in train.values() for t in rows]
    return TrainingData(featurized(*texts, intents=[i for i, rows in train.items()
                                                    for _ in rows]))


@pytest.fixture(scope="module")
def data():
    return training_data()


@pytest.fixture
def trained(storage, context, data):
    resource = Resource("intents")
    SentenceIntentClassifier.create(config(), storage, resource, context).train(data)
    return lambda **changes: SentenceIntentClassifier.load(config(**changes), storage,
                                                           resource, context)


@pytest.mark.parametrize("changes", [{"C": 0}, {"C": "1"}, {"folds": 1}, {"folds": 2.5},
                                     {"ranking_length": 0}, {"featurizers": "minilm"},
                                     {"fallback": "yes"}, {"random_seed": True},
                                     {"open_intents": "out_of_scope"}])
def test_bad_config_is_rejected_naming_the_option(storage, context, changes):
    with pytest.raises(InvalidConfigException, match=next(iter(changes))):
        SentenceIntentClassifier.create(config(**changes), storage, Resource("x"), context)


def test_a_new_wording_gets_its_intent_and_the_parse_records_the_rule(trained):
    message, = featurized("my parcel still hasn't come, where is it")
    trained().process([message])
    intent, ranking = message.get(INTENT), message.get(INTENT_RANKING_KEY)
    assert intent["name"] == "order_status"
    assert intent == ranking[0]
    assert [r["confidence"] for r in ranking] == sorted((r["confidence"] for r in ranking),
                                                        reverse=True)
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0, abs=1e-5)
    record = message.as_dict(only_output_properties=True)[OUTPUT_KEY]
    assert record["intent"] == "order_status" and record["fallback"] is False
    assert record["confidence"] == pytest.approx(intent["confidence"], abs=1e-4)
    assert record["score"] >= record["threshold"]


def test_an_out_of_scope_message_gets_the_out_of_scope_intent_when_it_has_examples(trained):
    message, = featurized(FAR)
    trained().process([message])
    assert message.get(INTENT)["name"] in ("out_of_scope", "nlu_fallback")


def test_a_message_unlike_any_example_falls_back_and_keeps_the_ranking(storage, context):
    scripted = {k: v for k, v in TRAIN.items() if k != "out_of_scope"}
    component = SentenceIntentClassifier.create(config(), storage, Resource("s"), context)
    component.train(training_data(scripted))
    assert component._trained["calibration"].oos_source == "held-out intents"
    message, = featurized(FAR)
    component.process([message])
    record = message.get(OUTPUT_KEY)
    ranking = message.get(INTENT_RANKING_KEY)
    assert record["fallback"] is True
    assert record["score"] < record["threshold"]
    assert message.get(INTENT)["name"] == "nlu_fallback"
    assert ranking[0]["name"] == "nlu_fallback"
    assert ranking[1]["name"] == record["intent"] != "nlu_fallback"
    near, = featurized("where is my order now")
    component.process([near])
    assert near.get(INTENT)["name"] == "order_status"


def test_with_fallback_off_the_scores_are_recorded_and_the_intent_kept(trained):
    message, = featurized("wat")
    trained(fallback=False).process([message])
    assert message.get(INTENT)["name"] == message.get(OUTPUT_KEY)["intent"] != "nlu_fallback"
    assert message.get(OUTPUT_KEY)["fallback"] is False


def test_the_loaded_model_parses_as_the_trained_one(storage, context, data):
    resource = Resource("same")
    component = SentenceIntentClassifier.create(config(), storage, resource, context)
    component.train(data)
    loaded = SentenceIntentClassifier.load(config(), storage, resource, context)
    first, second = featurized("can you reset my login", "can you reset my login")
    component.process([first])
    loaded.process([second])
    assert first.get(INTENT_RANKING_KEY) == second.get(INTENT_RANKING_KEY)
    assert first.get(OUTPUT_KEY) == second.get(OUTPUT_KEY)


def test_a_single_example_intent_trains_with_a_warning_naming_it(storage, context):
    data = training_data({**TRAIN, "thank": ["thanks a lot"]})
    component = SentenceIntentClassifier.create(config(), storage, Resource("one"), context)
    with pytest.warns(UserWarning, match="Intent 'thank' has 1 training example"):
        component.train(data)
    message, = featurized("thanks a lot")
    component.process([message])
    assert message.get(INTENT_RANKING_KEY)[0]["name"] in ("thank", "nlu_fallback")


def test_training_without_sentence_features_names_the_fix(storage, context):
    data = TrainingData([Message(data={TEXT: "where is my order", INTENT: "order_status"})])
    component = SentenceIntentClassifier.create(config(), storage, Resource("g"), context)
    with pytest.raises(InvalidConfigException, match="SentenceEmbeddingFeaturizer"):
        component.train(data)


def test_one_intent_is_not_enough(storage, context):
    data = training_data({"order_status": TRAIN["order_status"]})
    component = SentenceIntentClassifier.create(config(), storage, Resource("g"), context)
    with pytest.raises(InvalidConfigException, match="at least 2 intents"):
        component.train(data)


def test_an_archive_without_the_trained_classifier_says_retrain(storage, context):
    with pytest.raises(InvalidConfigException, match="rasa train"):
        SentenceIntentClassifier.load(config(), storage, Resource("never"), context)


def test_messages_without_features_are_left_alone(trained):
    bare = Message(data={TEXT: "where is my order"})
    trained().process([bare])
    assert bare.get(INTENT) is None and bare.get(OUTPUT_KEY) is None


def test_calibration_is_stored_with_the_model(trained):
    component = trained()
    calibration = component._trained["calibration"]
    assert isinstance(calibration, Calibration)
    assert calibration.oos_source == "open-intent examples"


def test_too_few_examples_to_calibrate_train_with_the_fallback_off(storage, context):
    tiny = {name: rows[:2] for name, rows in TRAIN.items()}
    component = SentenceIntentClassifier.create(config(), storage, Resource("t"), context)
    with pytest.warns(UserWarning, match="fallback is off"):
        component.train(training_data(tiny))
    message, = featurized(FAR)
    component.process([message])
    assert message.get(OUTPUT_KEY)["fallback"] is False
    assert message.get(INTENT)["name"] != "nlu_fallback"


def test_two_intents_get_the_probabilities_of_scikit_learn():
    from components.nlu.sentence_intent_classifier import fit, scores, weights

    vectors, names = clusters(2, 10, seed=3, noise=0.6)
    model = fit(vectors, names, 1.0)
    probabilities, top, confidence, _ = scores(*weights(model), model.classes_,
                                               vectors, np.asarray(names), vectors[:5])
    assert probabilities == pytest.approx(model.predict_proba(vectors[:5]), abs=1e-5)
    assert list(top) == list(model.predict(vectors[:5]))
    assert confidence == pytest.approx(probabilities.max(axis=1))


@pytest.mark.parametrize("text", ["", "🙂🙂🙂", "where is my order " * 600,
                                  "мой заказ где? 我的订单 where is it", "KC-10423"])
def test_odd_messages_parse_to_an_intent_or_nlu_fallback(trained, text):
    message, = featurized(text)
    trained().process([message])
    names = {"nlu_fallback", *TRAIN}
    assert message.get(INTENT)["name"] in names
    assert 0.0 <= message.get(INTENT)["confidence"] <= 1.0


def test_the_ngram_block_is_scikit_learns_sublinear_tfidf_beside_the_embedding():
    from scipy.sparse import random as sparse_random
    from sklearn.feature_extraction.text import TfidfTransformer

    from components.nlu.sentence_intent_classifier import features, idf_of

    vectors, _ = clusters(3, 4)
    counts = sparse_random(12, 40, density=0.2, random_state=0, format="csr")
    counts.data = np.ceil(counts.data * 4)  # counts 1..4
    inputs = features(vectors, counts, idf_of(counts))
    assert inputs.shape == (12, 32 + 40)
    assert inputs[:, :32].toarray() == pytest.approx(vectors, abs=1e-6)
    expected = TfidfTransformer(sublinear_tf=True).fit_transform(counts).toarray()
    assert inputs[:, 32:].toarray() == pytest.approx(expected, abs=1e-5)
    assert features(vectors) is vectors  # no n-grams: the embedding alone


def test_ngrams_keep_apart_intents_the_embedding_cannot():
    from scipy.sparse import csr_matrix

    from components.nlu.sentence_intent_classifier import features, fit, idf_of, scores, weights

    # Two intents on one embedding cluster ("delivery prices" and "delivery policy"
    # to the encoder); each has n-grams of its own, as a telling word gives.
    vectors, _ = clusters(1, 40, seed=5)
    names = np.asarray(["shipping_costs", "policy_question"] * 20)
    rng = np.random.default_rng(0)
    counts = np.zeros((40, 20))
    for row, name in enumerate(names):
        own = 0 if name == "shipping_costs" else 10
        counts[row, own + rng.choice(10, 3, replace=False)] = 1
    counts[:, 18:] = 1  # n-grams every example shares
    counts = csr_matrix(counts)
    train, test = np.arange(0, 30), np.arange(30, 40)

    def accuracy(with_ngrams: bool) -> float:
        idf = idf_of(counts[train]) if with_ngrams else None
        inputs = features(vectors, counts if with_ngrams else None, idf)
        model = fit(inputs[train], names[train], 100.0)
        _, top, _, _ = scores(*weights(model), model.classes_, vectors[train], names[train],
                              vectors[test], inputs[test] if with_ngrams else None)
        return float((top == names[test]).mean())

    assert accuracy(True) == 1.0
    assert accuracy(False) <= 0.8


@pytest.fixture
def with_chars(storage, context):
    """``featurized`` plus Rasa's CountVectorsFeaturizer (char_wb 2..5), trained on TRAIN."""
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
        CountVectorsFeaturizer)

    chars = CountVectorsFeaturizer.create(
        {**CountVectorsFeaturizer.get_default_config(), "alias": "chars",
         "analyzer": "char_wb", "min_ngram": 2, "max_ngram": 5},
        storage, Resource("chars"), context)
    data = training_data()
    chars.train(data)
    chars.process_training_data(data)

    def featurize(*texts: str) -> list:
        messages = featurized(*texts)
        chars.process(messages)
        return messages
    return data, featurize


def test_a_pipeline_with_ngrams_trains_stores_and_parses_as_loaded(storage, context, with_chars):
    data, featurize = with_chars
    resource = Resource("ngrams")
    settings = config(featurizers=["minilm", "chars"])
    component = SentenceIntentClassifier.create(settings, storage, resource, context)
    component.train(data)
    loaded = SentenceIntentClassifier.load(settings, storage, resource, context)
    vocabulary = next(iter(data.intent_examples)).get_sparse_features(TEXT, ["chars"])[1]
    with storage.read_from(resource) as directory:
        stored = np.load(directory / "classifier.npz")
        assert stored["idf"].shape == (vocabulary.features.shape[1],)
        assert stored["coef"].shape[1] == 384 + vocabulary.features.shape[1]
    texts = ["has my parcel been sent yet", "I forgot my password again", "", "🙂", FAR]
    first, second = featurize(*texts), featurize(*texts)
    component.process(first)
    loaded.process(second)
    for a, b in zip(first, second):
        assert a.get(INTENT_RANKING_KEY) == b.get(INTENT_RANKING_KEY)
        assert a.get(OUTPUT_KEY) == b.get(OUTPUT_KEY)
    assert first[0].get(INTENT)["name"] == "order_status"
    assert first[1].get(INTENT)["name"] == "reset_password"
    assert first[4].get(INTENT)["name"] in ("nlu_fallback", "out_of_scope")
