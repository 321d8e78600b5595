"""components/channels/socketio_channel.py: the event checks, session tokens and history.

The checks, tokens and ``transcript`` are tested as functions; sessions, tokens and
history end to end against the channel on a real Sanic server with an in-memory
tracker store (tests/components/channels/socketio_app.py), over a websocket. The
same with the trained model and a browser is in test_webchat.py.
"""
from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, strategies as st

from components.channels.socketio_channel import (HISTORY_EVENT, SessionTokens, SocketIOInput,
                                                  session_request_error, transcript,
                                                  user_message_error)
from tests.components.channels.socketio_app import BUTTONS, RawSocket, serve
from tests.e2e_fixtures import free_port


@pytest.mark.parametrize("data", [None, {}, {"session_id": None}, {"session_id": "abc"}])
def test_good_session_requests(data):
    assert session_request_error(data) is None


@pytest.mark.parametrize("data", ["abc", [], 5, {"session_id": 5}, {"session_id": ""},
                                  {"session_id": "x" * 256}, {"session_token": 5},
                                  {"session_id": "a", "session_token": "t" * 129}])
def test_bad_session_requests(data):
    assert session_request_error(data)


def test_good_user_message():
    assert user_message_error({"message": "hi", "session_id": "s", "metadata": '{"a": 1}'},
                              100, True) is None
    assert user_message_error({"message": "hi"}, 100, persistence=False) is None


@pytest.mark.parametrize("data", [None, "hi", [], {"message": "hi"},
                                  {"message": 1, "session_id": "s"},
                                  {"message": "x" * 101, "session_id": "s"},
                                  {"message": "hi", "session_id": "s", "metadata": "nope"},
                                  {"message": "hi", "session_id": "s", "metadata": [1]}])
def test_bad_user_messages(data):
    assert user_message_error(data, 100, persistence=True)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c,
                                                                        max_size=3)))
def test_checks_never_raise(data):
    session_request_error(data)
    user_message_error(data, 100, True)


def test_max_message_chars_is_validated():
    with pytest.raises(ValueError, match="max_message_chars"):
        SocketIOInput.from_credentials({"max_message_chars": 0})
    assert SocketIOInput.from_credentials({"max_message_chars": 9}).max_message_chars == 9


# --- Session tokens --------------------------------------------------------------------

def test_a_token_checks_only_for_its_own_session():
    tokens = SessionTokens(b"secret")
    token = tokens.issue("alice")
    assert len(token) == 64 and tokens.check("alice", token)
    assert not tokens.check("bob", token)
    assert not tokens.check("alice", None) and not tokens.check("alice", token.upper())
    assert not SessionTokens(b"another secret").check("alice", token)


@given(st.text(min_size=1), st.text(min_size=1))
def test_tokens_of_different_sessions_differ(a, b):
    tokens = SessionTokens(b"secret")
    assert tokens.check(a, tokens.issue(b)) == (a == b)


def test_the_secret_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEBCHAT_SESSION_SECRET", "shared")
    assert SessionTokens.from_environment() == SessionTokens(b"shared")
    monkeypatch.setenv("WEBCHAT_SESSION_SECRET", "")
    assert SessionTokens.from_environment() != SessionTokens.from_environment()  # random


# --- transcript -------------------------------------------------------------------------

RATE = BUTTONS[0]["payload"]


def test_transcript_splits_bot_messages_as_the_channel_sends_them():
    events = [{"event": "user", "text": "do you sell gift cards?"},
              {"event": "bot", "text": "Yes.\n\nThey are digital.", "data": {"buttons": BUTTONS}}]
    assert asyncio.run(transcript(events)) == [
        {"from": "user", "text": "do you sell gift cards?"},
        {"from": "bot", "message": {"text": "Yes.", "quick_replies": []}},
        {"from": "bot", "message": {"text": "They are digital.", "quick_replies": [
            {"content_type": "text", **BUTTONS[0]}]}}]


def test_a_button_payload_shows_as_its_title_and_old_buttons_are_dropped():
    events = [{"event": "action", "name": "action_listen"},
              {"event": "bot", "text": "Answer.", "data": {"buttons": BUTTONS}},
              {"event": "user", "text": RATE},
              {"event": "bot", "text": "Thanks!", "data": {}},
              {"event": "user", "text": RATE},  # no buttons shown since: as typed
              {"event": "bot", "data": {"image": "http://x/y.png"}},
              {"event": "bot", "text": "", "data": {}}]  # nothing to show
    assert asyncio.run(transcript(events)) == [
        {"from": "bot", "message": {"text": "Answer.", "quick_replies": []}},
        {"from": "user", "text": "Helpful"},
        {"from": "bot", "message": {"text": "Thanks!"}},
        {"from": "user", "text": "Helpful"},
        {"from": "bot", "message": {"attachment": {"type": "image",
                                                   "payload": {"src": "http://x/y.png"}}}}]


# --- Sessions over a websocket, against the channel on a real server --------------------

@pytest.fixture(scope="module")
def channel():
    port = free_port()
    process = serve(port, "kestrel")
    yield port
    process.kill()
    process.wait()


async def open_session(sock, session_id=None, token=None):
    await sock.emit("session_request", {"session_id": session_id, "session_token": token})
    event, confirmed = await sock.next()
    assert event == "session_confirm"
    event, history = await sock.next()
    assert event == HISTORY_EVENT and history["session_id"] == confirmed
    return history


async def say(sock, session_id, text):
    await sock.emit("user_uttered", {"message": text, "session_id": session_id})
    return await sock.next()


def test_a_session_resumes_with_its_token_and_its_history(channel):
    async def run():
        async with RawSocket(channel) as sock:
            first = await open_session(sock)
            assert first["messages"] == []
            assert await say(sock, first["session_id"], "hi") == ("bot_uttered", {
                "text": "echo: hi", "quick_replies": [{"content_type": "text", **BUTTONS[0]}]})
            await say(sock, first["session_id"], RATE)
        async with RawSocket(channel) as other_device:
            return first, await open_session(other_device, first["session_id"],
                                             first["session_token"])
    first, resumed = asyncio.run(run())
    assert resumed["session_id"] == first["session_id"]
    assert resumed["session_token"] == first["session_token"]
    assert [(m["from"], m.get("text") or m["message"]["text"]) for m in resumed["messages"]] == [
        ("user", "hi"), ("bot", "echo: hi"), ("user", "Helpful"), ("bot", f"echo: {RATE}")]


@pytest.mark.parametrize("token", [None, "0" * 64, "not a token"])
def test_a_session_id_without_its_token_gets_a_new_empty_session(channel, token):
    async def run():
        async with RawSocket(channel) as sock:
            victim = await open_session(sock)
            await say(sock, victim["session_id"], "my address is 1 Main St")
        async with RawSocket(channel) as intruder:
            forged = await open_session(intruder, victim["session_id"], token)
            # Writing into the victim's conversation is refused too.
            refused = await say(intruder, victim["session_id"], "hello")
            return victim, forged, refused
    victim, forged, refused = asyncio.run(run())
    assert forged["session_id"] != victim["session_id"] and forged["messages"] == []
    assert refused[0] == "invalid_request" and "not this connection's session" in refused[1]["error"]


def test_a_message_before_session_request_is_refused(channel):
    async def run():
        async with RawSocket(channel) as sock:
            return await say(sock, "abc", "hi")
    event, data = asyncio.run(run())
    assert event == "invalid_request" and "session_request first" in data["error"]
