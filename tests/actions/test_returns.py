"""Tests for actions/returns.py: opening a return within the 30-day window."""

from datetime import timedelta

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.common import DB_UNAVAILABLE
from actions.db import Order, Return, session_scope, utcnow
from actions.returns import ActionOpenReturn

JANE = "jane.doe@example.com"


def return_slots(order_id, email=JANE, reason="It stopped working."):
    return {"order_id": order_id, "email": email, "verified_email": email,
            "return_reason": reason}


def returns_of(rows, url, order_id):
    return rows(url, select(Return).where(Return.order_id == order_id))


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
    assert said(dispatcher) == [DB_UNAVAILABLE]
    assert events == [SlotSet("return_reason", None)]
    assert any(record.levelname == "ERROR" for record in caplog.records)
