"""GenerativeNLG: writes the GPT policy's reply off the event loop.

Configured in endpoints.yml::

    nlg:
      type: components.nlg.generative_nlg.GenerativeNLG
      response: utter_gpt_reply   # the response the GPT policy predicts
      max_turns: 6                # conversation turns in the prompt
      max_batch_size: 8           # concurrent replies decoded together, at most
      torch_threads: 1            # torch intra-op threads of the decode worker; null: torch's default
      decoding: {do_sample: false, max_new_tokens: 48, max_time_s: 2.0}
      guardrails: {max_chars: 320, extra_blocklist: []}
      rating_buttons: true        # Helpful / Not helpful buttons on generated replies
      action_failure_response: utter_service_unavailable  # when the action server fails

Every response other than ``response`` is rendered from domain.yml exactly as
Rasa's own TemplatedNaturalLanguageGenerator does. For ``response`` the
conversation is sent to the generator in a worker thread (Rasa 3.6 runs
policies synchronously in the event loop, but ``NaturalLanguageGenerator.generate``
is awaited, so this is where slow work can leave the loop free), the text goes
through ``components.generator.guardrails``, and the result carries a ``generation``
dict that Rasa stores as the BotUttered event's metadata. The response's own
text in domain.yml is the fallback when the generator is missing, fails,
overruns its budget, or its text is rejected.

Replies are decoded by one worker thread. Requests that arrive while it is busy
are queued and decoded together in one batch of up to ``max_batch_size``
(``components.generator.batching``); each caller awaits its own future with the
per-reply timeout (``max_time_s`` + ``timeout_grace_s``), so a caller that
waited too long gets the fallback whether its request was still queued or
being decoded, and a failed batch gives every caller in it the fallback.

Every ``response`` message (generated or fallback) gets a ``reply_id`` in its
``generation`` dict: 16 hex characters, unique per reply, that a rating refers
to. A reply that was actually generated also gets two buttons, "Helpful" and
"Not helpful", whose payloads send the ``rate_reply`` intent with the
``rating`` ("helpful" / "not_helpful") and ``reply_id`` entities, unless
``rating_buttons`` is false. actions/feedback.py stores the rating.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Text

from rasa.core.nlg import NaturalLanguageGenerator, TemplatedNaturalLanguageGenerator
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from components.rasa_patches import action_fallback
from components.generator import registry
from components.generator.batching import RequestBatcher
from components.generator.config import GenerationConfig
from components.generator.prompt import Turn
from components.generator.guardrails import GuardrailConfig, postprocess

logger = logging.getLogger(__name__)

DEFAULT_FALLBACK = "Sorry, I can't answer that one. I can help with orders, returns and shipping."
_OPTIONS = {"response", "max_turns", "decoding", "guardrails", "timeout_grace_s",
            "rating_buttons", "action_failure_response", "max_batch_size", "torch_threads"}
RATE_INTENT = "rate_reply"  # the intent the rating buttons send (domain.yml)
RATINGS = (("Helpful", "helpful"), ("Not helpful", "not_helpful"))  # (title, rating)


class NLGConfigError(RasaException):
    """The ``nlg`` section of endpoints.yml is invalid; the message names the key."""


def new_reply_id() -> str:
    """A fresh id for one reply: 16 lowercase hex characters (64 random bits)."""
    return uuid.uuid4().hex[:16]


def rating_buttons(reply_id: str) -> List[Dict[str, str]]:
    """The "Helpful" / "Not helpful" buttons that rate the reply ``reply_id``.

    Each payload is ``/rate_reply{"rating": ..., "reply_id": ...}``, which Rasa
    parses into the ``rate_reply`` intent with both entities, without NLU.
    """
    return [
        {"title": title,
         "payload": f"/{RATE_INTENT}" + json.dumps({"rating": rating, "reply_id": reply_id})}
        for title, rating in RATINGS
    ]


def conversation_turns(tracker: DialogueStateTracker) -> List[Turn]:
    """User and bot texts of the current session, oldest first.

    User messages with no text (``None``) are skipped, and so are button
    payloads (``/intent{...}``, e.g. a rating): the customer did not type them.
    An empty string is kept, so the generator answers it like any other message.
    """
    turns = []
    for event in tracker.applied_events():
        if isinstance(event, UserUttered) and event.text is not None:
            if event.text.startswith(INTENT_MESSAGE_PREFIX):
                continue
            turns.append(Turn("user", event.text))
        elif isinstance(event, BotUttered) and event.text:
            turns.append(Turn("assistant", event.text))
    return turns


def _set_torch_threads(n: Optional[int]) -> None:
    """Sets torch's intra-op thread count in the decode worker when it starts."""
    if n is not None:
        import torch  # noqa: PLC0415 - already loaded by the generator

        torch.set_num_threads(n)


class GenerativeNLG(NaturalLanguageGenerator):
    """Domain responses, plus generated text for the GPT policy's response."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None,
                 domain: Optional[Domain] = None) -> None:
        """Reads the options from endpoints.yml.

        Raises:
            NLGConfigError: on an unknown option, an invalid decoding or
                guardrail value, a ``rating_buttons`` that is not a boolean, or
                a ``max_batch_size`` or ``torch_threads`` that is not an integer >= 1.
        """
        options: Dict[str, Any] = dict(endpoint_config.kwargs) if endpoint_config else {}
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise NLGConfigError(
                f"Unknown option(s) {unknown} in the `nlg` section of endpoints.yml; "
                f"valid options are {sorted(_OPTIONS)}."
            )
        try:
            self.decoding = GenerationConfig.from_dict(options.get("decoding"))
            self.guardrails = GuardrailConfig.from_dict(options.get("guardrails"))
        except ValueError as e:
            raise NLGConfigError(f"Invalid `nlg` option in endpoints.yml: {e}") from e
        self.response = options.get("response", "utter_gpt_reply")
        self.max_turns = int(options.get("max_turns", 6))
        # s; extra wait past max_time_s for queueing and tokenisation
        self.timeout_grace_s = float(options.get("timeout_grace_s", 1.0))
        self.rating_buttons = options.get("rating_buttons", True)
        if not isinstance(self.rating_buttons, bool):
            raise NLGConfigError(
                f"Invalid `nlg` option in endpoints.yml: rating_buttons has to be true "
                f"or false, got {self.rating_buttons!r}."
            )
        self.max_batch_size = options.get("max_batch_size", 8)
        if (not isinstance(self.max_batch_size, int) or isinstance(self.max_batch_size, bool)
                or self.max_batch_size < 1):
            raise NLGConfigError(
                f"Invalid `nlg` option in endpoints.yml: max_batch_size has to be an "
                f"integer >= 1, got {self.max_batch_size!r}."
            )
        # One torch thread leaves the other core to the event loop (scripted turns)
        # while a batch decodes, and decodes faster than two threads on a busy
        # 2-core machine (docs/benchmarks.md, "Generator throughput").
        self.torch_threads = options.get("torch_threads", 1)
        if self.torch_threads is not None and (
                not isinstance(self.torch_threads, int) or isinstance(self.torch_threads, bool)
                or self.torch_threads < 1):
            raise NLGConfigError(
                f"Invalid `nlg` option in endpoints.yml: torch_threads has to be an "
                f"integer >= 1 or null, got {self.torch_threads!r}."
            )
        # Rasa builds the NLG once per loaded endpoints.yml: the place to make a
        # failed custom action answer politely (components/rasa_patches/action_fallback.py).
        action_fallback.install(options.get("action_failure_response",
                                            action_fallback.DEFAULT_RESPONSE))
        self.templated = TemplatedNaturalLanguageGenerator(domain.responses if domain else {})
        self._pool: Optional[ThreadPoolExecutor] = None
        self._batcher: Optional[RequestBatcher] = None

    def _executor(self) -> ThreadPoolExecutor:
        # One worker: two concurrent decodes on 2 cores only slow each other.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpt-nlg",
                                            initializer=_set_torch_threads,
                                            initargs=(self.torch_threads,))
        return self._pool

    def batcher(self) -> RequestBatcher:
        """The queue in front of the worker thread (``batch_sizes`` records each decode)."""
        if self._batcher is None:
            self._batcher = RequestBatcher(self._executor(), self.max_batch_size)
        return self._batcher

    async def generate(self, utter_action: Text, tracker: DialogueStateTracker,
                       output_channel: Text, **kwargs: Any) -> Optional[Dict[Text, Any]]:
        """Renders ``utter_action``; generates text for the GPT policy's response.

        The generated response's message carries ``generation`` (the metadata,
        with a new ``reply_id``) and, when the text was generated and
        ``rating_buttons`` is on, the two rating buttons.
        """
        if kwargs.get("domain_responses") is not None:
            # Rasa builds the NLG before the domain is loaded; it passes the
            # responses with every call instead.
            self.templated.responses = kwargs["domain_responses"]
        message = await self.templated.generate(utter_action, tracker, output_channel, **kwargs)
        if utter_action != self.response:
            return message
        message = dict(message or {})
        fallback = message.get("text") or DEFAULT_FALLBACK
        text, meta = await self._reply(tracker, fallback)
        meta["reply_id"] = new_reply_id()
        message.update(text=text, generation=meta)
        if meta.get("generated") and self.rating_buttons:
            message["buttons"] = rating_buttons(meta["reply_id"])
        return message

    async def _reply(self, tracker: DialogueStateTracker, fallback: str):
        """Has the worker thread decode the reply (batched); post-processes its text."""
        generator = registry.active()
        turns = conversation_turns(tracker)
        if generator is None or not turns or turns[-1].role != "user":
            reason = "no_generator" if generator is None else "no_user_turn"
            return fallback, {"generated": False, "fallback": reason}
        if not turns[-1].text.strip():
            # Nothing to answer: the canned text asks what the customer needs.
            return fallback, {"generated": False, "fallback": "empty_message"}
        # Cancelled by wait_for on timeout: a request not yet taken is then dropped.
        call = asyncio.wrap_future(
            self.batcher().submit(generator, turns, self.decoding, self.max_turns))
        try:
            generation = await asyncio.wait_for(
                call, timeout=self.decoding.max_time_s + self.timeout_grace_s)
        except asyncio.TimeoutError:
            logger.warning("Generator exceeded its %.1f s budget; sent the fallback.",
                           self.decoding.max_time_s)
            return fallback, {"generated": False, "fallback": "timeout",
                              "model_version": generator.model_version}
        except Exception:  # noqa: BLE001 - any model failure must not end the conversation
            logger.exception("Generator failed; sent the fallback.")
            return fallback, {"generated": False, "fallback": "error",
                              "model_version": generator.model_version}
        result = postprocess(generation.text, self.guardrails, fallback,
                             timed_out=generation.hit_time_budget)
        meta = {"generated": result.fallback is None, "fallback": result.fallback,
                "guardrails": result.actions, **generation.metadata()}
        return result.text, meta
