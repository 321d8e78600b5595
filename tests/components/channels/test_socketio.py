"""The socket.io channel with a real python-socketio client: the protocol, and malformed events.

Rasa's handlers assume well-formed events; components/channels/socketio_channel.py
checks them first. Each malformed event must get an ``invalid_request`` event
back, leave the server answering, and leave stored conversations untouched.
"""
from __future__ import annotations

import asyncio

import pytest
import socketio

from components.channels.socketio_channel import HISTORY_EVENT
from tests.components.channels.helpers import stored_events

pytestmark = pytest.mark.slow


class Client:
    """A socket.io client speaking the web chat's protocol (webchat/chat.js)."""

    def __init__(self, url: str):
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: asyncio.Queue = asyncio.Queue()
        for event in ("session_confirm", HISTORY_EVENT, "bot_uttered", "invalid_request"):
            self.sio.on(event, self._recorder(event))

    def _recorder(self, event):
        async def record(data=None):
            await self.received.put((event, data))
        return record

    async def __aenter__(self):
        # polling: python-engineio 4.15's websocket client needs aiohttp>=3.10 (Rasa pins 3.9)
        await self.sio.connect(self.url, transports=["polling"])
        return self

    async def __aexit__(self, *_):
        # A clean disconnect waits for the open long-poll, which the server holds for its
        # ping interval (25 s, Engine.IO's default): every test took 30 s. Tell the server
        # and leave at once instead; the conversation is stored by then.
        await self.sio.eio.disconnect(abort=True)

    async def next(self, timeout: float = 60.0):
        return await asyncio.wait_for(self.received.get(), timeout)

    async def session(self, session_id=None, token=None) -> str:
        """The session the server confirms (a new one unless ``token`` is ``session_id``'s)."""
        await self.sio.emit("session_request", {"session_id": session_id, "session_token": token})
        event, data = await self.next()
        assert event == "session_confirm"
        event, self.history = await self.next()
        assert event == HISTORY_EVENT and self.history["session_id"] == data
        return data

    async def say(self, text: str, session_id: str) -> dict:
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id})
        event, data = await self.next()
        assert event == "bot_uttered", (event, data)
        return data


MALFORMED = [
    ("session_request", "a string"),
    ("session_request", ["a", "list"]),
    ("session_request", {"session_id": ["not", "a", "string"]}),
    ("session_request", {"session_id": "x" * 300}),
    ("user_uttered", None),
    ("user_uttered", "hello"),
    ("user_uttered", [1, 2]),
    ("user_uttered", {"message": "hello"}),                               # no session_id
    ("user_uttered", {"message": "hello", "session_id": {"a": 1}}),
    ("user_uttered", {"message": "hello", "session_id": "s" * 256}),
    ("user_uttered", {"message": 42, "session_id": "malformed-1"}),
    ("user_uttered", {"message": ["hi"], "session_id": "malformed-1"}),
    ("user_uttered", {"message": "x" * 5001, "session_id": "malformed-1"}),
    ("user_uttered", {"message": "hi", "session_id": "malformed-1", "metadata": "{not json"}),
    ("user_uttered", {"message": "hi", "session_id": "malformed-1", "metadata": [1]}),
]


async def test_a_conversation_over_socketio_is_stored(channel_server):
    async with Client(channel_server["url"]) as client:
        session = await client.session()
        reply = await client.say("hello there", session)
        assert reply["text"].strip()
    events = stored_events(channel_server["tracker"], session)
    assert [e["data"]["text"] for e in events if e["type"] == "user"] == ["hello there"]


async def test_malformed_events_get_invalid_request_and_touch_nothing(channel_server):
    async with Client(channel_server["url"]) as client:
        keeper = await client.session()
        await client.say("hello there", keeper)
        before = stored_events(channel_server["tracker"], keeper)
        for event, data in MALFORMED:
            await client.sio.emit(event, data)
            answer, detail = await client.next()
            assert answer == "invalid_request", (event, data, answer)
            assert detail["event"] == event and detail["error"]
        # The same connection still works, and nothing was stored for the bad events.
        assert (await client.say("hello there", keeper))["text"].strip()
    after = stored_events(channel_server["tracker"], keeper)
    assert after[:len(before)] == before
    assert not stored_events(channel_server["tracker"], "malformed-1")


async def test_an_oversized_frame_drops_only_that_connection(channel_server):
    async with Client(channel_server["url"]) as big:
        session = await big.session()
        await big.sio.emit("user_uttered", {"message": "x" * (2 << 20), "session_id": session})
        await asyncio.sleep(2)
    assert not stored_events(channel_server["tracker"], session)
    async with Client(channel_server["url"]) as client:  # the server still answers
        assert (await client.say("hello there", await client.session()))["text"].strip()
