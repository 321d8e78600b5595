"""components/channels/limits.py: the request checks the channels share, without a server."""
from __future__ import annotations

import json

import pytest

from components.channels.limits import (DEFAULT_MAX_BODY_BYTES, MAX_SENDER_ID_CHARS,
                                        RequestRefusedError, body_limit, check_body_size,
                                        check_media_type, decode_utf8, error_response,
                                        has_lone_surrogate, parse_json, sender_id_error,
                                        valid_unicode, with_valid_unicode)


def refusal(check, *args):
    """(status, message) of the refusal ``check(*args)`` raises, or None when it passes."""
    try:
        check(*args)
    except RequestRefusedError as refused:
        return refused.problem
    return None


@pytest.mark.parametrize("limit, size, outcome", [
    (10, 10, None),          # ok: a body of exactly the limit
    (10, 11, 413),           # too big
    ("10", 1, ValueError),   # not an int
    (10.0, 1, ValueError),   # not an int either
    (True, 1, ValueError),   # a bool is not a size, though Python counts it as an int
    (0, 1, ValueError),      # zero
    (-5, 1, ValueError),     # negative
])
def test_body_limit_and_body_size(limit, size, outcome):
    if outcome is ValueError:
        with pytest.raises(ValueError, match=r"test channel: max_body_bytes has to be an "
                                             r"integer >= 1, got "):
            body_limit(limit, "test channel")
        return
    problem = refusal(check_body_size, b"x" * size, body_limit(limit, "test channel"))
    assert problem == (None if outcome is None else
                       (413, f"The body is {size} bytes; at most {limit} are accepted."))


def test_default_body_limit_is_one_mebibyte():
    assert body_limit(DEFAULT_MAX_BODY_BYTES, "x") == 1 << 20


@pytest.mark.parametrize("content_type, accepted, outcome", [
    ("application/json", ("application/json",), "application/json"),
    ("Application/JSON; charset=utf-8", ("application/json",), "application/json"),
    ("text/plain", ("application/json",), (415, "Content-Type has to be application/json.")),
    ("", ("application/json", "application/x-www-form-urlencoded"),
     (415, "Content-Type has to be application/json or application/x-www-form-urlencoded.")),
])
def test_check_media_type(content_type, accepted, outcome):
    if isinstance(outcome, tuple):
        assert refusal(check_media_type, content_type, accepted) == outcome
    else:
        assert check_media_type(content_type, accepted) == outcome


def test_decode_and_parse():
    assert parse_json(decode_utf8('{"a": "ü"}'.encode())) == {"a": "ü"}
    assert refusal(decode_utf8, b"\xff") == (400, "The body is not valid UTF-8.")
    status, message = refusal(parse_json, "not json")
    assert status == 400 and message.startswith("The body is not valid JSON (Expecting value")
    assert refusal(parse_json, "{", "`payload`")[1].startswith("`payload` is not valid JSON (")


@pytest.mark.parametrize("value, ok", [
    ("a", True), ("s" * MAX_SENDER_ID_CHARS, True), ("", False),
    ("s" * (MAX_SENDER_ID_CHARS + 1), False), (None, False), (5, False), (["a"], False),
])
def test_sender_id_error(value, ok):
    problem = sender_id_error("sender", value)
    assert problem == (None if ok else "`sender` has to be a string of 1 to 255 characters.")


def test_error_response_is_the_channels_json_error_body():
    reply = error_response(413, "too big")
    assert reply.status == 413 and json.loads(reply.body) == {"error": "too big"}
    assert reply.content_type == "application/json"


@pytest.mark.parametrize("text,expected", [
    ("\ud800 hi", "\ufffd hi"),
    ("a\udfffb\ud83d", "a\ufffdb\ufffd"),
    ("plain ünïcode 😀", "plain ünïcode 😀"),
    ("", ""),
])
def test_valid_unicode_replaces_lone_surrogates(text, expected):
    assert valid_unicode(text) == expected
    valid_unicode(text).encode("utf-8")  # always encodable
    assert has_lone_surrogate(text) is (text != expected)


def test_a_sender_id_with_a_lone_surrogate_is_refused():
    assert "valid Unicode" in sender_id_error("sender", "a\udc00")


async def test_every_message_reaches_rasa_as_valid_unicode():
    received = []

    async def on_new_message(message):
        received.append(message.text)

    from rasa.core.channels.channel import UserMessage

    deliver = with_valid_unicode(on_new_message)
    await deliver(UserMessage("\ud800 where is my order?", sender_id="a"))
    await deliver(UserMessage(None, sender_id="a"))
    assert received == ["\ufffd where is my order?", None]
