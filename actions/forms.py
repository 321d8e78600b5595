"""Slot validation for the five forms (``validate_<form>`` actions).

The four order forms share `OrderVerificationMixin`: the order id is normalised to
``KC-ddddd`` and must exist; the email must be well-formed and be the email of the
order's customer, which is how a customer proves the order is theirs. On a match the
mixin also sets ``verified_email``. A mismatch is re-asked without ever showing the
email on file. Business rules (can it still be cancelled?) are left to the
submitting actions, which explain why they cannot act.

Each ``validate_<slot>`` method returns a dict of slot values; None re-asks the slot.
What they say are responses in domain.yml (``utter_order_id_hint``, ``utter_email_hint``,
...), sent with the variables they use.

A question with a scripted answer asked in the middle of a form ("actually, what are
your opening hours?") reaches validation as the requested slot's free text, because
the slot's ``from_text`` mapping takes any message. `ScriptedQuestionMixin` answers it
with its response and asks for the slot again, instead of calling the question a
malformed order number or keeping it as a return reason.
"""

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.common import DATABASE_ERRORS, DB_UNAVAILABLE, clean_address, clean_reason
from actions.common import slot_text
from actions.db import find_order, normalise_email, normalise_order_id, session_scope

logger = logging.getLogger(__name__)

SlotDict = Dict[Text, Any]


def _owner_email(order_id: str) -> Optional[str]:
    """The lower-cased customer email of ``order_id``, or None if there is no such order.

    Raises whatever `DATABASE_ERRORS` the database raises.
    """
    with session_scope() as session:
        order = find_order(session, order_id)
        return order.customer.email.lower() if order is not None else None


# Intents answered by a scripted response named after them (``utter_<intent>``, the
# one-shot rules of data/rules/faq.yml) that a customer may ask while a form waits for a
# slot. Greetings and goodbyes are left out: "bye" in the middle of a form is not a
# question to answer and then carry on after.
SCRIPTED_QUESTIONS = frozenset({"help", "payment_problem", "reset_password", "opening_hours",
                                "contact_info", "shipping_costs"})


def scripted_answer(tracker: Tracker) -> Optional[str]:
    """The response (``utter_<intent>``) that answers the latest message, when its
    intent is one of `SCRIPTED_QUESTIONS`; None otherwise."""
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    return f"utter_{intent}" if intent in SCRIPTED_QUESTIONS else None


class ScriptedQuestionMixin:
    """Answers a scripted question asked inside a form and re-asks the slot.

    The slots the message filled are cleared unvalidated, entity or not ("what are
    your hours, my order is KC-10423" asks again for the order number): the
    customer's next message is read as the answer to the form's question.
    """

    async def get_validation_events(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> List[EventType]:
        response = scripted_answer(tracker)
        if response is None:
            return await super().get_validation_events(dispatcher, tracker, domain)
        dispatcher.utter_message(response=response)
        return [SlotSet(slot, None) for slot in tracker.slots_to_validate()]


class OrderVerificationMixin:
    """``validate_order_id`` and ``validate_email`` for the forms about one order.

    Both cross-check: whichever of the two arrives last decides whether the email
    matches the order. Database errors are logged and re-ask the slot with
    `DB_UNAVAILABLE`.
    """

    def validate_order_id(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> SlotDict:
        """Normalise the order id; unknown or malformed ids are re-asked with a hint."""
        order_id = normalise_order_id(slot_text(slot_value))
        if order_id is None:
            dispatcher.utter_message(response="utter_order_id_hint")
            return {"order_id": None}
        try:
            owner_email = _owner_email(order_id)
        except DATABASE_ERRORS:
            logger.exception("Could not look up order %s", order_id)
            DB_UNAVAILABLE.send(dispatcher)
            return {"order_id": None}
        if owner_email is None:
            dispatcher.utter_message(response="utter_order_not_found", order_id=order_id)
            return {"order_id": None}

        slots: SlotDict = {"order_id": order_id}
        if "email" in tracker.slots_to_validate():
            return slots  # validate_email checks this turn's email against the order
        known_email = normalise_email(slot_text(tracker.get_slot("email")))
        if known_email is None:
            slots["verified_email"] = None
        elif known_email == owner_email:
            slots["verified_email"] = known_email
        else:
            # An email given earlier (e.g. for another order) does not own this one.
            dispatcher.utter_message(response="utter_email_needed_for_order", order_id=order_id)
            slots.update(email=None, verified_email=None)
        return slots

    def validate_email(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> SlotDict:
        """Check the email is well-formed and, once the order is known, that it owns it."""
        email = normalise_email(slot_text(slot_value))
        if email is None:
            dispatcher.utter_message(response="utter_email_hint")
            return {"email": None, "verified_email": None}
        order_id = normalise_order_id(slot_text(tracker.get_slot("order_id")))
        if order_id is None:
            return {"email": email, "verified_email": None}  # checked when the id comes
        try:
            owner_email = _owner_email(order_id)
        except DATABASE_ERRORS:
            logger.exception("Could not verify the email for order %s", order_id)
            DB_UNAVAILABLE.send(dispatcher)
            return {"email": None, "verified_email": None}
        if owner_email is None:
            return {"email": email, "verified_email": None}  # validate_order_id re-asks
        if email != owner_email:
            dispatcher.utter_message(response="utter_email_not_matched", order_id=order_id)
            return {"email": None, "verified_email": None}
        return {"email": email, "verified_email": email}


class ValidateOrderLookupForm(ScriptedQuestionMixin, OrderVerificationMixin,
                              FormValidationAction):
    """Validates ``order_lookup_form`` (order_id, email)."""

    def name(self) -> Text:
        return "validate_order_lookup_form"


class ValidateCancelOrderForm(ScriptedQuestionMixin, OrderVerificationMixin,
                              FormValidationAction):
    """Validates ``cancel_order_form`` (order_id, email, cancel_confirmed)."""

    def name(self) -> Text:
        return "validate_cancel_order_form"


class ValidateReturnForm(ScriptedQuestionMixin, OrderVerificationMixin,
                         FormValidationAction):
    """Validates ``return_form`` (order_id, email, return_reason)."""

    def name(self) -> Text:
        return "validate_return_form"

    def validate_return_reason(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> SlotDict:
        """Keep a reason of at least 3 characters (whitespace collapsed, max 300)."""
        reason = clean_reason(slot_text(slot_value))
        if reason is None:
            dispatcher.utter_message(response="utter_return_reason_hint")
        return {"return_reason": reason}


class ValidateChangeAddressForm(ScriptedQuestionMixin, OrderVerificationMixin,
                                FormValidationAction):
    """Validates ``change_address_form`` (order_id, email, new_address)."""

    def name(self) -> Text:
        return "validate_change_address_form"

    def validate_new_address(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> SlotDict:
        """Keep an address of at least 10 characters that contains a digit."""
        address = clean_address(slot_text(slot_value))
        if address is None:
            dispatcher.utter_message(response="utter_new_address_hint")
        return {"new_address": address}


class ValidateHandoffForm(ScriptedQuestionMixin, FormValidationAction):
    """Validates ``handoff_form`` (email): only that it is well-formed, no order check."""

    def name(self) -> Text:
        return "validate_handoff_form"

    def validate_email(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> SlotDict:
        """Keep a well-formed email (lower-cased) so the support team can reply."""
        email = normalise_email(slot_text(slot_value))
        if email is None:
            dispatcher.utter_message(response="utter_email_hint")
        return {"email": email}
