"""Tests for actions/orders.py: order status, cancelling and changing the address.

The texts are what the customer reads: the responses the actions send, rendered
from domain.yml with the variables sent along (conftest.rendered).
"""

from datetime import datetime, timedelta

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.common import format_date
from actions.db import Order, Return, session_scope, utcnow
from actions.orders import (
    ActionCancelOrder,
    ActionChangeAddress,
    ActionOrderStatus,
    add_business_days,
)

JANE = "jane.doe@example.com"
MEI = "mei.chen@example.com"
OMAR = "omar.haddad@example.org"
PRIYA = "priya.natarajan@example.com"
DB_DOWN = "I can't reach the order system right now, please try again in a few minutes."
NEW_ADDRESS = "77 Lakeside Drive, Springfield, IL 62704"


def verified(order_id, email, **extra):
    return {"order_id": order_id, "email": email, "verified_email": email, **extra}


def order_row(rows, url, order_id):
    return rows(url, select(Order).where(Order.id == order_id))[0]


def return_row(rows, url, order_id):
    return rows(url, select(Return).where(Return.order_id == order_id))[-1]


def change_order(order_id, **values):
    """Set columns of an order in the store that SUPPORT_DB_URL names."""
    with session_scope() as session:
        order = session.get(Order, order_id)
        for column, value in values.items():
            setattr(order, column, value)


def d(moment):
    return format_date(moment)


# (order id, owner, changes to the seeded order, the status message as a function of
# the order's row and its latest return's row)
STATUS_WORDS = [
    ("KC-10425", JANE, {}, lambda o, r: (
        f"Order KC-10425 (1 x Electric Kettle, 2 x Smart LED Bulb) was placed on "
        f"{d(o.placed_at)} and is being prepared. It should ship by "
        f"{d(add_business_days(o.placed_at, 2))}.")),
    ("KC-10461", PRIYA, {}, lambda o, r: (
        f"Order KC-10461 (1 x Stand Mixer) was placed on {d(o.placed_at)} and is being "
        "prepared. It should ship within the next business day.")),
    ("KC-10423", JANE, {}, lambda o, r: (
        f"Order KC-10423 (1 x Aero Blender) shipped on {d(o.shipped_at)} with UPS; the "
        "tracking number is 1Z999AA10123456784. Standard delivery takes 3-5 business days.")),
    ("KC-10423", JANE, {"tracking_number": None}, lambda o, r: (
        f"Order KC-10423 (1 x Aero Blender) shipped on {d(o.shipped_at)} with UPS. "
        "Standard delivery takes 3-5 business days.")),
    ("KC-10423", JANE, {"carrier": None}, lambda o, r: (
        f"Order KC-10423 (1 x Aero Blender) shipped on {d(o.shipped_at)} with our carrier; "
        "the tracking number is 1Z999AA10123456784. Standard delivery takes 3-5 business "
        "days.")),
    ("KC-10423", JANE, {"carrier": None, "tracking_number": None}, lambda o, r: (
        f"Order KC-10423 (1 x Aero Blender) shipped on {d(o.shipped_at)} with our carrier. "
        "Standard delivery takes 3-5 business days.")),
    ("KC-10424", JANE, {}, lambda o, r: (
        f"Order KC-10424 (1 x Stoneware Mug (set of 4), 2 x Linen Tea Towels) was delivered "
        f"on {d(o.delivered_at)}.")),
    ("KC-10432", OMAR, {}, lambda o, r: (
        f"Order KC-10432 (1 x Toaster) was cancelled on {d(o.cancelled_at)}. The refund of "
        "$44.94 goes back to your original payment method within 5-7 business days of the "
        "cancellation.")),
    ("KC-10441", MEI, {}, lambda o, r: (
        f"Order KC-10441 (1 x Chef's Knife 8in) was delivered on {d(o.delivered_at)}. Return "
        f"R-5001 is complete: $59.00 was refunded to your original payment method on "
        f"{d(r.refunded_at)}.")),
    ("KC-10442", MEI, {}, lambda o, r: (
        f"Order KC-10442 (1 x Desk Lamp, 1 x Smart LED Bulb) was delivered on "
        f"{d(o.delivered_at)}. Return R-5002 was requested on {d(r.created_at)}. Once the "
        "items reach our warehouse, the refund of $54.98 goes back to your original payment "
        "method within 5-7 business days.")),
]


@pytest.mark.parametrize("order_id, email, changes, words", STATUS_WORDS,
                         ids=[f"{o}-{'-'.join(c) or 'seeded'}" for o, _, c, _ in STATUS_WORDS])
def test_status_words(store, make_tracker, run_action, dispatcher, said, rows,
                      order_id, email, changes, words):
    if changes:
        change_order(order_id, **changes)
    tracker = make_tracker(slots=verified(order_id, email))
    assert run_action(ActionOrderStatus(), tracker) == []
    returns = rows(store, select(Return).where(Return.order_id == order_id))
    expected = words(order_row(rows, store, order_id), returns[-1] if returns else None)
    assert said(dispatcher, tracker) == [expected]


def test_status_of_a_received_return(store, make_tracker, run_action, dispatcher, said, rows):
    with session_scope() as session:
        session.get(Return, 5002).status = "received"
    run_action(ActionOrderStatus(), make_tracker(slots=verified("KC-10442", MEI)))
    delivered = order_row(rows, store, "KC-10442").delivered_at
    assert said(dispatcher) == [
        f"Order KC-10442 (1 x Desk Lamp, 1 x Smart LED Bulb) was delivered on {d(delivered)}. "
        "Return R-5002 has arrived at our warehouse; the refund of $54.98 goes back to your "
        "original payment method within 5-7 business days."]


def test_status_of_an_order_without_items_names_the_order_only(store, make_tracker,
                                                                run_action, dispatcher, said,
                                                                rows):
    with session_scope() as session:
        for item in session.get(Order, "KC-10424").items:
            session.delete(item)
    run_action(ActionOrderStatus(), make_tracker(slots=verified("KC-10424", JANE)))
    delivered = order_row(rows, store, "KC-10424").delivered_at
    assert said(dispatcher) == [f"Order KC-10424 was delivered on {d(delivered)}."]


def test_status_sends_a_response_with_its_variables(store, make_tracker, run_action,
                                                    dispatcher, rows):
    run_action(ActionOrderStatus(), make_tracker(slots=verified("KC-10423", JANE)))
    [message] = dispatcher.messages
    assert message["response"] == "utter_order_status_shipped" and message["text"] is None
    shipped_at = order_row(rows, store, "KC-10423").shipped_at
    assert {k: message[k] for k in ("order_and_items", "shipped_on", "carrier",
                                    "tracking_number")} == {
        "order_and_items": "KC-10423 (1 x Aero Blender)", "shipped_on": d(shipped_at),
        "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}


def test_verification_words(store, make_tracker, run_action, dispatcher, said):
    run_action(ActionOrderStatus(), make_tracker())
    run_action(ActionOrderStatus(), make_tracker(slots={"order_id": "kc 10423", "email": MEI}))
    assert said(dispatcher) == [
        "I need your order number (like KC-10423) and the email address on the order before "
        "I can help with that.",
        "I couldn't match order KC-10423 with that email address, so I can't share its "
        "details. Please check both and try again.",
    ]


# (order id, owner, the refusal as a function of the order's row)
CANCEL_REFUSALS = [
    ("KC-10423", JANE, lambda o: (
        f"Order KC-10423 already shipped on {d(o.shipped_at)}, so it can't be cancelled any "
        "more. Once it's delivered you can return it within 30 days for a refund; the "
        "return label is free.")),
    ("KC-10424", JANE, lambda o: (
        f"Order KC-10424 was delivered on {d(o.delivered_at)}, so it can't be cancelled. You "
        f"can still return it until {d(o.delivered_at + timedelta(days=30))}: just ask me "
        "to start a return.")),
    ("KC-10426", JANE, lambda o: (
        f"Order KC-10426 was delivered on {d(o.delivered_at)}, so it can't be cancelled. Its "
        f"30-day return window closed on {d(o.delivered_at + timedelta(days=30))}.")),
    ("KC-10432", OMAR, lambda o: (
        f"Order KC-10432 was already cancelled on {d(o.cancelled_at)}; the refund of $44.94 "
        "goes back to your original payment method.")),
]


@pytest.mark.parametrize("order_id, email, words", CANCEL_REFUSALS,
                         ids=[order_id for order_id, _, _ in CANCEL_REFUSALS])
def test_cancel_refusal_words(store, make_tracker, run_action, dispatcher, said, rows,
                              order_id, email, words):
    run_action(ActionCancelOrder(), make_tracker(slots=verified(order_id, email,
                                                                cancel_confirmed=True)))
    assert said(dispatcher) == [words(order_row(rows, store, order_id))]


def test_cancel_words(store, make_tracker, run_action, dispatcher, said):
    run_action(ActionCancelOrder(), make_tracker(slots={"order_id": "10425",
                                                        "cancel_confirmed": False}))
    run_action(ActionCancelOrder(), make_tracker(slots={"cancel_confirmed": None}))
    run_action(ActionCancelOrder(), make_tracker(slots=verified("KC-10425", JANE,
                                                                cancel_confirmed=True)))
    assert said(dispatcher) == [
        "Okay, I haven't cancelled order KC-10425; it stays as it is.",
        "Okay, I haven't cancelled your order; it stays as it is.",
        "Done: order KC-10425 is cancelled. The refund of $79.97 goes back to your original "
        "payment method in 5-7 business days.",
    ]


@pytest.mark.parametrize("order_id, email, address, words", [
    ("KC-10425", JANE, f"  {NEW_ADDRESS} ", lambda o: (
        f"Done: order KC-10425 will now ship to {NEW_ADDRESS}.")),
    ("KC-10425", JANE, "Main Street", lambda o: (
        "I need the full new address, with house number, street, city and ZIP or postal code, "
        "to change it.")),
    ("KC-10423", JANE, NEW_ADDRESS, lambda o: (
        f"Order KC-10423 already shipped on {d(o.shipped_at)}, so I can't change its address "
        "any more.")),
    ("KC-10424", JANE, NEW_ADDRESS, lambda o: (
        f"Order KC-10424 was already delivered on {d(o.delivered_at)}, so its address can't "
        "be changed.")),
    ("KC-10432", OMAR, NEW_ADDRESS, lambda o: (
        "Order KC-10432 was cancelled, so there's no address to change.")),
], ids=["changed", "incomplete", "shipped", "delivered", "cancelled"])
def test_change_address_words(store, make_tracker, run_action, dispatcher, said, rows,
                              order_id, email, address, words):
    run_action(ActionChangeAddress(), make_tracker(slots=verified(order_id, email,
                                                                  new_address=address)))
    assert said(dispatcher) == [words(order_row(rows, store, order_id))]


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
        ("KC-10432", OMAR, "was cancelled on"),
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
    assert dispatcher.messages[0]["response"] == "utter_order_status_return_requested"


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
    assert said(dispatcher) == [DB_DOWN]
    assert events == [SlotSet("cancel_confirmed", None)]
    assert any("action_cancel_order" in record.getMessage() for record in caplog.records
               if record.levelname == "ERROR")


def test_add_business_days_skips_weekends():
    friday = datetime(2024, 6, 14, 10, 0)
    assert add_business_days(friday, 1) == datetime(2024, 6, 17, 10, 0)  # Monday
    assert add_business_days(friday, 2) == datetime(2024, 6, 18, 10, 0)
