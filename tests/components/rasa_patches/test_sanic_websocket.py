"""components/rasa_patches/sanic_websocket.py: the websocket transport of Rasa's socket.io channel.

Rasa's own channel on a real Sanic 21.12 server (tests/components/channels/socketio_app.py),
driven over a bare websocket: with the fix, a message goes in and its reply comes back;
without it, the server closes the socket at the first frame it reads (Python 3.11 refuses
Sanic's ``asyncio.wait`` on a coroutine).
"""
from __future__ import annotations

import asyncio

import pytest
import websockets
from sanic.server.websockets.frame import WebsocketFrameAssembler

from components.rasa_patches import sanic_websocket
from tests.components.channels.socketio_app import RawSocket, serve
from tests.e2e_fixtures import free_port


@pytest.fixture(params=["patched", "unpatched"])
def rasa_channel(request):
    port = free_port()
    process = serve(port, "rasa", *(["--unpatched"] if request.param == "unpatched" else []))
    yield request.param, port
    process.kill()
    process.wait()


async def converse(port: int):
    async with RawSocket(port) as sock:
        await sock.emit("session_request", {"session_id": None})
        _, session_id = await sock.next()
        await sock.emit("user_uttered", {"message": "hello", "session_id": session_id})
        return await sock.next()


def test_a_websocket_conversation_needs_the_fix(rasa_channel):
    kind, port = rasa_channel
    if kind == "patched":
        event, data = asyncio.run(converse(port))
        assert (event, data["text"]) == ("bot_uttered", "echo: hello")
    else:
        with pytest.raises((websockets.ConnectionClosed, asyncio.TimeoutError)):
            asyncio.run(converse(port))


def test_install_is_idempotent():
    sanic_websocket.install()
    wrapped = WebsocketFrameAssembler.get
    sanic_websocket.install()
    assert WebsocketFrameAssembler.get is wrapped
