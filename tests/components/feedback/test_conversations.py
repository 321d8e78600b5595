"""Generated turns, their context and their latest rating, from stored events."""
from __future__ import annotations

from components.feedback.conversations import (
    has_scripted_turn, parse_conversation, split_sessions,
)


def _user(text):
    return {"event": "user", "text": text, "timestamp": 1.0}


def _bot(text, reply_id=None, generated=True, ts=2.0):
    meta = {"generation": {"reply_id": reply_id, "generated": generated,
                           "model_version": "v1"}} if reply_id else {}
    return {"event": "bot", "text": text, "metadata": meta, "timestamp": ts}


def _rating(reply_id, value, at):
    return {"event": "slot", "name": "reply_rating", "timestamp": at,
            "value": {"reply_id": reply_id, "rating": value, "rated_at": at}}


def test_generated_turn_with_context_and_latest_rating():
    events = [_user("hi"), _bot("Hello!"), _user("do you ship to Canada?"),
              _bot("Yes, we do.", "r1"), _user('/rate_reply{"rating": "helpful"}'),
              _rating("r1", "helpful", 10.0), _rating("r1", "not_helpful", 11.0)]
    conv = parse_conversation("s", events)
    [turn] = conv.generated
    assert [t.text for t in turn.context] == ["hi", "Hello!", "do you ship to Canada?"]
    assert turn.reply == "Yes, we do." and turn.model_version == "v1"
    assert (turn.rating, turn.rated_at) == ("not_helpful", 11.0)
    assert conv.orphan_ratings == []


def test_rating_for_unknown_turn_is_an_orphan():
    events = [_user("q"), _bot("a", "r1"), _rating("nope", "helpful", 3.0),
              _rating("r1", "brilliant", 4.0)]
    conv = parse_conversation("s", events)
    assert conv.generated[0].rating is None
    assert len(conv.orphan_ratings) == 2


def test_sessions_split_and_scripted_detection():
    events = [{"event": "session_started"}, _user("where is my order"),
              {"event": "action", "name": "order_lookup_form"}, _bot("Which order?"),
              {"event": "session_started"}, _user("tell me a joke"),
              {"event": "action", "name": "utter_gpt_reply"}, _bot("Ha.", "r2")]
    sessions = split_sessions(events)
    assert len(sessions) == 2
    assert has_scripted_turn(sessions[0]) and not has_scripted_turn(sessions[1])
    # the context never crosses a session boundary
    assert [t.text for t in parse_conversation("s", events).generated[0].context] == \
        ["tell me a joke"]


def test_context_is_capped():
    events = []
    for i in range(10):
        events += [_user(f"u{i}"), _bot(f"b{i}")]
    events += [_user("last"), _bot("gen", "r9")]
    turn = parse_conversation("s", events, max_turns=3).generated[0]
    assert [t.text for t in turn.context] == ["u9", "b9", "last"]


def test_scripted_message_between_question_and_reply():
    events = [_user("do you sell gift cards?"), _bot("One moment."), _bot("Yes, from $10.", "r1")]
    [turn] = parse_conversation("s", events).generated
    assert [t.text for t in turn.context] == ["do you sell gift cards?"]


def test_non_numeric_rated_at_does_not_break_parsing():
    events = [_user("q"), _bot("a", "r1"),
              {"event": "slot", "name": "reply_rating",
               "value": {"reply_id": "r1", "rating": "helpful", "rated_at": "yesterday"}}]
    assert parse_conversation("s", events).generated[0].rating == "helpful"


def test_action_session_start_opens_the_session_it_precedes():
    start = [{"event": "action", "name": "action_session_start"}, {"event": "session_started"}]
    events = start + [_user("hi")] + start + [_user("again")]
    sessions = split_sessions(events)
    assert [len(s) for s in sessions] == [3, 3]
    assert all(s[0]["name"] == "action_session_start" for s in sessions)
