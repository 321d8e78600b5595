"""GenerativeNLG: writes the GPT policy's reply off the event loop.

Configured in endpoints.yml (options: ``components.nlg.config.NLGConfig``)::

    nlg:
      type: components.nlg.generative_nlg.GenerativeNLG
      max_turns: 6                # conversation turns in the prompt
      max_batch_size: 8           # concurrent replies decoded together, at most
      torch_threads: 1            # torch threads of the decode worker; null: torch's default
      decoding: {do_sample: false, max_new_tokens: 48, max_time_s: 2.0}
      guardrails: {max_chars: 320, extra_blocklist: []}
      rating_buttons: true        # Helpful / Not helpful buttons on generated replies
      action_failure_response: utter_service_unavailable  # when the action server fails
      server: {url: "${LLM_URL}", model: "${LLM_MODEL}"}  # optional: an inference server

The response it generates text for is the GPT policy's ``response`` option
(config.yml, default ``utter_gpt_reply``), which the policy registers with the
model it loads (``components.generator.registry``); endpoints.yml no longer
names it. Every other response is rendered from domain.yml exactly as
Rasa's own TemplatedNaturalLanguageGenerator does. For ``response`` the
conversation is sent to the generator in a worker thread (Rasa 3.6 runs
policies synchronously in the event loop, but ``NaturalLanguageGenerator.generate``
is awaited, so this is where slow work can leave the loop free), the text goes
through ``components.generator.guardrails``, and the result carries a ``generation``
dict (``shared_names.GenerationRecord``) that Rasa stores as the BotUttered
event's metadata. The response's own text in domain.yml is the fallback when
the generator is missing, fails, overruns its budget, or its text is rejected
(the guardrails, the fluency gate for the built-in model, the groundedness check);
it is the only copy of that text (the policy refuses to train without the
response).

With ``server`` set, an OpenAI-compatible inference server writes the replies
instead of the archive's model (``components.generator.server``): awaited in the
event loop (an HTTP call, no CPU work), with the same budget, guardrails, check
and fallback, and a circuit breaker in front of a server that keeps failing.

Otherwise replies are decoded by one worker thread. Requests that arrive while it is busy
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
``rating_buttons`` is false. The rating action in actions/ stores the rating;
the names are in shared_names.py.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from components.generator import answers, registry
from components.generator.batching import RequestBatcher
from components.generator.guardrails import postprocess, unknown_sentences
from components.generator.prompt import Turn
from components.generator.retrieval import Hit
from components.generator.server import ServerError, ServerGenerator
from components.nlg.config import NLGConfig, NLGConfigError
from components.rasa_patches import action_fallback, shell_ratings
from shared_names import RATE_INTENT, RATING_PROMPT_RESPONSE, RATINGS, GenerationRecord

logger = logging.getLogger(__name__)

# Why the built-in model's conversational reply was not sent: a sentence of it is
# none the model learnt (guardrails.unknown_sentences, the fluency gate).
NOT_FLUENT = "not_fluent"

__all__ = ["GenerativeNLG", "NLGConfigError", "conversation_turns", "new_reply_id",
           "rating_buttons"]


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


def _canned(fallback: str, reason: str) -> Tuple[str, GenerationRecord]:
    """(the canned ``fallback`` text, its record saying ``reason``)."""
    return fallback, GenerationRecord(generated=False, fallback=reason, mode=answers.FALLBACK)


def _failed(reason: str, model) -> GenerationRecord:
    """The FALLBACK record of a reply that was not decoded: ``reason`` and the model's version."""
    return GenerationRecord(generated=False, fallback=reason, mode=answers.FALLBACK,
                            model_version=getattr(model, "model_version", None),
                            rejected={"reason": reason, "text": ""})


class GenerativeNLG(TemplatedNaturalLanguageGenerator):
    """Domain responses, plus generated text for the GPT policy's response.

    A TemplatedNaturalLanguageGenerator, so that Rasa's Agent sets ``responses``
    to the domain's when it loads a model (rasa/core/agent.py, ``load_model``):
    Rasa builds the NLG before the domain exists, and responses that a custom
    action names (``response="utter_..."``) reach ``generate`` without the
    ``domain_responses`` that Rasa passes for its own utter actions.
    """

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None,
                 domain: Optional[Domain] = None) -> None:
        """Reads and validates the options of endpoints.yml's ``nlg`` section.

        Raises:
            NLGConfigError: on an unknown or removed option (``response``) or an
                invalid value; the message names the key (``NLGConfig.from_dict``).
        """
        self.config = NLGConfig.from_dict(endpoint_config.kwargs if endpoint_config else None)
        # Rasa builds the NLG once per loaded endpoints.yml: the place to make a
        # failed custom action answer politely (components/rasa_patches/action_fallback.py).
        action_fallback.install(self.config.action_failure_response)
        # ... and to print the rating invitation as text in `rasa shell`.
        shell_ratings.install(self._rating_prompt)
        super().__init__(domain.responses if domain else {})
        self._pool: Optional[ThreadPoolExecutor] = None
        self._batcher: Optional[RequestBatcher] = None
        # An inference server writes the replies instead of the archive's model.
        self._server = (ServerGenerator(self.config.server)
                        if self.config.server is not None else None)

    async def close_connections(self) -> None:
        """Closes the inference server's HTTP connections of the running event loop.

        The next reply opens new ones; a server process closes them on exit.
        """
        if self._server is not None:
            await self._server.close()

    def _rating_prompt(self) -> Optional[str]:
        """The text of ``RATING_PROMPT_RESPONSE`` in the loaded domain, or None."""
        variants = (self.responses or {}).get(RATING_PROMPT_RESPONSE) or [{}]
        return variants[0].get("text")

    def _executor(self) -> ThreadPoolExecutor:
        # One worker: two concurrent decodes on 2 cores only slow each other.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpt-nlg",
                                            initializer=_set_torch_threads,
                                            initargs=(self.config.torch_threads,))
        return self._pool

    def batcher(self) -> RequestBatcher:
        """The queue in front of the worker thread (``batch_sizes`` records each decode)."""
        if self._batcher is None:
            self._batcher = RequestBatcher(self._executor(), self.config.max_batch_size)
        return self._batcher

    async def generate(self, utter_action: Text, tracker: DialogueStateTracker,
                       output_channel: Text, **kwargs: Any) -> Optional[Dict[Text, Any]]:
        """Renders ``utter_action``; generates text for the GPT policy's response.

        The generated response (``registry.response()``) gets the domain's text
        as its fallback; its message carries ``generation``
        (``GenerationRecord.to_dict()``, with a new ``reply_id``) and, when the
        text was generated and ``rating_buttons`` is on, the two rating buttons.
        """
        if kwargs.get("domain_responses") is not None:
            # Rasa's own utter actions pass the responses of the domain in use.
            self.responses = kwargs["domain_responses"]
        message = await super().generate(utter_action, tracker, output_channel, **kwargs)
        if utter_action != registry.response():
            return message
        message = dict(message or {})
        fallback = message.get("text")
        if not fallback:
            # Only a hand-built domain gets here: the policy refuses to train without
            # the response, whose text is the one copy of the canned reply.
            logger.error("The domain has no text for '%s'; a reply that cannot be generated "
                         "is sent empty. Give the response a text in domain.yml.", utter_action)
            fallback = ""
        text, record = await self._reply(tracker, fallback)
        record = dataclasses.replace(record, reply_id=new_reply_id())
        message.update(text=text, generation=record.to_dict())
        if record.mode in (answers.GENERATED, answers.EXTRACTIVE) and self.config.rating_buttons:
            message["buttons"] = rating_buttons(record.reply_id)
        return message

    async def _reply(self, tracker: DialogueStateTracker,
                     fallback: str) -> Tuple[str, GenerationRecord]:
        """Answers the last user turn: from the help center, a written reply, or the generator.

        A question with a relevant help-center passage gets, when the generator
        writes answers (``NLGConfig.generates_answers``: an inference server, a
        model trained on passages, or ``answers.generate: true``), the
        generator's reply written from the extractive answer's sentences
        (``answers.answer_hit``), sent only if the groundedness check passes
        against them; otherwise the extractive answer (``answers.extractive``).
        Without a relevant passage, a message close to one the team wrote a
        reply for gets that reply as written (``answers.written``); so does a
        message closer to such a one than to the best passage, when no known
        question matched. Otherwise
        the generator answers conversationally, and the check lets its text
        through only when it states nothing without a source; the built-in
        model's text also has to pass the fluency gate (``NOT_FLUENT``).
        A follow-up (``answers.contextual_question``) whose extractive answer
        would repeat the last reply is sent opened with ``answers.REPEAT_LEAD``
        ("the help center says no more ..."), its record ``repeated``.

        Returns:
            (text to send, its record without ``reply_id``); ``text`` is
            ``fallback`` when no answer could be made or the reply failed a check.
        """
        generator = registry.active()
        writes = self._server is not None or generator is not None
        turns = conversation_turns(tracker)

        if not writes and registry.retriever() is None and registry.replies() is None:
            return _canned(fallback, "no_generator")
        if not turns or turns[-1].role != "user":
            return _canned(fallback, "no_user_turn")
        if not turns[-1].text.strip():
            # Nothing to answer: the canned text asks what the customer needs.
            return _canned(fallback, "empty_message")
        message = turns[-1].text
        question = message
        if self.config.answers.follow_ups:
            question = answers.contextual_question([t.text for t in turns if t.role == "user"])
        text, record = await self._answer(turns, question, fallback, writes, generator)
        if question != message:  # a follow-up, searched with the messages before it
            record = dataclasses.replace(record, query=question)
            previous = next((t.text for t in reversed(turns) if t.role == "assistant"), "")
            if record.mode == answers.EXTRACTIVE and answers.repeats(text, previous):
                # The article says no more than the last reply did: say so.
                text, record = answers.repeated(text), dataclasses.replace(record, repeated=True)
        return text, record

    async def _answer(self, turns: List[Turn], question: str, fallback: str, writes: bool,
                      generator) -> Tuple[str, GenerationRecord]:
        """``_reply`` once the turns are checked: ``question`` is what the help center is
        searched with (the last message, or with the ones before it for a follow-up)."""
        hits, answer = await self._from_help_center(question)
        if hits and not hits[0].question:
            # Closer to a message the team wrote a reply for than to any passage, and no
            # known question matched: chit-chat or frustration, not a store question
            # ("this is taking way too long, i'm fed up" reached an order-processing
            # passage at cosine 0.46 once the retrieval encoder was tuned; its written
            # reply's question is at 0.65). No held-out store question is affected
            # (bench/answers.py).
            written = await self._written_reply(turns[-1].text, above=hits[0].dense)
            if written is not None:
                hits, answer = [], written
        reads = self._server is None and generator is not None and generator.reads_passages
        if hits and writes and self.config.generates_answers(reads):
            given = [answers.answer_hit(answer, hits)] if answer is not None else hits
            text, record = await self._generated(turns, given, fallback, from_passages=True)
            if record.mode == answers.GENERATED and answer is not None:
                # Written from the extractive answer's sentences: the passages they came from.
                return text, dataclasses.replace(record, sources=list(answer.sources))
            if record.mode == answers.GENERATED or answer is None:
                return text, record
            # The extractive answer replaces a reply that failed or was not grounded.
            return answer.text, GenerationRecord(
                generated=False, mode=answer.mode, sources=list(answer.sources),
                groundedness=answer.groundedness, model_id=record.model_id,
                model_version=record.model_version, latency_ms=record.latency_ms,
                rejected=record.rejected)
        if answer is None and not hits:
            answer = await self._written_reply(turns[-1].text)
        if answer is not None:
            return answer.text, GenerationRecord(
                generated=False, mode=answer.mode, sources=list(answer.sources),
                groundedness=answer.groundedness)
        if not writes:
            return await self._with_suggestion(question, *_canned(fallback, "no_generator"))
        text, record = await self._generated(turns, hits, fallback, from_passages=False)
        record = dataclasses.replace(record, rejected=None)
        if record.mode == answers.FALLBACK:
            return await self._with_suggestion(question, text, record)
        return text, record

    async def _with_suggestion(self, question: str, text: str,
                               record: GenerationRecord) -> Tuple[str, GenerationRecord]:
        """The canned ``text`` with the closest article linked (``answers.suggestion``),
        or as it is when none came close or the search failed."""
        config = self.config.answers
        try:
            hit = await asyncio.to_thread(answers.suggestion, registry.retriever(), question,
                                          config)
        except Exception:  # a broken index must not end the conversation
            logger.exception("Help-center search for a related article failed.")
            return text, record
        if hit is None:
            return text, record
        return (answers.suggested(text, hit, config),
                dataclasses.replace(record, suggestion=answers.source_record(hit, config)))

    async def _decode(self, generator, turns: List[Turn], passages: List[str]):
        """The reply's ``Generation``: from the server, or the worker thread (batched).

        Raises:
            asyncio.TimeoutError: past ``max_time_s`` + ``timeout_grace_s``.
            ServerError: when the server gives no usable reply (or its circuit is open).
            Exception: whatever decoding raised.
        """
        budget = self.config.decoding.max_time_s + self.config.timeout_grace_s
        if self._server is not None:
            call = self._server.agenerate(turns, self.config.decoding, self.config.max_turns,
                                          passages)
        else:
            # Cancelled by wait_for on timeout: a request not yet taken is then dropped.
            call = asyncio.wrap_future(self.batcher().submit(
                generator, turns, self.config.decoding, self.config.max_turns, passages))
        return await asyncio.wait_for(call, timeout=budget)

    async def _generated(self, turns: List[Turn], hits: List[Hit], fallback: str,
                         from_passages: bool) -> Tuple[str, GenerationRecord]:
        """Decodes, post-processes and checks one reply against ``hits``.

        With ``from_passages`` the hits' passages are in the prompt
        (``answers.prompt_passages``). Returns the reply and its GENERATED
        record, or ``fallback`` and a FALLBACK record whose ``fallback`` says
        why; its ``rejected`` then holds that reason and the text that was not
        sent (after the guardrails; "" when none came or they blocked it).
        """
        generator = registry.active()
        model = self._server or generator
        passages = answers.prompt_passages(hits) if from_passages else []
        try:
            generation = await self._decode(generator, turns, passages)
        except asyncio.TimeoutError:
            logger.warning("Generator exceeded its %.1f s budget; sent the fallback.",
                           self.config.decoding.max_time_s)
            return fallback, _failed("timeout", model)
        except ServerError as e:
            logger.warning("Inference server gave no reply (%s); sent the fallback.", e)
            return fallback, _failed(e.reason, model)
        except Exception:
            logger.exception("Generator failed; sent the fallback.")
            return fallback, _failed("error", model)
        result = postprocess(generation.text, self.config.guardrails, fallback,
                             timed_out=generation.hit_time_budget)
        if result.fallback is not None:
            return fallback, GenerationRecord(
                generated=False, fallback=result.fallback, mode=answers.FALLBACK,
                guardrails=result.actions, **generation.metadata(),
                rejected={"reason": result.fallback, "text": ""})
        known = None if self._server is not None else generator.known_sentences
        if not from_passages and known is not None and unknown_sentences(result.text, known):
            # The built-in model's own words are word salad: only a reply made of
            # sentences it learnt from the team's replies is sent (the fluency gate).
            return fallback, GenerationRecord(
                generated=False, fallback=NOT_FLUENT, mode=answers.FALLBACK,
                guardrails=result.actions, **generation.metadata(),
                rejected={"reason": NOT_FLUENT, "text": result.text})
        checked = answers.decide(result.text, hits, self.config.answers,
                                 needs_fact=from_passages)
        if checked.mode != answers.GENERATED:
            return fallback, GenerationRecord(
                generated=False, fallback=checked.fallback, mode=answers.FALLBACK,
                guardrails=result.actions, groundedness=checked.groundedness,
                **generation.metadata(),
                rejected={"reason": checked.fallback, "text": result.text})
        return checked.text, GenerationRecord(
            generated=True, guardrails=result.actions, **generation.metadata(),
            mode=checked.mode, sources=list(checked.sources) or None,
            groundedness=checked.groundedness)

    async def _written_reply(self, message: str,
                             above: float = -1.0) -> Optional[answers.Answer]:
        """The team's written reply closest to ``message`` (off the event loop), or None.

        None without written replies, when none is close enough
        (``answers.min_reply_similarity``, and more than ``above``: a cosine
        similarity), or when the lookup fails.
        """
        bank = registry.replies()
        if bank is None:
            return None
        threshold = max(self.config.answers.min_reply_similarity, above + 1e-6)
        try:
            match = await asyncio.to_thread(bank.nearest, message, threshold)
        except Exception:  # a broken bank must not end the conversation
            logger.exception("Written-reply lookup failed; the generator answers instead.")
            return None
        return answers.written(match) if match is not None else None

    async def _from_help_center(self, question: str):
        """(relevant passages, the extractive answer or None), off the event loop.

        Without a help-center index, or with no passage relevant to
        ``question``, there is no extractive answer and the generator answers.
        """
        index = registry.retriever()
        if index is None:
            return [], None
        config = self.config.answers
        try:
            hits = await asyncio.to_thread(answers.retrieve, index, question, config)
            if not hits:
                return [], None
            answer = await asyncio.to_thread(answers.extractive, question, hits, index, config)
        except Exception:  # a broken index must not end the conversation
            logger.exception("Help-center retrieval failed; the generator answers instead.")
            return [], None
        return hits, answer
