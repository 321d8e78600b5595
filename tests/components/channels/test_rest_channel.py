"""The REST body check: every malformed body gets a 4xx, every valid one passes."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from components.channels.limits import MAX_SENDER_ID_CHARS
from components.channels.rest_channel import ValidatedRestInput, body_error

JSON = "application/json"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                       children, max_size=4),
    max_leaves=12)


@pytest.mark.parametrize("content_type,body,status", [
    ("text/plain", b'{"sender": "a", "message": "hi"}', 415),
    (JSON, b"x" * 2048, 413),
    (JSON, b'{"sender": "a", "message": "\xff"}', 400),
    (JSON, b"not json", 400),
    (JSON, b"[]", 400),
    (JSON, b"null", 400),
    (JSON, b'{"message": "hi"}', 400),
    (JSON, b'{"sender": "", "message": "hi"}', 400),
    (JSON, json.dumps({"sender": "s" * (MAX_SENDER_ID_CHARS + 1), "message": "hi"}).encode(), 400),
    (JSON, b'{"sender": "a", "message": 5}', 400),
    (JSON, b'{"sender": "a", "message": "hi", "metadata": [1]}', 400),
])
def test_malformed_bodies(content_type, body, status):
    assert body_error(content_type, body, 1024)[0] == status


@pytest.mark.parametrize("body", [
    b'{"sender": "a", "message": "hi"}',
    b'{"sender": "a", "message": "", "metadata": {"locale": "en"}}',
    '{"sender": "ü", "message": "🙂 мой заказ"}'.encode(),
])
def test_valid_bodies(body):
    assert body_error("application/json; charset=utf-8", body, 1024) is None


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_gets_a_verdict_not_an_exception(body):
    problem = body_error(JSON, body, 200)
    if problem is not None:
        status, message = problem
        assert status in (400, 413) and message


@settings(max_examples=1000, deadline=None)
@given(st.text(min_size=1, max_size=MAX_SENDER_ID_CHARS), st.text(max_size=500))
def test_any_sender_and_message_strings_pass(sender, message):
    body = json.dumps({"sender": sender, "message": message}).encode()
    assert body_error(JSON, body, 1 << 20) is None


def test_bad_limit_is_refused():
    with pytest.raises(ValueError, match="max_body_bytes"):
        ValidatedRestInput.from_credentials({"max_body_bytes": 0})
    assert ValidatedRestInput.from_credentials(None).max_body_bytes == 1 << 20
