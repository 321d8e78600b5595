"""Handing a conversation to a person (``action_handoff``, submits ``handoff_form``).

Opens a support ticket holding the conversation's sender id, the customer's email
and a short summary: the last three user messages, each cut to 200 characters.
The customer gets ``utter_ticket_opened`` (domain.yml), whose support hours come
from the ``support_hours`` slot.
"""

from typing import Any, Dict, Iterable, List, Text

from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from actions.common import CannotActError, DatabaseAction, Reply, slot_text
from actions.db import Ticket, normalise_email, utcnow
from shared_names import HANDOFF_ACTION

SUMMARY_MESSAGES = 3  # how many of the latest user messages go into a ticket
SUMMARY_MESSAGE_CHARS = 200  # each message is cut to this many characters


def ticket_reference(ticket_id: int) -> str:
    """The ticket number a customer sees: 42 -> "T-00042"."""
    return f"T-{ticket_id:05d}"


def truncate(text: str, limit: int = SUMMARY_MESSAGE_CHARS) -> str:
    """``text`` with whitespace collapsed, cut to at most ``limit`` characters ("..." = cut)."""
    cleaned = " ".join(text.split())
    if len(cleaned) <= limit:
        return cleaned
    return cleaned[: limit - 3].rstrip() + "..."


def conversation_summary(
    events: Iterable[Dict[Text, Any]],
    last: int = SUMMARY_MESSAGES,
    limit: int = SUMMARY_MESSAGE_CHARS,
) -> str:
    """The last ``last`` user messages in ``events``, oldest first, one per line.

    Each message is cut to ``limit`` characters. Returns "(no messages)" when the
    conversation has no user text.
    """
    texts: List[str] = [
        truncate(event["text"], limit)
        for event in events
        if event.get("event") == "user" and (event.get("text") or "").strip()
    ]
    recent = texts[-last:] if last > 0 else []
    return "\n".join(f"- {text}" for text in recent) or "(no messages)"


class ActionHandoff(DatabaseAction):
    """Opens a ticket and tells the customer its number and when to expect a reply."""

    def name(self) -> Text:
        return HANDOFF_ACTION

    def answer(self, session: Session, tracker: Tracker) -> Reply:
        """Create the ticket; raise `CannotActError` when there is no usable email."""
        email = normalise_email(slot_text(tracker.get_slot("email")))
        if email is None:
            raise CannotActError(Reply(response="utter_handoff_email_missing"))
        ticket = Ticket(
            customer_email=email,
            summary=conversation_summary(tracker.events),
            conversation_id=tracker.sender_id or "unknown",
            status="open",
            created_at=utcnow(),
        )
        session.add(ticket)
        session.flush()  # assigns ticket.id
        # {support_hours} is filled from its slot: domain.yml is the one place they are written.
        return Reply(response="utter_ticket_opened", ticket_reference=ticket_reference(ticket.id),
                     email=email)
