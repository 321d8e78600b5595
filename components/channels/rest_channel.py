"""The REST channel with its request body checked before Rasa sees it.

credentials.yml::

    components.channels.rest_channel.ValidatedRestInput:
      max_body_bytes: 1048576

Same URL and protocol as Rasa's own ``rest`` channel
(``POST /webhooks/rest/webhook`` with ``{"sender": "...", "message": "..."}``);
Rasa's ``RestInput`` does all the work. What it does not do is check the
body: a JSON array or ``null`` makes it answer 500, a missing ``sender`` puts
every such customer into one shared conversation called "default", and a
``sender`` longer than the tracker store's 255-character ``sender_id`` column
fails when the events are saved. Here every POST is checked first, and a bad
one gets a 4xx with a JSON ``{"error": ...}`` saying what to fix:

- 415 when the Content-Type is not ``application/json``;
- 413 when the body is over ``max_body_bytes`` (default 1 MiB);
- 400 when the body is not UTF-8 JSON, not an object, or ``sender`` is not a
  string of 1-255 characters, ``message`` not a string, ``metadata`` not an
  object.

Rasa's ``RestInput`` also answers 200 with whatever messages were collected
when handling the message failed (the tracker store or the Redis lock store
unreachable, say), and logs the customer's text with the traceback. A 200 must
mean "handled and stored", so here such a failure answers 503 with
``{"error": ...}`` (the client may send the message again), and the log names
the exception, never the text.
"""
from __future__ import annotations

import logging
from asyncio import CancelledError
from contextvars import ContextVar
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from components.channels.limits import (DEFAULT_MAX_BODY_BYTES, Problem,
                                        RequestRefusedError, body_limit, check_body_size,
                                        check_media_type, decode_utf8, error_response,
                                        parse_json, sender_id_error,
                                        with_valid_unicode)

logger = logging.getLogger(__name__)

# Set when handling the request's message failed; each Sanic request runs in its own
# task, so its context holds its own value.
_failure: ContextVar[Optional[str]] = ContextVar("rest_handling_failure", default=None)


def body_error(content_type: str, body: bytes, max_body_bytes: int) -> Optional[Problem]:
    """(HTTP status, message) for a bad webhook request, or None when it is fine.

    ``max_body_bytes`` is the size limit in bytes; the checks run in the order of
    the module docstring's list, and the first that fails answers.
    """
    try:
        check_media_type(content_type, ("application/json",))
        check_body_size(body, max_body_bytes)
        payload = parse_json(decode_utf8(body))
    except RequestRefusedError as refused:
        return refused.problem
    if not isinstance(payload, dict):
        return 400, 'The body has to be a JSON object: {"sender": "...", "message": "..."}.'
    problem = sender_id_error("sender", payload.get("sender"))
    if problem:
        return 400, problem
    if not isinstance(payload.get("message"), str):
        return 400, "`message` has to be a string."
    if "metadata" in payload and not isinstance(payload["metadata"], (dict, type(None))):
        return 400, "`metadata` has to be a JSON object."
    return None


class ValidatedRestInput(RestInput):
    """Rasa's RestInput behind a check of the request body (see module docstring)."""

    @classmethod
    def name(cls) -> Text:
        """Keeps Rasa's URL: /webhooks/rest/webhook."""
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "ValidatedRestInput":
        """Reads ``max_body_bytes`` from credentials.yml.

        Raises:
            ValueError: if ``max_body_bytes`` is not a positive integer.
        """
        return cls(**(credentials or {}))

    def __init__(self, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        """Raises ValueError if ``max_body_bytes`` (bytes) is not an integer >= 1."""
        self.max_body_bytes = body_limit(max_body_bytes, "rest channel")

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        """Rasa's REST blueprint, with the body check and the failure report as middleware."""

        deliver = with_valid_unicode(on_new_message)

        async def handle(message: UserMessage) -> None:
            try:
                await deliver(message)
            except CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - reported as 503, see module docstring
                # The exception's text can hold the customer's words (SQL parameters).
                logger.error("Could not handle a message of sender %s: %s", message.sender_id,
                             type(e).__name__)
                _failure.set(type(e).__name__)

        blueprint = super().blueprint(handle)

        @blueprint.middleware("response")
        async def report_failure(request: Request, _: HTTPResponse) -> Optional[HTTPResponse]:
            reason = _failure.get()
            if reason is None:
                return None
            _failure.set(None)
            return error_response(503, f"The message could not be handled ({reason}); "
                                       f"send it again in a moment.")

        @blueprint.middleware("request")
        async def check_body(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST":
                return None
            problem = body_error(request.headers.get("content-type", ""), request.body or b"",
                                 self.max_body_bytes)
            if problem is None:
                return None
            return error_response(*problem)

        return blueprint
