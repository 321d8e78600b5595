"""Rasa's socket.io channel (the web chat's), with malformed events refused.

credentials.yml::

    components.channels.socketio_channel.SocketIOInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true   # the client's session_id is the conversation
      max_message_chars: 5000     # longer messages are refused

Same path (``/socket.io``) and protocol as Rasa's ``socketio`` channel, which
does all the work (webchat/chat.js is its client). Rasa's handlers assume
well-formed events: a ``session_request`` whose data is a string or whose
``session_id`` is a list, or a ``user_uttered`` whose data is not an object,
whose ``message`` is not text, whose ``metadata`` is a string that is not
JSON, or whose ``session_id`` is longer than the tracker store's 255-character
``sender_id`` column, raise inside the server (logged tracebacks, and for the
last one a failed write of the conversation). Here each event is checked
first; a malformed one is dropped with a warning, and the client gets an
``invalid_request`` event ``{"event": ..., "error": ...}`` saying what to fix.

``session_request`` is also answered here rather than by Rasa: Rasa 3.6 calls
``sio.enter_room`` without ``await``, but in the python-socketio this project
pins (5.18, constraints.txt) ``AsyncServer.enter_room`` is a coroutine, so with
Rasa's handler the client never joins its session's room and never receives a
bot message (seen as "coroutine 'AsyncServer.enter_room' was never awaited").
"""
from __future__ import annotations

import inspect
import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from sanic import Blueprint

from components.channels.limits import sender_id_error, with_valid_unicode
from components.options import positive_int

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_CHARS = 5000
ERROR_EVENT = "invalid_request"


def session_request_error(data: Any) -> Optional[str]:
    """Why a ``session_request`` payload is malformed, or None. None data is fine."""
    if data is None:
        return None
    if not isinstance(data, dict):
        return 'session_request data has to be an object: {"session_id": "..."} or {}.'
    return _session_id_error(data.get("session_id"), required=False)


def user_message_error(data: Any, max_message_chars: int, persistence: bool) -> Optional[str]:
    """Why a user message payload is malformed, or None."""
    if not isinstance(data, dict):
        return 'The message has to be an object: {"message": "...", "session_id": "..."}.'
    problem = _session_id_error(data.get("session_id"), required=persistence)
    if problem:
        return problem
    message = data.get("message", "")
    if not isinstance(message, str):
        return "`message` has to be a string."
    if len(message) > max_message_chars:
        return f"`message` has {len(message)} characters; at most {max_message_chars} are accepted."
    metadata = data.get("metadata", {})
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return "`metadata` is a string that is not JSON."
    if not isinstance(metadata, (dict, type(None))):
        return "`metadata` has to be an object."
    return None


def _session_id_error(session_id: Any, required: bool) -> Optional[str]:
    if session_id is None:
        return "`session_id` is missing: send session_request first." if required else None
    return sender_id_error("session_id", session_id)


class SocketIOInput(RasaSocketIOInput):
    """Rasa's SocketIOInput with every incoming event checked (see module docstring)."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SocketIOInput":
        """Rasa's socketio keys plus ``max_message_chars``.

        Raises:
            ValueError: if ``max_message_chars`` (characters) is not a positive integer.
        """
        credentials = dict(credentials or {})
        max_chars = credentials.pop("max_message_chars", DEFAULT_MAX_MESSAGE_CHARS)
        max_chars = positive_int("max_message_chars", max_chars, "socketio channel")
        channel = super().from_credentials(credentials)
        channel.max_message_chars = max_chars
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's blueprint; its two event handlers are wrapped by the checks."""
        blueprint = super().blueprint(with_valid_unicode(on_new_message))
        sio, namespace = self.sio, self.namespace
        handlers = sio.handlers[namespace or "/"]

        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            # Rasa's handler, with enter_room awaited (see the module docstring).
            session_id = (data or {}).get("session_id") or uuid.uuid4().hex
            if self.session_persistence:
                entered = sio.enter_room(sid, session_id, namespace=namespace)
                if inspect.isawaitable(entered):
                    await entered
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)

        handlers["session_request"] = session_request
        checks = {
            "session_request": session_request_error,
            self.user_message_evt: lambda data: user_message_error(
                data, getattr(self, "max_message_chars", DEFAULT_MAX_MESSAGE_CHARS),
                self.session_persistence),
        }
        for event, check in checks.items():
            handler = handlers[event]

            async def checked(sid: Text, data: Any = None, *_: Any, _event=event, _check=check,
                              _handler=handler) -> None:
                problem = _check(data)
                if problem:
                    logger.warning("Dropped a malformed socket.io %r event: %s", _event, problem)
                    await sio.emit(ERROR_EVENT, {"event": _event, "error": problem}, room=sid,
                                   namespace=namespace)
                    return
                await _handler(sid, data)

            sio.on(event, handler=checked, namespace=namespace)
        return blueprint
