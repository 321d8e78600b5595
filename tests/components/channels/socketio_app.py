"""A small Sanic server with a socket.io channel, for the channel tests that need no model.

    python -m tests.components.channels.socketio_app PORT rasa|kestrel [--unpatched]

``kestrel`` serves components/channels/socketio_channel.py's SocketIOInput
with session persistence (credentials.yml), ``rasa`` Rasa's own without it; ``--unpatched`` leaves out the Sanic websocket fix
(components/rasa_patches/sanic_websocket.py), which our channel installs itself.
Each message is answered "echo: <text>" with a "Helpful" button, and both turns
are stored in an in-memory tracker store at ``app.ctx.agent.tracker_store``, where
Rasa's server keeps its agent, so the channel's history reads them back.
"""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import websockets

from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Sanic

from components.channels.socketio_channel import SocketIOInput
from components.rasa_patches import sanic_websocket

CREDENTIALS = {"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered"}
BUTTONS = [{"title": "Helpful", "payload": '/rate_reply{"rating": "helpful"}'}]


def app(kind: str, patched: bool) -> Sanic:
    server = Sanic("socketio_test_app")
    store = InMemoryTrackerStore(Domain.empty())
    server.ctx.agent = SimpleNamespace(tracker_store=store)

    async def on_new_message(message) -> None:
        tracker = await store.get_or_create_tracker(message.sender_id)
        reply = f"echo: {message.text}"
        tracker.update(UserUttered(message.text))
        tracker.update(BotUttered(reply, data={"buttons": BUTTONS}))
        await store.save(tracker)
        await message.output_channel.send_text_with_buttons(message.sender_id, reply, BUTTONS)

    channel_class = SocketIOInput if kind == "kestrel" else RasaSocketIOInput
    if patched:
        sanic_websocket.install()
    # Rasa's channel without session persistence: with it, its un-awaited enter_room
    # leaves the client out of its session's room (socketio_channel.py's docstring).
    credentials = {**CREDENTIALS, "session_persistence": kind == "kestrel"}
    server.blueprint(channel_class.from_credentials(credentials).blueprint(on_new_message))
    return server


if __name__ == "__main__":
    port, kind = int(sys.argv[1]), sys.argv[2]
    app(kind, patched="--unpatched" not in sys.argv).run(
        host="127.0.0.1", port=port, access_log=False)


class RawSocket:
    """A socket.io client over a bare websocket (Engine.IO 4 frames), from the `websockets` package.

    python-socketio's own websocket client needs aiohttp >= 3.10, which Rasa 3.6's
    pins refuse, so the frames are written here: ``0`` open, ``40`` namespace
    connect, ``42[event, data]`` an event, ``2``/``3`` ping/pong.
    """

    def __init__(self, port: int) -> None:
        self.url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"

    async def __aenter__(self) -> "RawSocket":
        self.ws = await websockets.connect(self.url, open_timeout=10)
        assert (await self._frame()).startswith("0")
        await self.ws.send("40")
        assert (await self._frame()).startswith("40")
        return self

    async def __aexit__(self, *_) -> None:
        await self.ws.close()

    async def _frame(self, timeout: float = 10.0) -> str:
        return await asyncio.wait_for(self.ws.recv(), timeout)

    async def emit(self, event: str, data) -> None:
        await self.ws.send("42" + json.dumps([event, data]))

    async def next(self, timeout: float = 10.0):
        """The next event as ``(name, data)``; pings are answered on the way."""
        while True:
            frame = await self._frame(timeout)
            if frame == "2":
                await self.ws.send("3")
            elif frame.startswith("42"):
                name, *data = json.loads(frame[2:])
                return name, (data[0] if data else None)


def serve(port: int, kind: str, *flags: str):
    """Starts this module's server in a subprocess; returns the process once the port answers.

    Raises:
        RuntimeError: if it does not listen within 90 s (its output is in the message).
    """
    process = subprocess.Popen([sys.executable, "-m", "tests.components.channels.socketio_app",
                                str(port), kind, *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"socketio_app did not start:\n{process.communicate()[0][-3000:]}")
