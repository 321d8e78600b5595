"""The names that the actions, the components, the feedback loop and the benchmarks share.

``actions/`` (the action server) and ``components/`` (the Rasa server) never import
each other; both import this module, which imports nothing of either. Each name
here must match domain.yml, and tests/test_shared_names.py checks that it does, so
renaming one means editing domain.yml and this file, nowhere else.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple

# The response the GPT policy predicts and the NLG fills with generated text; its
# text in domain.yml is the canned fallback (policy option `response`).
GPT_RESPONSE = "utter_gpt_reply"
# The intent the rating buttons send, the action that records it and the slot it sets.
RATE_INTENT = "rate_reply"
RATE_ACTION = "action_rate_reply"
RATING_SLOT = "reply_rating"
HELPFUL = "helpful"
NOT_HELPFUL = "not_helpful"
RATINGS = (("Helpful", HELPFUL), ("Not helpful", NOT_HELPFUL))  # (button title, rating)
# The action that hands a conversation to a person (actions/handoff.py); the console
# lists the conversations in which it ran.
HANDOFF_ACTION = "action_handoff"
# The rating invitation `rasa shell` prints instead of the buttons' menu.
RATING_PROMPT_RESPONSE = "utter_rating_prompt"
# The logger of the start-up progress lines that `make chat` shows in the terminal
# (scripts/terminal_log.py); everything else Rasa logs goes to var/shell.log there.
PROGRESS_LOGGER = "kestrel.progress"
# The key of a bot event's metadata that holds a GenerationRecord.
GENERATION_KEY = "generation"


@dataclass(frozen=True)
class GenerationRecord:
    """What the tracker stores about one ``GPT_RESPONSE`` message (``metadata["generation"]``).

    Written by the NLG (components/nlg/generative_nlg.py), read by the rating action
    (actions/ratings.py), the feedback loop's export and analytics, and the load test.
    Fields other than ``generated`` and ``fallback`` are absent from older events,
    so readers use ``from_metadata``, which tolerates missing and unknown keys.

    The stored dict has three shapes, all produced by ``to_dict``:

    - no decoding (no generator, no user turn, empty message): ``generated``,
      ``fallback``, ``reply_id``;
    - decoding raised, or the NLG stopped waiting for it: the same plus ``model_version``;
    - decoded: ``generated``, ``fallback`` (None when the text was sent),
      ``guardrails`` (possibly empty), the six decoding fields, ``reply_id``.

    Replies since the help center (2026-12) also carry ``mode``, and ``sources``
    and ``groundedness`` where the reply was checked or came from a passage.

    Fields are in the order the NLG has always stored the keys in.
    """

    # Stored even when None: a decoded reply's dict has always said "fallback": None.
    _ALWAYS_STORED: ClassVar[Tuple[str, ...]] = ("generated", "fallback")

    generated: bool  # True when the text was generated and passed the guardrails
    # Why the canned text was sent: "no_generator", "no_user_turn", "empty_message",
    # "timeout", "error" (before or during decoding), "empty", "blocked" (guardrails),
    # "unsupported" (the groundedness check), "not_an_answer" (a reply written from
    # passages that states no fact), or an inference server's failure
    # ("server_unavailable", "server_unreachable", "server_timeout", "server_malformed",
    # "server_http_<status>"; components/generator/server.py).
    fallback: Optional[str] = None
    # What post-processing changed, in order; None (not stored) when nothing was decoded.
    guardrails: Optional[List[str]] = None
    model_id: Optional[str] = None  # checkpoint name, e.g. "kestrel-gpt"
    model_version: Optional[str] = None  # e.g. "kestrel-gpt-3f2a9c1d0b7e"
    prompt_tokens: Optional[int] = None  # tokens
    generated_tokens: Optional[int] = None  # tokens
    latency_ms: Optional[float] = None  # ms, tokenisation + decoding
    hit_time_budget: Optional[bool] = None  # decoding stopped at max_time_s
    # How the reply was made: "generated" (the model's text, checked), "extractive"
    # (sentences of a help-center passage), "retrieved" (a reply the team wrote for a
    # close chit-chat message, sent as written) or "fallback" (the canned text).
    mode: Optional[str] = None
    # What the reply used: help-center passages (id, slug, title, url, scores), or for
    # "retrieved" the written reply (id "<file>#<n>", its question, dense).
    sources: Optional[List[Dict[str, Any]]] = None
    # The groundedness check: {"grounded": bool, "unsupported": [sentences]}.
    groundedness: Optional[Dict[str, Any]] = None
    reply_id: Optional[str] = None  # 16 hex characters; a rating refers to it
    # A reply the generator wrote from the passages but that was not sent, when the
    # extractive answer or the canned text replaced it: {"reason": why (as ``fallback``),
    # "text": the reply after the guardrails, "" when none came}.
    rejected: Optional[Dict[str, Any]] = None
    # What the help center was searched with when it was not the last message alone: a
    # follow-up ("and express?") joined to the messages before it
    # (components/generator/answers.py, ``contextual_question``).
    query: Optional[str] = None
    # True when that follow-up's answer only repeated the last reply, so it was sent
    # opened with "the help center says no more ..." (answers.REPEAT_LEAD): a gap.
    repeated: Optional[bool] = None
    # The article linked after the canned text when no passage was relevant but the best
    # came close (components/generator/answers.py, ``suggestion``): its source record
    # (id, slug, title, url, scores). The reply is still no answer (``mode`` "fallback").
    suggestion: Optional[Dict[str, Any]] = None

    @property
    def answered(self) -> bool:
        """True when the customer got an answer, not the canned text.

        Generated, extractive (help-center) and retrieved (written) replies are
        answers; records older than ``mode`` are answers when they were generated.
        """
        if self.mode is not None:
            return self.mode != "fallback"
        return bool(self.generated)

    def to_dict(self) -> Dict[str, Any]:
        """The dict stored in the event's metadata.

        None fields are left out, except ``generated`` and ``fallback``, which
        are always there.
        """
        return {k: v for k, v in asdict(self).items()
                if v is not None or k in self._ALWAYS_STORED}

    @classmethod
    def from_metadata(cls, metadata: Optional[Mapping[str, Any]]) -> Optional["GenerationRecord"]:
        """The record in a bot event's ``metadata``, or None when it has none.

        Unknown keys are ignored and missing ones take the field defaults
        (``generated`` False), so ``from_metadata({GENERATION_KEY: d}).to_dict()``
        is ``d`` for every dict the NLG stores.
        """
        raw = (metadata or {}).get(GENERATION_KEY)
        if not isinstance(raw, Mapping):
            return None
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values.setdefault("generated", False)
        return cls(**values)
