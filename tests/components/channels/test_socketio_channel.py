"""components/channels/socketio_channel.py's event checks without a server."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from components.channels.socketio_channel import (SocketIOInput, session_request_error,
                                         user_message_error)


@pytest.mark.parametrize("data", [None, {}, {"session_id": None}, {"session_id": "abc"}])
def test_good_session_requests(data):
    assert session_request_error(data) is None


@pytest.mark.parametrize("data", ["abc", [], 5, {"session_id": 5}, {"session_id": ""},
                                  {"session_id": "x" * 256}])
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
