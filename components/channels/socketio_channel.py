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

**Sessions are resumed only with their token.** A session id is a name, not a
secret: it is the tracker store's ``sender_id``, in the logs, the analytics and
the review queue. Rasa's channel lets any client join any session's room by
naming it, and so read that customer's replies and write into their
conversation. Here ``session_request`` resumes ``session_id`` only when it comes
with its ``session_token`` (HMAC-SHA256 of the id under the server's secret,
``WEBCHAT_SESSION_SECRET``); anything else gets a new session. After
``session_confirm`` the server sends ``session_history``: ``{"session_id",
"session_token", "messages"}``, the conversation so far as read from the tracker
store (empty for a new session), so a reload, a cleared browser or another
device with the id and token shows the whole transcript. Each connection may
then only send ``user_uttered`` for the session it was confirmed. A site that
knows its customers can mint tokens for its own ids with the same secret
(``SessionTokens.issue``).

The websocket transport needs a fix to Sanic 21.12 on Python 3.11
(components/rasa_patches/sanic_websocket.py), installed with the blueprint.
"""
from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import logging
import os
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from rasa.core.channels.socketio import SocketIOOutput
from sanic import Blueprint

from components.channels.limits import sender_id_error, with_valid_unicode
from components.options import positive_int
from components.rasa_patches import sanic_websocket

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_CHARS = 5000
ERROR_EVENT = "invalid_request"
HISTORY_EVENT = "session_history"
SECRET_ENV = "WEBCHAT_SESSION_SECRET"
MAX_TOKEN_CHARS = 128


@dataclass(frozen=True)
class SessionTokens:
    """Tokens that prove a client may resume a session: HMAC-SHA256 (RFC 2104) of its id.

    ``secret`` is shared by every replica of the server (scripts/scale_out.sh);
    a token stays valid as long as the secret does.
    """

    secret: bytes

    @classmethod
    def from_environment(cls) -> "SessionTokens":
        """The secret in ``WEBCHAT_SESSION_SECRET``; a random one if it is unset or empty.

        With a random secret, sessions resume only until the server restarts, and
        only on this replica; a warning says so.
        """
        secret = os.environ.get(SECRET_ENV, "")
        if not secret:
            logger.warning(
                "%s is not set: web chat sessions resume only until this server restarts and "
                "only on this replica. Set it to a long random string (openssl rand -hex 32), "
                "the same on every replica.", SECRET_ENV)
            return cls(secrets.token_bytes(32))
        return cls(secret.encode())

    def issue(self, session_id: str) -> str:
        """The token of ``session_id``: 64 hex characters."""
        return hmac.new(self.secret, session_id.encode(), hashlib.sha256).hexdigest()

    def check(self, session_id: str, token: Any) -> bool:
        """Whether ``token`` is ``session_id``'s (compared in constant time)."""
        return isinstance(token, str) and hmac.compare_digest(self.issue(session_id), token)


def session_request_error(data: Any) -> Optional[str]:
    """Why a ``session_request`` payload is malformed, or None. None data is fine."""
    if data is None:
        return None
    if not isinstance(data, dict):
        return 'session_request data has to be an object: {"session_id": "..."} or {}.'
    token = data.get("session_token")
    if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS):
        return f"`session_token` has to be a string of at most {MAX_TOKEN_CHARS} characters."
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


class _RecordingOutput(SocketIOOutput):
    """Rasa's socket.io output, recording the ``bot_uttered`` payloads instead of sending them."""

    def __init__(self) -> None:
        super().__init__(sio=None, bot_message_evt="")
        self.sent: List[Dict[Text, Any]] = []

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        self.sent.append(response)

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any],
                               **kwargs: Any) -> None:
        pass  # emitted as keyword arguments, not a message the page can show again


async def transcript(events: Iterable[Dict[Text, Any]]) -> List[Dict[Text, Any]]:
    """The messages of a stored conversation as the web chat showed them.

    ``events`` are the tracker's events as dicts (``Event.as_dict()``). Returns
    ``[{"from": "user", "text": ...} | {"from": "bot", "message": <bot_uttered payload>}]``:
    each bot event goes through Rasa's ``SocketIOOutput`` (split at blank lines,
    buttons as ``quick_replies`` on the last part), so it is exactly what
    ``bot_uttered`` carried. A user message that was a button's payload shows
    that button's title. Only the last message keeps its buttons, and only if it
    is the bot's: a rating offered before the conversation moved on is not
    offered again.
    """
    messages: List[Dict[Text, Any]] = []
    titles: Dict[str, str] = {}  # payload -> title of the buttons last shown
    for event in events:
        if event.get("event") == "user":
            text = event.get("text") or ""
            messages.append({"from": "user", "text": titles.get(text, text)})
        elif event.get("event") == "bot":
            output = _RecordingOutput()
            message = {"text": event.get("text"), **(event.get("data") or {})}
            await output.send_response("", {k: v for k, v in message.items() if v})
            for sent in output.sent:
                messages.append({"from": "bot", "message": sent})
                if sent.get("quick_replies"):
                    titles = {b["payload"]: b["title"] for b in sent["quick_replies"]}
    for entry in messages[:-1]:
        if entry["from"] == "bot" and entry["message"].get("quick_replies"):
            entry["message"] = {**entry["message"], "quick_replies": []}
    return messages


class SocketIOInput(RasaSocketIOInput):
    """Rasa's SocketIOInput with every incoming event checked and sessions resumed by token.

    See the module docstring.
    """

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

    async def history(self, app: Any, session_id: Text) -> List[Dict[Text, Any]]:
        """The stored conversation ``session_id`` as ``transcript`` gives it; [] if none.

        ``app`` is Rasa's Sanic app (``app.ctx.agent`` holds the tracker store).
        """
        store = getattr(getattr(getattr(app, "ctx", None), "agent", None), "tracker_store", None)
        if store is None:
            return []
        tracker = await store.retrieve_full_tracker(session_id)
        if tracker is None:
            return []
        return await transcript(e.as_dict() for e in tracker.events)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's blueprint; its two event handlers are replaced or wrapped by the checks."""
        sanic_websocket.install()
        blueprint = super().blueprint(with_valid_unicode(on_new_message))
        sio, namespace = self.sio, self.namespace
        handlers = sio.handlers[namespace or "/"]
        tokens = SessionTokens.from_environment()
        server = {}

        @blueprint.listener("before_server_start")
        async def remember_app(app: Any, _loop: Any) -> None:
            server["app"] = app

        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            # Rasa's handler, with enter_room awaited and the session resumed only with
            # its token (see the module docstring).
            asked, token = (data or {}).get("session_id"), (data or {}).get("session_token")
            if not self.session_persistence:  # the conversation is the connection (sid)
                await sio.emit("session_confirm", asked or uuid.uuid4().hex, room=sid,
                               namespace=namespace)
                return
            resumed = bool(asked) and tokens.check(asked, token)
            if asked and not resumed:
                logger.info("A socket.io client asked for a session without its token; "
                            "it gets a new session.")
            session_id = asked if resumed else uuid.uuid4().hex
            entered = sio.enter_room(sid, session_id, namespace=namespace)
            if inspect.isawaitable(entered):
                await entered
            await sio.save_session(sid, {"session_id": session_id}, namespace=namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)
            messages = await self.history(server.get("app"), session_id) if resumed else []
            await sio.emit(HISTORY_EVENT, {"session_id": session_id,
                                           "session_token": tokens.issue(session_id),
                                           "messages": messages},
                           room=sid, namespace=namespace)

        async def own_session_error(sid: Text, data: Dict) -> Optional[str]:
            if not self.session_persistence:
                return None
            confirmed = (await sio.get_session(sid, namespace=namespace)).get("session_id")
            if confirmed is None:
                return "No session yet: send session_request first."
            if data.get("session_id") != confirmed:
                return ("`session_id` is not this connection's session: use the one "
                        "session_confirm gave.")
            return None

        async def user_message_check(sid: Text, data: Any) -> Optional[str]:
            return user_message_error(
                data, getattr(self, "max_message_chars", DEFAULT_MAX_MESSAGE_CHARS),
                self.session_persistence) or await own_session_error(sid, data)

        async def session_request_check(_sid: Text, data: Any) -> Optional[str]:
            return session_request_error(data)

        handlers["session_request"] = session_request
        checks = {"session_request": session_request_check,
                  self.user_message_evt: user_message_check}
        for event, check in checks.items():
            handler = handlers[event]

            async def checked(sid: Text, data: Any = None, *_: Any, _event=event, _check=check,
                              _handler=handler) -> None:
                problem = await _check(sid, data)
                if problem:
                    logger.warning("Dropped a malformed socket.io %r event: %s", _event, problem)
                    await sio.emit(ERROR_EVENT, {"event": _event, "error": problem}, room=sid,
                                   namespace=namespace)
                    return
                await _handler(sid, data)

            sio.on(event, handler=checked, namespace=namespace)
        return blueprint
