"""What the submitting actions share: replies, formatting, verification, error handling.

Every message an action sends is a response in domain.yml: a `Reply` names it and
carries the values of its ``{variables}``, formatted here (dates, money) so that
the wording stays in domain.yml. `DatabaseAction` is the base of every action that
answers from the store database: it opens a session, asks the subclass for the
reply, turns database trouble into a polite message (and a logged error) and resets
the form's one-shot slots.
"""

import logging
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions.db import Order, customer_owns_order, find_order, normalise_email
from actions.db import normalise_order_id, session_scope

logger = logging.getLogger(__name__)

RETURN_WINDOW_DAYS = 30
REFUND_DAYS = "5-7 business days"  # the {refund_days} of the responses
MAX_FREE_TEXT_CHARS = 300  # return reasons and addresses are cut to this length

# Errors that mean "the database is not usable right now": SQLAlchemy's own (including
# OperationalError for a locked or missing database) and OSError (the folder of a
# SQLite file cannot be created).
DATABASE_ERRORS = (SQLAlchemyError, OSError)


class Reply:
    """A message to send: a response in domain.yml and the values of its ``{variables}``.

    ``Reply(response="utter_address_changed", order_id="KC-10425", address="...")``.
    Rasa fills the response's placeholders from the variables (and from slots, but
    the actions pass every variable the response uses; tests/actions/test_responses.py
    checks that). Values are text, already formatted for the customer.
    """

    __slots__ = ("response", "variables")

    def __init__(self, response: Text, **variables: Text) -> None:
        self.response = response
        self.variables = variables

    def send(self, dispatcher: CollectingDispatcher) -> None:
        """Hand the response and its variables to the dispatcher."""
        dispatcher.utter_message(response=self.response, **self.variables)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reply) and (self.response, self.variables) == (
            other.response, other.variables)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Reply({self.response!r}, **{self.variables!r})"


DB_UNAVAILABLE = Reply(response="utter_database_unavailable")


class CannotActError(Exception):
    """Raised inside `DatabaseAction.answer` to send ``reply`` instead and stop.

    Used for verification failures and business rules; nothing is written because
    the session rolls back.
    """

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.response)
        self.reply = reply


def format_money(cents: int) -> str:
    """Format integer cents as dollars: 12995 -> "$129.95"."""
    return f"${cents / 100:,.2f}"


def format_date(moment: datetime) -> str:
    """Format a datetime as a date a customer reads: "June 3, 2024"."""
    return f"{moment:%B} {moment.day}, {moment.year}"


def slot_text(value: Any) -> Optional[str]:
    """A slot value as text: None stays None, a list (several entities) is joined."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return str(value)


def clean_reason(text: Optional[str]) -> Optional[str]:
    """A return reason with whitespace collapsed, if it has at least 3 characters."""
    cleaned = " ".join((text or "").split())[:MAX_FREE_TEXT_CHARS]
    return cleaned if len(cleaned) >= 3 else None


def clean_address(text: Optional[str]) -> Optional[str]:
    """An address with whitespace collapsed, if it has 10+ characters and a digit."""
    cleaned = " ".join((text or "").split())[:MAX_FREE_TEXT_CHARS]
    if len(cleaned) >= 10 and any(char.isdigit() for char in cleaned):
        return cleaned
    return None


def return_reference(return_id: int) -> str:
    """The id a customer sees for a return: 5001 -> "R-5001"."""
    return f"R-{return_id}"


def requested_order(tracker: Tracker) -> Tuple[Optional[str], Optional[str]]:
    """The normalised order id and the email (verified one first) from the slots."""
    order_id = normalise_order_id(slot_text(tracker.get_slot("order_id")))
    email = normalise_email(slot_text(tracker.get_slot("verified_email")))
    email = email or normalise_email(slot_text(tracker.get_slot("email")))
    return order_id, email


def load_verified_order(session: Session, tracker: Tracker) -> Tuple[Order, str]:
    """Return the order named by the slots and the email that proved ownership.

    Checks ownership again even though the form did, so an action that runs without
    its form never shows another customer's order. Raises `CannotActError` with the reply
    to send when the order id or email is missing, unknown or does not match.
    """
    order_id, email = requested_order(tracker)
    if order_id is None or email is None:
        raise CannotActError(Reply(response="utter_need_order_and_email"))
    order = find_order(session, order_id)
    if order is None or not customer_owns_order(session, order_id, email):
        raise CannotActError(Reply(response="utter_order_not_matched", order_id=order_id))
    return order, email


class DatabaseAction(Action, ABC):
    """An action whose reply is computed from the store database in one session.

    Subclasses set ``one_shot_slots`` (slots reset to None after every run) and
    implement `answer`, which returns the `Reply` to send. Database errors roll the
    session back, are logged, and become `DB_UNAVAILABLE`. Abstract, so the action
    server's scan for `Action` subclasses skips it.
    """

    one_shot_slots: Tuple[Text, ...] = ()

    @abstractmethod
    def name(self) -> Text:
        """The action name the domain lists."""

    @abstractmethod
    def answer(self, session: Session, tracker: Tracker) -> Reply:
        """The reply for this turn; may write through ``session`` or raise `CannotActError`."""

    def reset_events(self) -> List[EventType]:
        """SlotSet events that clear this action's one-shot slots."""
        return [SlotSet(slot, None) for slot in self.one_shot_slots]

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[EventType]:
        """Compute the reply in a session, send it, and reset the one-shot slots."""
        try:
            with session_scope() as session:
                reply = self.answer(session, tracker)
        except CannotActError as refusal:
            reply = refusal.reply
        except DATABASE_ERRORS:
            logger.exception("%s could not use the store database", self.name())
            reply = DB_UNAVAILABLE
        reply.send(dispatcher)
        return self.reset_events()
