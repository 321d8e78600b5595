"""Sanic 21.12's websocket ``recv`` on Python 3.11: the web chat's websocket transport.

Rasa 3.6 pins Sanic 21.12 (``sanic>=21.12,<21.13``). Its
``WebsocketImplProtocol.recv`` (sanic/server/websockets/impl.py) waits with
``asyncio.wait((self.recv_cancel, self.assembler.get(timeout)), ...)``, handing a
bare coroutine to ``asyncio.wait``. Python 3.11 refuses that with a TypeError
("Passing coroutines is forbidden, use tasks explicitly"; deprecated since 3.8).
python-engineio's Sanic driver calls ``recv`` for every frame, swallows the
error and closes the socket, so every websocket connection of the web chat
closed after its first frame ("coroutine 'WebsocketFrameAssembler.get' was never
awaited" in the log) and the page had to fall back to long-polling. Sanic fixed
this in 22.x, which Rasa 3.6 does not allow.

``install`` makes ``WebsocketFrameAssembler.get`` return a task instead of a
coroutine. ``recv`` and ``recv_burst`` then pass ``asyncio.wait`` what it
accepts, and a caller that awaits ``get`` directly still gets the message, since
a task is awaitable. Idempotent; installed by the socket.io channel
(components/channels/socketio_channel.py) when Rasa builds its blueprint.
"""
from __future__ import annotations

import asyncio
from typing import Optional

from sanic.server.websockets.frame import WebsocketFrameAssembler

_MARK = "_kestrel_task"


def install() -> None:
    """Wraps ``WebsocketFrameAssembler.get`` once per process (a second call does nothing)."""
    original = WebsocketFrameAssembler.get
    if getattr(original, _MARK, False):
        return

    def get(self: WebsocketFrameAssembler, timeout: Optional[float] = None) -> asyncio.Task:
        return asyncio.ensure_future(original(self, timeout))

    setattr(get, _MARK, True)
    get.__doc__ = original.__doc__
    WebsocketFrameAssembler.get = get
