"""Tests for actions/forms.py: order id and email verification, free-text slots.

The texts are what the customer reads (conftest.rendered).
"""

import asyncio

import pytest
from sqlalchemy import func, select

from actions.db import Customer, Order
from actions.forms import (
    ValidateCancelOrderForm,
    ValidateChangeAddressForm,
    ValidateHandoffForm,
    ValidateOrderLookupForm,
    ValidateReturnForm,
)

ORDER_FORMS = [
    (ValidateOrderLookupForm, "order_lookup_form", ["order_id", "email"]),
    (ValidateCancelOrderForm, "cancel_order_form", ["order_id", "email", "cancel_confirmed"]),
    (ValidateReturnForm, "return_form", ["order_id", "email", "return_reason"]),
    (ValidateChangeAddressForm, "change_address_form", ["order_id", "email", "new_address"]),
]
INJECTION = "KC-1'; DROP TABLE orders;--"
DB_DOWN = "I can't reach the order system right now, please try again in a few minutes."
ORDER_ID_HINT = (
    "That doesn't look like an order number. Order numbers look like KC-10423 (KC- and five "
    "digits); you'll find yours in the confirmation email. To do something else instead, "
    "just say \"never mind\".")
EMAIL_HINT = ("That doesn't look like an email address. Could you type it again, like "
              "name@example.com?")


def slot_events(**slots):
    """Tracker events ending in the SlotSet candidates a form hands to validation."""
    return [{"event": "user", "text": "hi"}] + [
        {"event": "slot", "name": name, "value": value} for name, value in slots.items()
    ]


def validate(form, slot, value, dispatcher, tracker):
    return getattr(form, f"validate_{slot}")(value, dispatcher, tracker, {})


def run_form(form_class, form_name, required, dispatcher, tracker):
    domain = {"forms": {form_name: {"required_slots": required}}}
    events = asyncio.run(form_class().run(dispatcher, tracker, domain))
    return {event["name"]: event["value"] for event in events if event["event"] == "slot"}


@pytest.mark.parametrize(
    "form_class, form_name, _", ORDER_FORMS + [(ValidateHandoffForm, "handoff_form", [])]
)
def test_action_names_follow_the_contract(form_class, form_name, _):
    assert form_class().name() == f"validate_{form_name}"


@pytest.mark.parametrize("typed", ["KC-10423", "kc10423", "KC 10423", "10423", "it's kc-10423"])
def test_order_id_is_normalised(store, make_tracker, dispatcher, typed):
    result = validate(ValidateOrderLookupForm(), "order_id", typed, dispatcher, make_tracker())
    assert result == {"order_id": "KC-10423", "verified_email": None}
    assert dispatcher.messages == []


@pytest.mark.parametrize("typed", ["hello", "KC-1234", "KC-104231", ["KC-10423", "KC-10424"]])
def test_malformed_order_id_is_reasked_with_the_format(store, make_tracker, dispatcher, said,
                                                       typed):
    result = validate(ValidateOrderLookupForm(), "order_id", typed, dispatcher, make_tracker())
    assert result == {"order_id": None}
    assert said(dispatcher) == [ORDER_ID_HINT]


def test_sql_injection_order_id_is_rejected_and_tables_stay(store, make_tracker, dispatcher, rows):
    result = validate(ValidateCancelOrderForm(), "order_id", INJECTION, dispatcher, make_tracker())
    assert result == {"order_id": None}
    assert rows(store, select(func.count(Order.id))) == [20]
    assert rows(store, select(func.count(Customer.id))) == [8]


def test_unknown_order_id_is_reasked(store, make_tracker, dispatcher, said):
    result = validate(ValidateReturnForm(), "order_id", "kc 99999", dispatcher, make_tracker())
    assert result == {"order_id": None}
    assert said(dispatcher) == [
        "I couldn't find order KC-99999. Please check the number: order numbers look like "
        "KC-10423 (KC- and five digits)."]


@pytest.mark.parametrize("form_class, _name, _required", ORDER_FORMS)
def test_matching_email_is_verified(store, make_tracker, dispatcher, form_class, _name, _required):
    tracker = make_tracker(slots={"order_id": "KC-10423"})
    result = validate(form_class(), "email", "Jane.Doe@Example.com", dispatcher, tracker)
    assert result == {"email": "jane.doe@example.com", "verified_email": "jane.doe@example.com"}
    assert dispatcher.messages == []


def test_wrong_email_is_reasked_without_revealing_the_real_one(store, make_tracker, dispatcher,
                                                               said):
    tracker = make_tracker(slots={"order_id": "KC-10423"})
    result = validate(ValidateOrderLookupForm(), "email", "mei.chen@example.com", dispatcher,
                      tracker)
    assert result == {"email": None, "verified_email": None}
    message = said(dispatcher, tracker)[0]
    assert message == (
        "That email address doesn't match the one on order KC-10423. Please give the email "
        "address you used when you placed the order.")
    assert "jane" not in message.lower()


def test_malformed_email_is_reasked(store, make_tracker, dispatcher, said):
    tracker = make_tracker(slots={"order_id": "KC-10423"})
    result = validate(ValidateOrderLookupForm(), "email", "jane at example", dispatcher, tracker)
    assert result == {"email": None, "verified_email": None}
    assert said(dispatcher) == [EMAIL_HINT]


def test_email_before_order_id_is_kept_unverified(store, make_tracker, dispatcher):
    result = validate(ValidateOrderLookupForm(), "email", "jane.doe@example.com", dispatcher,
                      make_tracker())
    assert result == {"email": "jane.doe@example.com", "verified_email": None}


def test_later_order_id_verifies_an_earlier_email(store, make_tracker, dispatcher):
    tracker = make_tracker(slots={"email": "jane.doe@example.com"},
                           events=slot_events(order_id="10424"))
    result = validate(ValidateOrderLookupForm(), "order_id", "10424", dispatcher, tracker)
    assert result == {"order_id": "KC-10424", "verified_email": "jane.doe@example.com"}


def test_earlier_email_of_another_customer_is_cleared(store, make_tracker, dispatcher, said):
    # Jane proved KC-10423 is hers, then asks about Mei's order: she must prove it again.
    tracker = make_tracker(
        slots={"email": "jane.doe@example.com", "verified_email": "jane.doe@example.com"},
        events=slot_events(order_id="KC-10441"),
    )
    result = validate(ValidateOrderLookupForm(), "order_id", "KC-10441", dispatcher, tracker)
    assert result == {"order_id": "KC-10441", "email": None, "verified_email": None}
    assert said(dispatcher, tracker) == [
        "To keep orders private, I need the email address on order KC-10441."]


@pytest.mark.parametrize("form_class, form_name, required", ORDER_FORMS)
def test_run_validates_order_and_email_given_in_one_message(
    store, make_tracker, dispatcher, form_class, form_name, required
):
    tracker = make_tracker(
        slots={"order_id": "kc 10423", "email": "JANE.DOE@example.com"},
        events=slot_events(order_id="kc 10423", email="JANE.DOE@example.com"),
        active_loop=form_name,
    )
    slots = run_form(form_class, form_name, required, dispatcher, tracker)
    assert slots == {
        "order_id": "KC-10423",
        "email": "jane.doe@example.com",
        "verified_email": "jane.doe@example.com",
    }


def test_run_rejects_someone_elses_email_given_in_one_message(store, make_tracker, dispatcher):
    tracker = make_tracker(
        slots={"order_id": "KC-10423", "email": "mei.chen@example.com"},
        events=slot_events(email="mei.chen@example.com", order_id="KC-10423"),
        active_loop="order_lookup_form",
    )
    slots = run_form(ValidateOrderLookupForm, "order_lookup_form", ["order_id", "email"],
                     dispatcher, tracker)
    assert slots == {"order_id": "KC-10423", "email": None, "verified_email": None}


@pytest.mark.parametrize(
    "reason, expected", [("ok", None), ("  ", None), ("Too  small", "Too small")]
)
def test_return_reason_needs_three_characters(store, make_tracker, dispatcher, said, reason,
                                              expected):
    result = validate(ValidateReturnForm(), "return_reason", reason, dispatcher, make_tracker())
    assert result == {"return_reason": expected}
    assert said(dispatcher) == (
        ["Could you tell me in a few words why you're returning it?"] if expected is None else [])


@pytest.mark.parametrize(
    "address, expected",
    [
        ("Main Street", None),  # no digit
        ("12 Elm St", None),  # too short
        ("12  Oak Road,\nSpringfield", "12 Oak Road, Springfield"),
    ],
)
def test_new_address_needs_ten_characters_and_a_digit(make_tracker, dispatcher, said, address,
                                                      expected):
    form = ValidateChangeAddressForm()
    result = validate(form, "new_address", address, dispatcher, make_tracker())
    assert result == {"new_address": expected}
    assert said(dispatcher) == (
        ["That address looks incomplete. Please give the full address with the house number, "
         "street, city and ZIP or postal code."] if expected is None else [])


def test_handoff_email_needs_only_a_valid_format(broken_store, make_tracker, dispatcher, said):
    form = ValidateHandoffForm()
    assert validate(form, "email", "Someone@Example.org", dispatcher, make_tracker()) == {
        "email": "someone@example.org"
    }
    assert validate(form, "email", "not an email", dispatcher, make_tracker()) == {"email": None}
    assert said(dispatcher) == [EMAIL_HINT]


def test_database_trouble_reasks_politely(broken_store, make_tracker, dispatcher, said, caplog):
    form = ValidateOrderLookupForm()
    result = validate(form, "order_id", "KC-10423", dispatcher, make_tracker())
    assert result == {"order_id": None}
    assert said(dispatcher) == [DB_DOWN]
    assert any(record.levelname == "ERROR" for record in caplog.records)


@pytest.mark.parametrize(
    "form_class, form_name, required",
    ORDER_FORMS + [(ValidateHandoffForm, "handoff_form", ["email"])],
)
def test_a_scripted_question_inside_a_form_is_answered_and_the_slot_asked_again(
    store, make_tracker, dispatcher, said, form_class, form_name, required
):
    question = "actually never mind, what are your opening hours"
    slot = required[0]  # the from_text mapping took the question as the first slot
    tracker = make_tracker(slots={slot: question}, events=slot_events(**{slot: question}),
                           text=question, intent="opening_hours", active_loop=form_name)
    slots = run_form(form_class, form_name, required, dispatcher, tracker)
    assert slots == {slot: None}  # unfilled: the form asks for it again
    (answer,) = said(dispatcher, tracker)  # one of utter_opening_hours' variations
    assert "Monday-Friday 8:00-20:00 and Saturday 9:00-17:00 Eastern Time" in answer
    assert "order number" not in answer


@pytest.mark.parametrize("intent, kept", [("contact_info", None), ("inform", "how do I reach you")])
def test_a_return_reason_is_kept_unless_it_is_a_scripted_question(
    store, make_tracker, dispatcher, said, intent, kept
):
    known = {"order_id": "KC-10423", "email": "jane.doe@example.com",
             "verified_email": "jane.doe@example.com"}
    tracker = make_tracker(slots={**known, "return_reason": "how do I reach you"},
                           events=slot_events(return_reason="how do I reach you"),
                           text="how do I reach you", intent=intent, active_loop="return_form")
    slots = run_form(ValidateReturnForm, "return_form", ["order_id", "email", "return_reason"],
                     dispatcher, tracker)
    assert slots["return_reason"] == kept
    assert ("support@kestrelhome.example" in " ".join(said(dispatcher, tracker))) == (kept is None)
