"""From a conversation's stored events to generated turns, ratings and sessions.

Pure functions over event dicts (``store.TrackerStoreReader.conversations``),
no Rasa and no database. The contract with the running bot:

- a generated turn is a ``bot`` event whose ``metadata.generation`` holds a
  ``reply_id`` (written by ``components.nlg.generative_nlg.GenerativeNLG``);
- a rating is a ``slot`` event for ``reply_rating`` whose value is
  ``{"reply_id", "rating": "helpful" | "not_helpful", "model_version", "rated_at"}``
  (written by the rating action in actions/); the latest rating of a reply wins.

The names (slot, ratings, metadata key, actions) come from shared_names.py,
which the bot's actions and components import too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from components.generator.prompt import Turn
from shared_names import (
    GENERATION_KEY, GPT_RESPONSE, HELPFUL, NOT_HELPFUL, RATE_ACTION, RATING_SLOT,
)

RATINGS = (HELPFUL, NOT_HELPFUL)  # the values a rating slot may hold
SESSION_BREAKS = ("session_started", "restart")

Event = Dict[str, Any]


@dataclass
class GeneratedTurn:
    """One reply of the GPT policy, its context and its rating."""

    sender_id: str
    reply_id: str
    context: List[Turn]  # the turns before the reply, oldest first, ending with a user turn
    reply: str  # the text sent, after post-processing
    generation: Dict[str, Any]  # metadata.generation of the bot event
    timestamp: float  # s since epoch, of the bot event
    rating: Optional[str] = None  # "helpful", "not_helpful" or None
    rated_at: Optional[float] = None  # s since epoch

    @property
    def model_version(self) -> Optional[str]:
        return self.generation.get("model_version")

    @property
    def generated(self) -> bool:
        """False when the canned fallback was sent instead of generated text."""
        return bool(self.generation.get("generated"))


@dataclass
class Conversation:
    """The usable content of one sender's events."""

    sender_id: str
    sessions: List[List[Event]]
    generated: List[GeneratedTurn]
    orphan_ratings: List[Dict[str, Any]] = field(default_factory=list)  # unknown reply_id


def split_sessions(events: Sequence[Event]) -> List[List[Event]]:
    """Events cut at ``session_started`` and ``restart`` (each starts a new session)."""
    sessions: List[List[Event]] = [[]]
    for event in events:
        if event["event"] in SESSION_BREAKS and sessions[-1]:
            # Rasa writes action_session_start *before* session_started: it opens
            # the new session, it does not close the old one.
            last = sessions[-1][-1]
            opener = last["event"] == "action" and last.get("name") == "action_session_start"
            sessions.append([sessions[-1].pop()] if opener else [])
        sessions[-1].append(event)
    return [s for s in sessions if s]


def _is_generated_reply(event: Event) -> bool:
    generation = (event.get("metadata") or {}).get(GENERATION_KEY)
    return isinstance(generation, dict) and bool(generation.get("reply_id"))


def parse_conversation(sender_id: str, events: Sequence[Event], max_turns: int = 6
                       ) -> Conversation:
    """Generated turns with their context and latest rating; ratings of unknown replies.

    ``max_turns`` caps the context (user and assistant messages) kept per turn.
    """
    sessions = split_sessions(events)
    turns_by_id: Dict[str, GeneratedTurn] = {}
    ratings: List[Dict[str, Any]] = []
    for session in sessions:
        history: List[Turn] = []
        for event in session:
            kind = event["event"]
            if kind == "user" and isinstance(event.get("text"), str):
                if event["text"].startswith("/"):
                    continue  # a button payload such as /rate_reply{...}, not words
                history.append(Turn("user", event["text"]))
            elif kind == "bot" and isinstance(event.get("text"), str) and event["text"]:
                last_user = max((i for i, t in enumerate(history) if t.role == "user"),
                                default=None)
                if _is_generated_reply(event) and last_user is not None:
                    # A scripted message may come between the question and the
                    # reply; the context ends at the question, as the prompt did.
                    generation = dict(event["metadata"][GENERATION_KEY])
                    turns_by_id[generation["reply_id"]] = GeneratedTurn(
                        sender_id=sender_id, reply_id=generation["reply_id"],
                        context=history[: last_user + 1][-max_turns:], reply=event["text"],
                        generation=generation, timestamp=float(event.get("timestamp") or 0.0))
                history.append(Turn("assistant", event["text"]))
            elif kind == "slot" and event.get("name") == RATING_SLOT:
                if isinstance(event.get("value"), dict):
                    ratings.append(event["value"])
    orphans = []
    for rating in ratings:
        turn = turns_by_id.get(rating.get("reply_id"))
        if turn is None or rating.get("rating") not in RATINGS:
            orphans.append(rating)
            continue
        try:
            rated_at = float(rating.get("rated_at") or 0.0)
        except (TypeError, ValueError):
            rated_at = 0.0  # hand-edited or foreign data: order it first
        if turn.rated_at is None or rated_at >= turn.rated_at:
            turn.rating, turn.rated_at = rating["rating"], rated_at
    generated = sorted(turns_by_id.values(), key=lambda t: t.timestamp)
    return Conversation(sender_id, sessions, generated, orphans)


# Actions every session has, or that only answer open-ended turns.
NOT_SCRIPTED = frozenset({"action_listen", "action_session_start", GPT_RESPONSE,
                          RATE_ACTION})


def has_scripted_turn(session: Sequence[Event]) -> bool:
    """True for a session in which a rule, story or form ran at least one action.

    Such a session is worth a regression test; its generated turns stay in it
    as ``action: utter_gpt_reply`` steps (the text is not part of a story).
    """
    return any(e["event"] == "action" and e.get("name") not in NOT_SCRIPTED
               for e in session)
