"""The request checks that the REST, Slack and socket.io channels share.

What a client sees of a refused request (the HTTP status, the JSON
``{"error": ...}`` body and its wording) is part of the channels' protocol, and
the REST and Slack channels used to spell the same checks twice: the body size
limit and its 413, the Content-Type check and its 415, a body that is not UTF-8
or not JSON and its 400. The socket.io channel and the REST channel both bound
the conversation id by the tracker store's 255-character ``sender_id`` column.
Each check is written once here, so the channels cannot drift apart.

A check raises ``RequestRefusedError`` (status and message), so a channel runs a
few of them in a row and turns the first refusal into its answer; each channel's
own checks of its payload stay in its module. The option check behind
``max_body_bytes`` is components/options.py's ``positive_int``, shared with the
NLU components.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Optional, Sequence, Tuple

from sanic import response
from sanic.response import HTTPResponse

from components.options import positive_int

# (HTTP status, message for the {"error": ...} body)
Problem = Tuple[int, str]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # 1 MiB
MAX_SENDER_ID_CHARS = 255  # Rasa's SQLTrackerStore: events.sender_id is String(255)


class RequestRefusedError(Exception):
    """A request a channel refuses: the HTTP status (4xx) and the message to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def problem(self) -> Problem:
        """``(status, message)``."""
        return self.status, self.message


def body_limit(value: Any, where: str) -> int:
    """The ``max_body_bytes`` option of a channel, in bytes.

    Raises:
        ValueError: if ``value`` is not an integer >= 1 (see ``positive_int``).
    """
    return positive_int("max_body_bytes", value, where)


def check_media_type(content_type: str, accepted: Sequence[str]) -> str:
    """The media type of a Content-Type header (lower case, parameters dropped).

    Raises:
        RequestRefusedError: 415, naming the accepted types, if it is not one of ``accepted``.
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind not in accepted:
        raise RequestRefusedError(415, f"Content-Type has to be {' or '.join(accepted)}.")
    return kind


def check_body_size(body: bytes, limit: int) -> None:
    """Refuses a body of more than ``limit`` bytes.

    Raises:
        RequestRefusedError: 413, with the body's size and the limit in bytes.
    """
    if len(body) > limit:
        raise RequestRefusedError(
            413, f"The body is {len(body)} bytes; at most {limit} are accepted.")


def decode_utf8(body: bytes) -> str:
    """The body as text.

    Raises:
        RequestRefusedError: 400 if the body is not valid UTF-8.
    """
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestRefusedError(400, "The body is not valid UTF-8.") from None


def parse_json(text: str, what: str = "The body") -> Any:
    """``text`` parsed as JSON; ``what`` names it in the message (``"`payload`"``).

    Raises:
        RequestRefusedError: 400 with the parser's reason, if ``text`` is not valid JSON.
    """
    try:
        return json.loads(text)
    except ValueError as e:
        raise RequestRefusedError(400, f"{what} is not valid JSON ({e}).") from None


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a UTF-16 surrogate code point (U+D800..U+DFFF).

    JSON can carry one as an escape (``"\\ud800 hi"``), and Python decodes it into
    a ``str`` that no UTF-8 encoder accepts: the NLU pipeline and the tracker store
    then fail on every retry of the same message.
    """
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def valid_unicode(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (the replacement character).

    A valid pair of escaped surrogates ("\\ud83d\\ude00") becomes the one character it
    encodes; the rest of the message is kept, so the customer still gets an answer.
    """
    if not has_lone_surrogate(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def sender_id_error(field: str, value: Any) -> Optional[str]:
    """Why ``value`` cannot be a conversation id (the tracker store's ``sender_id``), or None.

    ``field`` is the key the client sent it under (``sender``, ``session_id``).
    """
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SENDER_ID_CHARS:
        return f"`{field}` has to be a string of 1 to {MAX_SENDER_ID_CHARS} characters."
    if has_lone_surrogate(value):
        return f"`{field}` has to be valid Unicode text (it holds a lone surrogate escape)."
    return None


def with_valid_unicode(on_new_message: Callable[[Any], Awaitable[Any]]
                       ) -> Callable[[Any], Awaitable[Any]]:
    """``on_new_message`` for Rasa ``UserMessage``s whose text goes through ``valid_unicode``.

    Every channel hands its messages to Rasa through this, so a lone surrogate in a
    message gets an answer instead of a 5xx that repeats on every retry.
    """
    async def handle(message: Any) -> Any:
        if isinstance(getattr(message, "text", None), str):
            message.text = valid_unicode(message.text)
        return await on_new_message(message)

    return handle


def error_response(status: int, message: str) -> HTTPResponse:
    """The channels' answer to a refused or failed request: ``{"error": message}``."""
    return response.json({"error": message}, status=status)
