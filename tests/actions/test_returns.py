"""Tests for actions/returns.py: opening a return within the 30-day window.

The texts are what the customer reads (conftest.rendered).
"""

from datetime import timedelta

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.common import format_date
from actions.db import Order, Return, session_scope, utcnow
from actions.returns import ActionOpenReturn

JANE = "jane.doe@example.com"
MEI = "mei.chen@example.com"
DB_DOWN = "I can't reach the order system right now, please try again in a few minutes."


def return_slots(order_id, email=JANE, reason="It stopped working."):
    return {"order_id": order_id, "email": email, "verified_email": email,
            "return_reason": reason}


def returns_of(rows, url, order_id):
    return rows(url, select(Return).where(Return.order_id == order_id))


def order_row(rows, url, order_id):
    return rows(url, select(Order).where(Order.id == order_id))[0]


def d(moment):
    return format_date(moment)


def test_words_of_an_opened_return(store, make_tracker, run_action, dispatcher, said, rows):
    run_action(ActionOpenReturn(), make_tracker(slots=return_slots("KC-10424")))
    [ret] = returns_of(rows, store, "KC-10424")
    assert said(dispatcher) == [
        f"I've opened return R-{ret.id} for order KC-10424. A prepaid return label is on its "
        "way to jane.doe@example.com. Once the items reach our warehouse, the refund of "
        "$52.00 goes back to your original payment method within 5-7 business days."]


# (order id, owner, the refusal as a function of the order's row and its latest return's)
REFUSALS = [
    ("KC-10425", JANE, lambda o, r: (
        "Order KC-10425 hasn't shipped yet, so there's nothing to return. If you no longer "
        "want it, I can cancel it for you instead.")),
    ("KC-10423", JANE, lambda o, r: (
        f"Order KC-10423 is still on its way (it shipped on {d(o.shipped_at)}). Once it's "
        "delivered you have 30 days to return it.")),
    ("KC-10432", "omar.haddad@example.org", lambda o, r: (
        "Order KC-10432 was cancelled, so there's nothing to return; its refund goes back "
        "to your original payment method.")),
    ("KC-10426", JANE, lambda o, r: (
        f"Order KC-10426 was delivered on {d(o.delivered_at)}, and our 30-day return window "
        f"closed on {d(o.delivered_at + timedelta(days=30))}, so I can't open a return. If "
        "an item is faulty it may still be covered by our warranty: ask me to connect you "
        "with a person.")),
    ("KC-10442", MEI, lambda o, r: (
        f"There's already a return open for order KC-10442: R-5002, requested on "
        f"{d(r.created_at)}. The prepaid label was sent by email; there's no need to open "
        "another one.")),
    ("KC-10441", MEI, lambda o, r: (
        f"Order KC-10441 was already returned (R-5001) and $59.00 was refunded on "
        f"{d(r.refunded_at)}.")),
]


@pytest.mark.parametrize("order_id, email, words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal_words(store, make_tracker, run_action, dispatcher, said, rows,
                       order_id, email, words):
    run_action(ActionOpenReturn(), make_tracker(slots=return_slots(order_id, email)))
    returns = returns_of(rows, store, order_id)
    expected = words(order_row(rows, store, order_id), returns[-1] if returns else None)
    assert said(dispatcher) == [expected]


def test_missing_reason_words(store, make_tracker, run_action, dispatcher, said):
    run_action(ActionOpenReturn(), make_tracker(slots=return_slots("KC-10424", reason="x")))
    assert said(dispatcher) == ["Please tell me in a few words why you're returning the order."]


def test_opens_a_return_for_a_recent_delivery(store, make_tracker, run_action, dispatcher, said,
                                              rows):
    events = run_action(ActionOpenReturn(), make_tracker(slots=return_slots("KC-10424")))
    assert events == [SlotSet("return_reason", None)]
    [ret] = returns_of(rows, store, "KC-10424")
    assert (ret.status, ret.reason, ret.refund_cents) == ("requested", "It stopped working.", 5200)
    message = said(dispatcher)[0]
    assert f"R-{ret.id}" in message and "prepaid return label" in message and JANE in message
    assert "$52.00" in message


def test_a_second_return_for_the_same_order_is_refused(store, make_tracker, run_action,
                                                       dispatcher, said, rows):
    run_action(ActionOpenReturn(), make_tracker(slots=return_slots("KC-10424")))
    run_action(ActionOpenReturn(), make_tracker(slots=return_slots("KC-10424")))
    [ret] = returns_of(rows, store, "KC-10424")
    assert "already a return open" in said(dispatcher)[1] and f"R-{ret.id}" in said(dispatcher)[1]


@pytest.mark.parametrize(
    "order_id, email, expected",
    [
        ("KC-10426", JANE, "return window closed"),
        ("KC-10425", JANE, "hasn't shipped yet"),
        ("KC-10423", JANE, "still on its way"),
        ("KC-10432", "omar.haddad@example.org", "was cancelled"),
        ("KC-10442", "mei.chen@example.com", "already a return open for order KC-10442: R-5002"),
        ("KC-10441", "mei.chen@example.com", "already returned (R-5001)"),
    ],
)
def test_refuses_and_says_why(store, make_tracker, run_action, dispatcher, said, rows,
                              order_id, email, expected):
    before = len(returns_of(rows, store, order_id))
    run_action(ActionOpenReturn(), make_tracker(slots=return_slots(order_id, email)))
    assert expected in said(dispatcher)[0]
    assert len(returns_of(rows, store, order_id)) == before


def test_window_is_thirty_days_from_delivery(store, make_tracker, run_action, rows):
    with session_scope() as session:
        order = session.get(Order, "KC-10424")
        order.delivered_at = utcnow() - timedelta(days=30, minutes=-5)  # 5 minutes left
        other = session.get(Order, "KC-10426")
        other.delivered_at = utcnow() - timedelta(days=30, minutes=5)  # 5 minutes late
    run_action(ActionOpenReturn(), make_tracker(slots=return_slots("KC-10424")))
    run_action(ActionOpenReturn(), make_tracker(slots=return_slots("KC-10426")))
    assert len(returns_of(rows, store, "KC-10424")) == 1
    assert returns_of(rows, store, "KC-10426") == []


def test_someone_elses_order_is_refused(store, make_tracker, run_action, dispatcher, said, rows):
    run_action(ActionOpenReturn(),
               make_tracker(slots=return_slots("KC-10424", email="mei.chen@example.com")))
    assert "couldn't match order KC-10424" in said(dispatcher)[0]
    assert returns_of(rows, store, "KC-10424") == []


def test_missing_reason_is_asked_for(store, make_tracker, run_action, dispatcher, said, rows):
    run_action(ActionOpenReturn(), make_tracker(slots=return_slots("KC-10424", reason="")))
    assert "why you're returning" in said(dispatcher)[0]
    assert returns_of(rows, store, "KC-10424") == []


def test_database_trouble_is_a_polite_message(broken_store, make_tracker, run_action, dispatcher,
                                              said, caplog):
    events = run_action(ActionOpenReturn(), make_tracker(slots=return_slots("KC-10424")))
    assert said(dispatcher) == [DB_DOWN]
    assert events == [SlotSet("return_reason", None)]
    assert any(record.levelname == "ERROR" for record in caplog.records)
