"""Tests for actions/ratings.py: finding the rated reply, the rating, the recorded slot."""

import logging
import time

import pytest
from rasa_sdk.events import SlotSet

import shared_names
from actions.ratings import (
    ActionRateReply,
    find_rated_reply,
    normalise_rating,
    rating_record,
    requested_rating,
)

MODEL = "kestrel-gpt-6356fff65757"
# What the customer reads (domain.yml): utter_rating_thanks has two variations.
THANKS = {"Thanks for the feedback, it helps us improve.",
          "Thanks for rating that answer, it helps us get better."}
PRAISE_THANKS = {"Thank you, that's kind of you! What can I help you with?",
                 "That's nice to hear, thank you! Is there anything I can help with?"}
UNKNOWN = ("Sorry, I couldn't find the answer you rated, so nothing was recorded. Just keep "
           "asking, I'm happy to help.")


def generated(reply_id, text="We ship to the US and Canada.", **generation):
    """A bot event as Rasa sends it for a generated utter_gpt_reply."""
    meta = {"generated": True, "fallback": None, "model_version": MODEL,
            "mode": "generated", "reply_id": reply_id, **generation}
    return {"event": "bot", "text": text,
            "metadata": {"utter_action": "utter_gpt_reply", "generation": meta}}


def user(text, intent):
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}


LISTEN = {"event": "action", "name": "action_listen"}
CONVERSATION = [
    LISTEN,
    user("do you ship to canada?", "chitchat"),
    {"event": "action", "name": "utter_gpt_reply"},
    generated("a1b2c3d4e5f60718"),
    LISTEN,
    user("is the kettle a good gift?", "product_question"),
    {"event": "action", "name": "utter_gpt_reply"},
    generated("ffff000011112222", text="Kettles make lovely gifts."),
    LISTEN,
]


def button(rating, reply_id):
    return [{"entity": "rating", "value": rating}, {"entity": "reply_id", "value": reply_id}]


def rate(run_action, make_tracker, events, text, intent="rate_reply", entities=None):
    """Run action_rate_reply with ``text`` as the latest user message after ``events``."""
    tracker = make_tracker(events=events + [user(text, intent)], text=text, intent=intent,
                           entities=entities)
    return run_action(ActionRateReply(), tracker)


def responses(dispatcher):
    return [message.get("response") for message in dispatcher.messages]


def test_the_action_uses_the_shared_names():
    assert ActionRateReply().name() == shared_names.RATE_ACTION == "action_rate_reply"
    assert (shared_names.RATING_SLOT, shared_names.HELPFUL, shared_names.NOT_HELPFUL) == (
        "reply_rating", "helpful", "not_helpful")


def test_button_rates_the_reply_with_that_id(make_tracker, run_action, dispatcher, said):
    before = time.time()
    events = rate(run_action, make_tracker, CONVERSATION,
                  '/rate_reply{"rating": "helpful", "reply_id": "a1b2c3d4e5f60718"}',
                  entities=button("helpful", "a1b2c3d4e5f60718"))
    [event] = events
    assert event["event"] == "slot" and event["name"] == "reply_rating"
    record = event["value"]
    assert before <= record.pop("rated_at") <= time.time()
    # The older of the two replies: the id decides, not the position.
    assert record == {"reply_id": "a1b2c3d4e5f60718", "rating": "helpful",
                      "model_version": MODEL, "generated": True, "mode": "generated"}
    assert responses(dispatcher) == ["utter_rating_thanks"]
    [text] = said(dispatcher)
    assert text in THANKS


@pytest.mark.parametrize("text, intent, rating", [
    ("yes that helped", "affirm", "helpful"),
    ("no", "deny", "not_helpful"),
])
def test_yes_or_no_rates_the_reply_just_before(make_tracker, run_action, dispatcher,
                                               text, intent, rating):
    [event] = rate(run_action, make_tracker, CONVERSATION, text, intent=intent)
    assert (event["value"]["reply_id"], event["value"]["rating"]) == (
        "ffff000011112222", rating)
    assert responses(dispatcher) == ["utter_rating_thanks"]


def test_typed_rating_uses_the_entity(make_tracker, run_action, dispatcher):
    [event] = rate(run_action, make_tracker, CONVERSATION, "that was useless",
                   entities=[{"entity": "rating", "value": "useless"}])
    assert event["value"]["rating"] == "not_helpful"
    assert event["value"]["reply_id"] == "ffff000011112222"


def test_fallback_reply_can_be_rated_by_text(make_tracker, run_action, dispatcher):
    fallback = generated("0123456789abcdef", text="I'm not sure I can answer that one.",
                         generated=False, fallback="no_generator")
    del fallback["metadata"]["generation"]["model_version"]
    [event] = rate(run_action, make_tracker, [LISTEN, user("hm", "nlu_fallback"), fallback,
                                              LISTEN], "nope", intent="deny")
    record = event["value"]
    assert (record["reply_id"], record["generated"], record["model_version"]) == (
        "0123456789abcdef", False, None)


def test_unknown_reply_id_records_nothing(make_tracker, run_action, dispatcher, said, caplog):
    with caplog.at_level(logging.WARNING, logger="actions.ratings"):
        events = rate(run_action, make_tracker, CONVERSATION,
                      '/rate_reply{"rating": "helpful", "reply_id": "deadbeefdeadbeef"}',
                      entities=button("helpful", "deadbeefdeadbeef"))
    assert events == []
    assert responses(dispatcher) == ["utter_rating_unknown"]
    assert said(dispatcher) == [UNKNOWN]
    assert any("deadbeefdeadbeef" in r.getMessage() and r.levelname == "WARNING"
               and r.getMessage().startswith("action_rate_reply recorded nothing")
               for r in caplog.records)


@pytest.mark.parametrize("events", [
    [],  # nothing said yet
    [LISTEN, user("hi", "greet"), {"event": "bot", "text": "Hello!",
                                   "metadata": {"utter_action": "utter_greet"}}, LISTEN],
    # A generated reply earlier, but the last bot message was scripted.
    CONVERSATION + [user("bye", "goodbye"), {"event": "bot", "text": "Bye!"}, LISTEN],
])
def test_text_rating_needs_a_generated_reply_just_before(make_tracker, run_action, dispatcher,
                                                          events, caplog):
    with caplog.at_level(logging.WARNING, logger="actions.ratings"):
        assert rate(run_action, make_tracker, events, "yes", intent="affirm") == []
    assert responses(dispatcher) == ["utter_rating_unknown"]
    assert any("not a generated reply" in r.getMessage() for r in caplog.records)


def test_typed_praise_with_no_answer_before_it_is_thanked_for(make_tracker, run_action,
                                                              dispatcher, said):
    # "you're actually really helpful" as a first message got the apology of
    # utter_rating_unknown in the running bot (2026-12-06).
    praise = [{"entity": "rating", "value": "really helpful"}]
    assert rate(run_action, make_tracker, [], "you're actually really helpful",
                entities=praise) == []
    assert responses(dispatcher) == ["utter_praise_thanks"]
    assert said(dispatcher)[0] in PRAISE_THANKS


@pytest.mark.parametrize("text, intent, entities", [
    ("that was useless", "rate_reply", [{"entity": "rating", "value": "useless"}]),  # not praise
    ("yes", "affirm", None),  # a yes is not praise
    ('/rate_reply{"rating": "helpful", "reply_id": "deadbeefdeadbeef"}', "rate_reply",
     button("helpful", "deadbeefdeadbeef")),  # a button names a reply that isn't there
])
def test_only_typed_praise_skips_the_apology(make_tracker, run_action, dispatcher, text,
                                             intent, entities):
    assert rate(run_action, make_tracker, [], text, intent=intent, entities=entities) == []
    assert responses(dispatcher) == ["utter_rating_unknown"]


def test_malformed_rating_records_nothing(make_tracker, run_action, dispatcher, caplog):
    with caplog.at_level(logging.WARNING, logger="actions.ratings"):
        events = rate(run_action, make_tracker, CONVERSATION,
                      '/rate_reply{"rating": "5 stars", "reply_id": "a1b2c3d4e5f60718"}',
                      entities=button("5 stars", "a1b2c3d4e5f60718"))
    assert events == []
    assert responses(dispatcher) == ["utter_rating_unknown"]
    assert any("a1b2c3d4e5f60718" in r.getMessage() and "5 stars" in r.getMessage()
               for r in caplog.records)


def test_a_reply_can_be_rated_again(make_tracker, run_action, dispatcher):
    first = rate(run_action, make_tracker, CONVERSATION, "/rate_reply",
                 entities=button("helpful", "ffff000011112222"))
    second = rate(run_action, make_tracker, CONVERSATION + first, "/rate_reply",
                  entities=button("not_helpful", "ffff000011112222"))
    assert [e[0]["value"]["rating"] for e in (first, second)] == ["helpful", "not_helpful"]
    assert second[0]["value"]["rated_at"] >= first[0]["value"]["rated_at"]
    assert second[0]["value"]["reply_id"] == first[0]["value"]["reply_id"]
    assert responses(dispatcher) == ["utter_rating_thanks", "utter_rating_thanks"]


@pytest.mark.parametrize("value, expected", [
    ("helpful", "helpful"), ("Helpful", "helpful"), ("up", "helpful"),
    ("thumbs-up", "helpful"), ("GOOD", "helpful"), ("yes", "helpful"), ("useful", "helpful"),
    ("not_helpful", "not_helpful"), ("not helpful", "not_helpful"),
    ("Not  Helpful", "not_helpful"), ("down", "not_helpful"), ("bad", "not_helpful"),
    ("no", "not_helpful"), ("useless", "not_helpful"), ("unhelpful", "not_helpful"),
    ("meh", None), ("", None), ("5 stars", None), (None, None), (1, None), (True, None),
])
def test_rating_values_are_normalised(value, expected):
    assert normalise_rating(value) == expected


@pytest.mark.parametrize("intent, entities, expected", [
    ("affirm", [], "helpful"),
    ("deny", [], "not_helpful"),
    ("rate_reply", [], None),  # "rate that answer" without saying how
    ("deny", [{"entity": "rating", "value": "helpful"}], "helpful"),  # the entity wins
    ("affirm", [{"entity": "rating", "value": "meh"}], None),  # malformed is not a yes
])
def test_rating_from_entity_or_intent(intent, entities, expected):
    assert requested_rating({"intent": {"name": intent}, "entities": entities}) == expected


def test_find_rated_reply_by_id_and_by_position():
    assert find_rated_reply(CONVERSATION, "a1b2c3d4e5f60718")["reply_id"] == "a1b2c3d4e5f60718"
    assert find_rated_reply(CONVERSATION, "nope") is None
    latest = CONVERSATION + [user("yes", "affirm")]
    assert find_rated_reply(latest, None)["reply_id"] == "ffff000011112222"


def test_rating_record_is_the_exported_shape():
    record = rating_record(generated("abc")["metadata"]["generation"], "helpful", rated_at=12.5)
    assert record == {"reply_id": "abc", "rating": "helpful", "model_version": MODEL,
                      "generated": True, "mode": "generated", "rated_at": 12.5}
    assert SlotSet("reply_rating", record)["value"] is record


def test_an_extractive_answer_is_rated_with_its_mode():
    reply = generated("abc", generated=False, mode="extractive", model_version=None)
    record = rating_record(reply["metadata"]["generation"], "not_helpful", rated_at=1.0)
    assert (record["generated"], record["mode"], record["model_version"]) == (
        False, "extractive", None)
