"""shared_names.py: every name matches domain.yml, and GenerationRecord round-trips."""
from pathlib import Path

import pytest
import yaml
from rasa.shared.core.domain import Domain

import shared_names
from shared_names import GENERATION_KEY, GenerationRecord

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def test_the_gpt_response_is_a_domain_response_with_a_text(domain):
    variations = domain.responses[shared_names.GPT_RESPONSE]
    assert variations and all(v.get("text") for v in variations)


def test_the_gpt_policy_answers_with_the_shared_response():
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    gpt = [p for p in config["policies"] if p["name"].endswith("GPTPolicy")]
    assert [p.get("response") for p in gpt] == [shared_names.GPT_RESPONSE]


def test_the_rating_intent_action_and_slot_are_in_the_domain(domain):
    assert shared_names.RATE_INTENT in domain.intents
    assert shared_names.RATE_ACTION in domain.user_actions
    assert shared_names.RATING_SLOT in [slot.name for slot in domain.slots]


def test_the_handoff_action_is_in_the_domain(domain):
    assert shared_names.HANDOFF_ACTION in domain.user_actions


def test_the_ratings_are_the_two_values_the_nlu_data_normalises_to():
    assert [rating for _, rating in shared_names.RATINGS] == [shared_names.HELPFUL,
                                                               shared_names.NOT_HELPFUL]
    assert shared_names.HELPFUL != shared_names.NOT_HELPFUL
    nlu = (ROOT / "data" / "nlu" / "feedback.yml").read_text(encoding="utf-8")
    for rating in (shared_names.HELPFUL, shared_names.NOT_HELPFUL):
        assert f'"value": "{rating}"' in nlu


# Dicts exactly as GenerativeNLG stores them, one per shape (components/nlg/generative_nlg.py).
STORED = [
    {"generated": False, "fallback": "no_generator", "reply_id": "0123456789abcdef"},
    {"generated": False, "fallback": "timeout", "model_version": "kestrel-gpt-3f2a9c1d0b7e",
     "reply_id": "0123456789abcdef"},
    {"generated": True, "fallback": None, "guardrails": [], "model_id": "kestrel-gpt",
     "model_version": "kestrel-gpt-3f2a9c1d0b7e", "prompt_tokens": 41, "generated_tokens": 17,
     "latency_ms": 118.4, "hit_time_budget": False, "reply_id": "0123456789abcdef"},
    {"generated": False, "fallback": "blocked", "guardrails": ["cut_to_sentences", "blocked:x"],
     "model_id": "kestrel-gpt", "model_version": "kestrel-gpt-3f2a9c1d0b7e",
     "prompt_tokens": 41, "generated_tokens": 48, "latency_ms": 230.0,
     "hit_time_budget": False, "reply_id": "0123456789abcdef"},
]


@pytest.mark.parametrize("stored", STORED)
def test_a_stored_record_round_trips_key_for_key(stored):
    record = GenerationRecord.from_metadata({"utter_action": "utter_gpt_reply",
                                             GENERATION_KEY: stored})
    assert record.generated is stored["generated"] and record.fallback == stored["fallback"]
    assert record.reply_id == stored["reply_id"]
    assert record.to_dict() == stored
    assert list(record.to_dict()) == list(stored)  # the order the NLG has always stored


def test_a_decoded_reply_keeps_fallback_none_and_a_fallback_has_no_guardrails():
    assert GenerationRecord(generated=True, guardrails=[]).to_dict() == \
        {"generated": True, "fallback": None, "guardrails": []}
    assert GenerationRecord(generated=False, fallback="error").to_dict() == \
        {"generated": False, "fallback": "error"}


def test_from_metadata_tolerates_old_and_foreign_events():
    old = {"reply_id": "r1", "model_version": "v1", "latency_ms": 12.5, "future_key": 1}
    record = GenerationRecord.from_metadata({GENERATION_KEY: old})
    assert (record.generated, record.fallback, record.guardrails) == (False, None, None)
    assert (record.reply_id, record.model_version, record.latency_ms) == ("r1", "v1", 12.5)


@pytest.mark.parametrize("metadata", [None, {}, {"utter_action": "utter_greet"},
                                      {GENERATION_KEY: None}, {GENERATION_KEY: "generated"}])
def test_from_metadata_without_a_record_is_none(metadata):
    assert GenerationRecord.from_metadata(metadata) is None
