"""A polite response when a custom action cannot run, instead of silence.

Rasa 3.6 runs a custom action by POSTing to the action server
(``RemoteAction.run``). When the server is down, answers 5xx or times out, that
method raises ``RasaException``; Rasa's ``MessageProcessor`` logs the exception
and carries on with no events, so the customer gets an empty reply (HTTP 200
with ``[]``) and no word of what happened. Rasa has no setting for this, so
``install`` wraps ``RemoteAction.run`` once per process: the same call, and
on such a failure the events are one ``BotUttered`` with the domain's
``response`` (endpoints.yml: ``nlg.action_failure_response``, default
``utter_service_unavailable``), its metadata naming the failed action:
``{"utter_action": ..., "action_failed": "<action name>"}``.

``ActionExecutionRejection`` (a form's validation rejecting the input) is not
a failure and is re-raised unchanged. GenerativeNLG calls ``install`` when Rasa
builds it, i.e. when a server or shell loads endpoints.yml; nothing happens at
import time.
"""
from __future__ import annotations

import logging
from typing import Any, List

from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.shared.core.events import BotUttered, Event
from rasa.shared.exceptions import RasaException

logger = logging.getLogger(__name__)

DEFAULT_RESPONSE = "utter_service_unavailable"
DEFAULT_TEXT = ("Sorry, I can't reach the system I need for that right now. Please try "
                "again in a few minutes.")  # when the domain lacks the response
_MARK = "_kestrel_action_fallback"


def install(response: str = DEFAULT_RESPONSE) -> None:
    """Wraps ``RemoteAction.run`` (idempotent; a second call only changes ``response``)."""
    current = RemoteAction.run
    original = getattr(current, _MARK, None) or current

    async def run(self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any,
                  domain: Any) -> List[Event]:
        try:
            return await original(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise
        except RasaException as e:
            logger.error("Custom action '%s' failed (%s); sent %s instead.", self.name(), e,
                         response)
            message = await nlg.generate(response, tracker, output_channel.name(),
                                         domain_responses=domain.responses) or {}
            return [BotUttered(message.get("text") or DEFAULT_TEXT,
                               metadata={"utter_action": response,
                                         "action_failed": self.name()})]

    setattr(run, _MARK, original)
    RemoteAction.run = run
