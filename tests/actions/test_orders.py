"""Tests for actions/orders.py: order status, cancelling and changing the address."""

from datetime import datetime

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.common import DB_UNAVAILABLE, format_date
from actions.db import Order, utcnow
from actions.orders import (
    ActionCancelOrder,
    ActionChangeAddress,
    ActionOrderStatus,
    add_business_days,
)

JANE = "jane.doe@example.com"
MEI = "mei.chen@example.com"


def verified(order_id, email, **extra):
    return {"order_id": order_id, "email": email, "verified_email": email, **extra}


def order_row(rows, url, order_id):
    return rows(url, select(Order).where(Order.id == order_id))[0]


def test_status_of_a_shipped_order_gives_carrier_tracking_and_date(
    store, make_tracker, run_action, dispatcher, said, rows
):
    events = run_action(ActionOrderStatus(), make_tracker(slots=verified("KC-10423", JANE)))
    assert events == []
    [message] = said(dispatcher)
    shipped_at = order_row(rows, store, "KC-10423").shipped_at
    assert "shipped" in message and "UPS" in message and "1Z999AA10123456784" in message
    assert format_date(shipped_at) in message and "Aero Blender" in message


@pytest.mark.parametrize(
    "order_id, email, expected",
    [
        ("KC-10424", JANE, "was delivered on"),
        ("KC-10425", JANE, "should ship by"),
        ("KC-10461", "priya.natarajan@example.com", "should ship within the next business day"),
        ("KC-10432", "omar.haddad@example.org", "was cancelled on"),
    ],
)
def test_status_describes_each_state(store, make_tracker, run_action, dispatcher, said,
                                     order_id, email, expected):
    run_action(ActionOrderStatus(), make_tracker(slots=verified(order_id, email)))
    assert expected in said(dispatcher)[0]


def test_status_includes_a_refunded_return(store, make_tracker, run_action, dispatcher, said):
    run_action(ActionOrderStatus(), make_tracker(slots=verified("KC-10441", MEI)))
    message = said(dispatcher)[0]
    assert "was delivered on" in message
    assert "R-5001" in message and "$59.00 was refunded" in message


def test_status_includes_a_requested_return(store, make_tracker, run_action, dispatcher, said):
    run_action(ActionOrderStatus(), make_tracker(slots=verified("KC-10442", MEI)))
    message = said(dispatcher)[0]
    assert "R-5002 was requested" in message and "$54.98" in message


def test_status_refuses_an_order_that_is_not_the_customers(
    store, make_tracker, run_action, dispatcher, said
):
    run_action(ActionOrderStatus(), make_tracker(slots={"order_id": "KC-10423", "email": MEI}))
    message = said(dispatcher)[0]
    assert "couldn't match order KC-10423" in message
    assert "UPS" not in message and "1Z999" not in message and "jane" not in message


def test_status_without_slots_asks_for_them(store, make_tracker, run_action, dispatcher, said):
    run_action(ActionOrderStatus(), make_tracker())
    assert "order number" in said(dispatcher)[0]


def test_cancel_a_processing_order(store, make_tracker, run_action, dispatcher, said, rows):
    before = utcnow()
    tracker = make_tracker(slots=verified("KC-10425", JANE, cancel_confirmed=True))
    events = run_action(ActionCancelOrder(), tracker)
    assert events == [SlotSet("cancel_confirmed", None)]
    message = said(dispatcher)[0]
    assert "KC-10425 is cancelled" in message and "$79.97" in message
    assert "5-7 business days" in message
    order = order_row(rows, store, "KC-10425")
    assert order.status == "cancelled" and order.cancelled_at >= before.replace(microsecond=0)


def test_declined_cancel_leaves_the_order(store, make_tracker, run_action, dispatcher, said, rows):
    tracker = make_tracker(slots=verified("KC-10425", JANE, cancel_confirmed=False))
    events = run_action(ActionCancelOrder(), tracker)
    assert events == [SlotSet("cancel_confirmed", None)]
    assert "haven't cancelled order KC-10425" in said(dispatcher)[0]
    assert order_row(rows, store, "KC-10425").status == "processing"


@pytest.mark.parametrize(
    "order_id, email, expected",
    [
        ("KC-10423", JANE, "return it within 30 days"),
        ("KC-10424", JANE, "You can still return it until"),
        ("KC-10426", JANE, "return window closed"),
        ("KC-10432", "omar.haddad@example.org", "already cancelled"),
    ],
)
def test_cancel_explains_why_not(store, make_tracker, run_action, dispatcher, said, rows,
                                 order_id, email, expected):
    before = order_row(rows, store, order_id)
    run_action(ActionCancelOrder(), make_tracker(slots=verified(order_id, email,
                                                                cancel_confirmed=True)))
    assert expected in said(dispatcher)[0]
    after = order_row(rows, store, order_id)
    assert (after.status, after.cancelled_at) == (before.status, before.cancelled_at)


def test_cancel_someone_elses_order_does_nothing(store, make_tracker, run_action, rows):
    tracker = make_tracker(slots={"order_id": "KC-10425", "email": MEI, "cancel_confirmed": True})
    run_action(ActionCancelOrder(), tracker)
    assert order_row(rows, store, "KC-10425").status == "processing"


def test_change_address_of_a_processing_order(store, make_tracker, run_action, dispatcher, said,
                                              rows):
    new = "77 Lakeside Drive, Springfield, IL 62704"
    events = run_action(ActionChangeAddress(),
                        make_tracker(slots=verified("KC-10425", JANE, new_address=new)))
    assert events == [SlotSet("new_address", None)]
    assert new in said(dispatcher)[0]
    assert order_row(rows, store, "KC-10425").shipping_address == new


def test_change_address_of_a_shipped_order_is_refused(store, make_tracker, run_action, dispatcher,
                                                      said, rows):
    old = order_row(rows, store, "KC-10423").shipping_address
    events = run_action(ActionChangeAddress(), make_tracker(
        slots=verified("KC-10423", JANE, new_address="77 Lakeside Drive, Springfield")))
    assert events == [SlotSet("new_address", None)]
    assert "already shipped" in said(dispatcher)[0]
    assert order_row(rows, store, "KC-10423").shipping_address == old


def test_database_trouble_is_a_polite_message(broken_store, make_tracker, run_action, dispatcher,
                                              said, caplog):
    tracker = make_tracker(slots=verified("KC-10425", JANE, cancel_confirmed=True))
    events = run_action(ActionCancelOrder(), tracker)
    assert said(dispatcher) == [DB_UNAVAILABLE]
    assert events == [SlotSet("cancel_confirmed", None)]
    assert any("action_cancel_order" in record.getMessage() for record in caplog.records
               if record.levelname == "ERROR")


def test_add_business_days_skips_weekends():
    friday = datetime(2024, 6, 14, 10, 0)
    assert add_business_days(friday, 1) == datetime(2024, 6, 17, 10, 0)  # Monday
    assert add_business_days(friday, 2) == datetime(2024, 6, 18, 10, 0)
