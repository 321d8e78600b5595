"""The retrieval encoder tuned on known questions: config, training, the adapter round trip."""
import numpy as np
import pytest

from components.generator import tuning
from components.generator.knowledge import KnownQuestion, Passage
from components.generator.retrieval import CachedEncoder, minilm_encoder

# Questions that share no word with their passage, paired across topics on purpose:
# the untuned encoder cannot rank them right, so only training can.
PAIRS = [
    ("code word alpha", "Returns are accepted within 30 days of delivery."),
    ("code word bravo", "Express delivery costs $12.95."),
    ("code word charlie", "Gift cards never expire."),
    ("code word delta", "The kettle holds 1.7 litres."),
]


def top1(encode, pairs) -> float:
    """Share of questions whose own passage is the closest of all the passages."""
    questions = encode([q for q, _ in pairs])
    passages = encode([p for _, p in pairs])
    return float(np.mean(np.argmax(questions @ passages.T, axis=1) == np.arange(len(pairs))))


@pytest.fixture(scope="module")
def tuned():
    return tuning.tune(PAIRS, tuning.TuningConfig(epochs=6, learning_rate=3e-3, batch_size=4))


def test_tuning_pulls_each_question_to_its_own_passage(tuned):
    assert top1(minilm_encoder(), PAIRS) < 1.0
    assert top1(tuning.TunedEncoder(tuned), PAIRS) == 1.0


def test_the_saved_adapter_loads_into_the_same_encoder(tuned, tmp_path):
    tuning.save(tuned, tmp_path / tuning.ADAPTER_DIR)
    assert (tmp_path / tuning.ADAPTER_DIR / "adapter_config.json").is_file()
    loaded = tuning.index_encoder(tmp_path)
    assert isinstance(loaded, CachedEncoder)
    texts = [q for q, _ in PAIRS]
    assert np.allclose(loaded(texts), tuning.TunedEncoder(tuned)(texts), atol=1e-4)
    assert top1(loaded, PAIRS) == 1.0


def test_an_index_without_adapter_uses_the_shared_encoder(tmp_path):
    assert tuning.index_encoder(tmp_path) is minilm_encoder()
    (tmp_path / tuning.ADAPTER_DIR).mkdir()
    with pytest.raises(FileNotFoundError, match="rasa train"):
        tuning.index_encoder(tmp_path)


def test_each_epoch_is_reported_with_the_model_in_eval_mode():
    seen = []
    tuning.tune(PAIRS[:2], tuning.TuningConfig(epochs=2, batch_size=2),
                on_epoch=lambda epoch, model: seen.append((epoch, model.training)))
    assert seen == [(1, False), (2, False)]


def test_training_pairs_use_the_indexed_text_and_refuse_an_unknown_section():
    passages = [Passage("a#0", "a", "Express delivery", "", "Express costs $12.95.")]
    question = KnownQuestion("how much is express", "a", "")
    assert tuning.training_pairs(passages, [question]) == [
        ("how much is express", passages[0].search_text())]
    with pytest.raises(ValueError, match="section 'Overnight'"):
        tuning.training_pairs(passages, [KnownQuestion("q", "a", "Overnight")])


@pytest.mark.parametrize("values, message", [
    ({"epochs": -1}, "epochs"),
    ({"epochs": 1.5}, "epochs"),
    ({"rank": 0}, "rank"),
    ({"batch_size": 1}, "batch_size"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"epoch": 2}, "Unknown TuningConfig option"),
])
def test_invalid_config_names_the_option(values, message):
    with pytest.raises(ValueError, match=message):
        tuning.TuningConfig.from_dict(values)


def test_nothing_to_tune_is_an_error():
    with pytest.raises(ValueError, match="epochs is 0"):
        tuning.tune(PAIRS, tuning.TuningConfig())
    with pytest.raises(ValueError, match="at least 2"):
        tuning.tune(PAIRS[:1], tuning.TuningConfig(epochs=1))
