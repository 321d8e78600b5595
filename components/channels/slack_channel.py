"""Rasa's Slack channel, with malformed requests refused and replies in Block Kit mrkdwn.

credentials.yml::

    components.channels.slack_channel.SlackInput:
      slack_token: ${SLACK_BOT_TOKEN}               # xoxb-..., the bot user OAuth token
      slack_signing_secret: ${SLACK_SIGNING_SECRET} # signs every request Slack sends
      slack_channel: ${SLACK_CHANNEL}               # channel id answered without a mention
      use_threads: true              # answer in the thread of the customer's message
      errors_ignore_retry: [http_timeout]  # Slack retries of this kind get 201, unprocessed
      max_body_bytes: 1048576        # 1 MiB; larger bodies get 413
      dedupe_url: ${SLACK_DEDUPE_URL}  # empty: in memory; redis://host:port/db across replicas
      # dedupe_ttl_s: 3600             # seconds an event id is remembered
      # api_url: http://127.0.0.1:9000/api/  # a Slack-compatible Web API (tests use a fake)

Same URL and protocol as Rasa's own ``slack`` channel (``POST
/webhooks/slack/webhook``); Rasa's ``SlackInput`` checks the signature (400 when
it is wrong or its timestamp is more than 5 minutes off), answers the URL
verification challenge, ignores events that are not user messages (200),
answers retries listed in ``errors_ignore_retry`` with 201 and
``X-Slack-No-Retry: 1`` without processing them again, and handles the
interactive payload of a button press. What it does not do:

- Rasa's own channel answers 500 to a form post without a ``payload``, a JSON
  body that is not an object, or an interactive payload without ``user.id``;
  here they get 400 (checked after the signature, so only Slack sees why);
- any other signed content type got 200; here it gets 415;
- a body over ``max_body_bytes`` gets 413 before anything else is read;
- every delivery of an ``event_id`` after the first, for any retry reason and on
  any replica, gets 200 with ``X-Slack-No-Retry: 1`` and is not handled again
  (``components.channels.dedupe``); Rasa handled retries of other reasons twice;
- with ``slack_signing_secret`` empty Rasa refuses to start the whole server;
  here the server starts and the Slack webhook answers 503 saying what to set,
  so a deployment without Slack only has to leave the variables empty;
- replies are Slack mrkdwn (``to_mrkdwn``), and buttons are a Block Kit
  ``actions`` block under a ``mrkdwn`` section, so the rating buttons of a
  generated reply come back as an interactive payload with the button's value;
- a reply whose last line cites a help-center article (``answers.citation``)
  is one message: the answer in a ``mrkdwn`` section and ``Source: <url|title>``
  in a ``context`` block under it (before the buttons, if any); the message's
  ``text``, Slack's notification and screen-reader fallback, is the whole reply.

Slack's documentation behind the rules: request signing
(https://api.slack.com/authentication/verifying-requests-from-slack), Events API
retries (https://api.slack.com/apis/connections/events-api#retries), text
escaping (https://api.slack.com/reference/surfaces/formatting#escaping).
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text
from urllib.parse import parse_qs

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.slack import SlackBot
from rasa.core.channels.slack import SlackInput as RasaSlackInput
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.web.async_client import AsyncWebClient

from components.channels.dedupe import DEFAULT_TTL_S, EventIds, event_ids
from components.channels.limits import (DEFAULT_MAX_BODY_BYTES, Problem,
                                        RequestRefusedError, body_limit, check_body_size,
                                        check_media_type, decode_utf8, error_response,
                                        parse_json, with_valid_unicode)
from components.generator.answers import CITATION_LABEL, split_citation

logger = logging.getLogger(__name__)

MAX_BUTTONS = 5  # Slack shows at most 5 buttons in an actions block (Rasa's SlackBot too)
MAX_SECTION_CHARS = 3000  # Block Kit: a section's text is at most 3000 characters
ACCEPTED_TYPES = ("application/json", "application/x-www-form-urlencoded")

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(text: str) -> str:
    """Plain or Markdown text -> Slack mrkdwn.

    ``&``, ``<`` and ``>`` are escaped as Slack requires (they start Slack's own
    markup); ``**bold**`` becomes ``*bold*`` and ``[label](https://...)``
    becomes ``<https://...|label>``. Everything else is left as it is.
    """
    text = _BOLD.sub(r"*\1*", _escape(text))
    return _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1).replace('|', '/')}>", text)


def text_blocks(text: str) -> List[Dict[str, Any]]:
    """The Block Kit blocks of a reply: a mrkdwn section, and a context block with
    ``Source: <url|title>`` when the reply ends with a citation line."""
    body, cited = split_citation(text)  # without a citation, body is the text
    blocks = [{"type": "section",
               "text": {"type": "mrkdwn", "text": to_mrkdwn(body)[:MAX_SECTION_CHARS]}}]
    if cited is not None:
        link = f"<{_escape(cited.url)}|{_escape(cited.title).replace('|', '/')}>"
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"{CITATION_LABEL}{link}"}]})
    return blocks


class MrkdwnSlackBot(SlackBot):
    """Rasa's SlackBot posting mrkdwn text and Block Kit buttons, to any Web API URL."""

    def __init__(self, token: Text, slack_channel: Optional[Text] = None,
                 thread_id: Optional[Text] = None, proxy: Optional[Text] = None,
                 api_url: Optional[Text] = None) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        if api_url:
            self.client = AsyncWebClient(token, proxy=proxy, base_url=api_url)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        """One chat.postMessage per paragraph, as Rasa does, in mrkdwn; a cited reply
        is one message with its source in a context block (``text_blocks``)."""
        if split_citation(text)[1] is None:
            return await super().send_text_message(recipient_id, to_mrkdwn(text), **kwargs)
        await self._post_message(channel=self.slack_channel or recipient_id, as_user=True,
                                 text=to_mrkdwn(text), blocks=text_blocks(text))

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        """``text_blocks`` and an actions block under them; a button's value is its payload."""
        if len(buttons) > MAX_BUTTONS:
            logger.warning("Slack shows at most %d buttons; sent the text of a message "
                           "with %d buttons without them.", MAX_BUTTONS, len(buttons))
            return await self.send_text_message(recipient_id, text, **kwargs)
        blocks = [*text_blocks(text), {"type": "actions", "elements": [
            {"type": "button", "action_id": f"button-{i}",
             "text": {"type": "plain_text", "text": b["title"]}, "value": b["payload"]}
            for i, b in enumerate(buttons)]}]
        # `text` is the notification and screen-reader fallback of the blocks.
        await self._post_message(channel=self.slack_channel or recipient_id, as_user=True,
                                 text=to_mrkdwn(text), blocks=blocks)


def request_error(content_type: str, body: bytes) -> Optional[Problem]:
    """(HTTP status, message) for a signed request Rasa's handler would fail on, or None."""
    try:
        kind = check_media_type(content_type, ACCEPTED_TYPES)
        text = decode_utf8(body)
        if kind == "application/json":
            _check_event(parse_json(text))
        else:
            _check_interactive(parse_qs(text))
    except RequestRefusedError as refused:
        return refused.problem
    return None


def _check_event(event: Any) -> None:
    """Raises RequestRefusedError (400) for an Events API body that is not an object."""
    if not isinstance(event, dict) or not isinstance(event.get("event", {}), dict):
        raise RequestRefusedError(
            400, "An Events API body has to be a JSON object with an object `event`.")


def _check_interactive(fields: Dict[str, List[str]]) -> None:
    """Raises RequestRefusedError (400) for a form post without a usable ``payload``."""
    if len(fields.get("payload", [])) != 1:
        raise RequestRefusedError(
            400, "An interactive request has to carry exactly one `payload` field.")
    payload = parse_json(fields["payload"][0], "`payload`")
    if not isinstance(payload, dict):
        raise RequestRefusedError(400, "`payload` has to be a JSON object.")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise RequestRefusedError(400, "`payload.actions` has to be a non-empty list of objects.")
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        raise RequestRefusedError(400, "`payload.user.id` is missing.")
    for key in ("channel", "message"):
        if not isinstance(payload.get(key, {}), dict):
            raise RequestRefusedError(400, f"`payload.{key}` has to be an object.")


def _event_id(content_type: str, body: bytes) -> Optional[str]:
    """The ``event_id`` of an Events API callback (a checked body), or None."""
    if not content_type.lower().startswith("application/json"):
        return None  # an interactive payload (a button press) has no event id
    event_id = json.loads(body).get("event_id")
    return event_id if isinstance(event_id, str) and event_id else None


class SlackInput(RasaSlackInput):
    """Rasa's SlackInput with the checks and formatting of the module docstring."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SlackInput":
        """Rasa's Slack credentials plus ``api_url`` and ``max_body_bytes`` (bytes).

        Raises:
            ValueError: if ``max_body_bytes`` is not a positive integer, or
                ``dedupe_url`` / ``dedupe_ttl_s`` is invalid (``dedupe.event_ids``).
        """
        if not credentials:
            cls.raise_missing_credentials_exception()
        channel = super().from_credentials(credentials)  # Rasa's own keys, into cls
        channel.api_url = credentials.get("api_url") or None
        channel.max_body_bytes = body_limit(
            credentials.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES), "slack channel")
        channel.event_ids = event_ids(credentials.get("dedupe_url"),
                                      float(credentials.get("dedupe_ttl_s", DEFAULT_TTL_S)))
        return channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.api_url: Optional[Text] = None
        self.max_body_bytes = DEFAULT_MAX_BODY_BYTES
        self.event_ids: EventIds = event_ids(None)
        super().__init__(*args, **kwargs)

    def _validate_credentials(self) -> None:
        """Without a signing secret the channel stays off instead of stopping the server."""
        if not self.slack_signing_secret:
            logger.info("Slack channel off: SLACK_SIGNING_SECRET is empty (README, 'Slack').")

    @property
    def configured(self) -> bool:
        return bool(self.slack_signing_secret and self.slack_token)

    def get_output_channel(self, channel: Optional[Text] = None,
                           thread_id: Optional[Text] = None) -> OutputChannel:
        return MrkdwnSlackBot(self.slack_token, channel or self.slack_channel, thread_id,
                              self.proxy, api_url=self.api_url)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's Slack blueprint, with the checks as request middleware."""
        blueprint = super().blueprint(with_valid_unicode(on_new_message))

        @blueprint.middleware("request")
        async def check_request(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST":
                return None
            if not self.configured:
                return error_response(503, "The Slack channel is not configured: set "
                                           "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET.")
            body = request.body or b""
            try:
                check_body_size(body, self.max_body_bytes)
            except RequestRefusedError as refused:
                return error_response(*refused.problem)
            if not self.is_request_from_slack_authentic(request):
                return None  # Rasa's handler answers 400, as its documentation says
            problem = request_error(request.headers.get("content-type", ""), body)
            if problem is not None:
                status, message = problem
                logger.warning("Refused a signed Slack request (%d): %s", status, message)
                return error_response(status, message)
            event_id = _event_id(request.headers.get("content-type", ""), body)
            if event_id is None or await self.event_ids.claim(event_id):
                return None
            logger.info("Slack delivered event %s again (retry %s, reason %s): acknowledged, "
                        "not handled again.", event_id,
                        request.headers.get(self.retry_num_header, "-"),
                        request.headers.get(self.retry_reason_header, "-"))
            return HTTPResponse(status=200, headers={"X-Slack-No-Retry": "1"})

        return blueprint
