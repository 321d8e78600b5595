"""Ratings of generated replies (``action_rate_reply``): helpful or not helpful.

Every ``utter_gpt_reply`` event carries ``metadata["generation"]["reply_id"]``
(written by the NLG). A rating names the reply it is about in one of two ways:

- a rating button sends ``/rate_reply{"rating": ..., "reply_id": ...}``: the
  rated reply is the bot event with that ``reply_id``, anywhere in the tracker;
- typed text ("that was helpful", or yes / no right after a generated reply):
  the rated reply is the last bot event before the rating message, and it has
  to be a reply with a ``reply_id``.

The rating is the ``rating`` entity normalised to "helpful" / "not_helpful"
(synonyms such as "good" or "useless" are accepted); without the entity, affirm
means helpful and deny not helpful. A found reply is recorded as the
``reply_rating`` slot (see `rating_record`) and thanked for; anything else gets
``utter_rating_unknown``, a logged warning and no slot, except typed praise with no
answer before it, which gets ``utter_praise_thanks`` (see `kind_words`). A reply may be rated
again: every rating is its own SlotSet event, and the latest one wins.

The intent, action, slot, rating and metadata names are shared with components/
through ``shared_names``.
"""

import logging
import time
from typing import Any, Dict, Iterable, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from shared_names import (GENERATION_KEY, HELPFUL, NOT_HELPFUL, RATE_ACTION, RATE_INTENT,
                          RATING_SLOT)

logger = logging.getLogger(__name__)

# Accepted spellings of a rating, compared after lower-casing and turning "-",
# "_" and runs of spaces into one space. Anything else is a malformed rating.
RATING_SYNONYMS: Dict[str, str] = {
    **{word: HELPFUL for word in (
        "helpful", "very helpful", "really helpful", "helped", "up", "thumbs up", "good",
        "great", "useful", "spot on", "yes", "positive")},
    **{word: NOT_HELPFUL for word in (
        "not helpful", "unhelpful", "didn't help", "did not help", "down", "thumbs down",
        "bad", "no", "useless", "not useful", "pointless", "wrong", "negative")},
}
INTENT_RATINGS = {"affirm": HELPFUL, "deny": NOT_HELPFUL}


def normalise_rating(value: Any) -> Optional[str]:
    """``value`` as "helpful" or "not_helpful"; None when it is not a known rating.

    "Thumbs-Up" -> "helpful", "not_helpful" -> "not_helpful", "meh" -> None.
    """
    if not isinstance(value, str):
        return None
    key = " ".join(value.lower().replace("-", " ").replace("_", " ").split())
    return RATING_SYNONYMS.get(key)


def entity_value(message: Dict[Text, Any], entity: Text) -> Any:
    """The value of the last ``entity`` in a parsed message, or None."""
    values = [e.get("value") for e in message.get("entities") or [] if e.get("entity") == entity]
    return values[-1] if values else None


def generation_of(event: Dict[Text, Any]) -> Optional[Dict[Text, Any]]:
    """The ``generation`` metadata of a bot event that has a reply_id, else None."""
    if event.get("event") != "bot":
        return None
    generation = (event.get("metadata") or {}).get(GENERATION_KEY)
    if isinstance(generation, dict) and generation.get("reply_id"):
        return generation
    return None


def find_rated_reply(
    events: Iterable[Dict[Text, Any]], reply_id: Optional[Text]
) -> Optional[Dict[Text, Any]]:
    """The ``generation`` metadata of the reply a rating is about, or None.

    With ``reply_id``: the latest bot event whose generation has that id. Without:
    the last bot event before the latest user message, if it has a reply_id.
    """
    events = list(events)
    if reply_id is not None:
        for event in reversed(events):
            generation = generation_of(event)
            if generation is not None and str(generation["reply_id"]) == str(reply_id):
                return generation
        return None
    users = [i for i, event in enumerate(events) if event.get("event") == "user"]
    before = events[: users[-1]] if users else events
    bots = [event for event in before if event.get("event") == "bot"]
    return generation_of(bots[-1]) if bots else None


def requested_rating(message: Dict[Text, Any]) -> Optional[str]:
    """The rating a message gives: its ``rating`` entity, else affirm / deny.

    A ``rating`` entity that is not a known rating gives None, even when the
    intent is affirm or deny.
    """
    value = entity_value(message, "rating")
    if value is not None:
        return normalise_rating(value)
    intent = (message.get("intent") or {}).get("name")
    return INTENT_RATINGS.get(intent)


def kind_words(message: Dict[Text, Any], reply_id: Optional[Text], rating: Optional[str]) -> bool:
    """Whether ``message`` is typed praise (intent rate_reply, rating helpful, no button's
    reply_id): with no answer to attach it to, it is thanked for, not apologised for
    ("you're actually really helpful" as a first message got utter_rating_unknown's
    apology until 2026-12-06)."""
    intent = (message.get("intent") or {}).get("name")
    return reply_id is None and rating == HELPFUL and intent == RATE_INTENT


def rating_record(
    generation: Dict[Text, Any], rating: str, rated_at: Optional[float] = None
) -> Dict[Text, Any]:
    """The ``reply_rating`` slot value: which reply, which model, what rating, when.

    ``rated_at`` is a Unix time in seconds (float); now when not given.
    """
    return {
        "reply_id": generation["reply_id"],
        "rating": rating,
        "model_version": generation.get("model_version"),
        "generated": generation.get("generated"),
        "mode": generation.get("mode"),  # "generated" or "extractive" (help center)
        "rated_at": time.time() if rated_at is None else rated_at,
    }


class ActionRateReply(Action):
    """Records a rating of a generated reply as the ``reply_rating`` slot."""

    def name(self) -> Text:
        return RATE_ACTION

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[EventType]:
        """Thank and return the SlotSet, or say the reply was not found (no events)."""
        message = tracker.latest_message or {}
        reply_id = entity_value(message, "reply_id")
        reply_id = None if reply_id is None else str(reply_id)
        rating = requested_rating(message)
        generation = find_rated_reply(tracker.events, reply_id)
        if generation is None or rating is None:
            if generation is None:
                problem = ("no generated reply has this id" if reply_id is not None
                           else "the message before the rating is not a generated reply")
            else:
                problem = "the rating is neither helpful nor not_helpful"
            # No message text in the log: it is the customer's.
            logger.warning(
                "%s recorded nothing for reply_id %r: %s (rating entity %r, intent %r).",
                RATE_ACTION,
                reply_id if generation is None else generation["reply_id"],
                problem,
                entity_value(message, "rating"),
                (message.get("intent") or {}).get("name"),
            )
            if kind_words(message, reply_id, rating):
                dispatcher.utter_message(response="utter_praise_thanks")
            else:
                dispatcher.utter_message(response="utter_rating_unknown")
            return []
        dispatcher.utter_message(response="utter_rating_thanks")
        return [SlotSet(RATING_SLOT, rating_record(generation, rating))]
