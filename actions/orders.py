"""Actions that read or change one order: status, cancelling, changing the address.

Each one re-checks that the email in the slots owns the order (see
`actions.common.load_verified_order`) and says why it cannot act when a business
rule forbids it: cancelling and address changes only while ``processing``.
"""

from datetime import datetime, timedelta
from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.common import REFUND_DAYS, RETURN_WINDOW_DAYS, CannotAct, DatabaseAction
from actions.common import clean_address, format_date, format_money, load_verified_order
from actions.common import requested_order, return_reference, slot_text
from actions.db import Order, Return, utcnow

SHIP_WITHIN_BUSINESS_DAYS = 2


def add_business_days(start: datetime, days: int) -> datetime:
    """``start`` moved forward by ``days`` Monday-Friday days."""
    moment = start
    while days > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            days -= 1
    return moment


def describe_items(order: Order) -> str:
    """The order's lines as text: "1 x Aero Blender, 2 x Stoneware Mug"."""
    return ", ".join(f"{item.quantity} x {item.product}" for item in order.items)


def describe_status(order: Order, now: datetime) -> str:
    """One or two sentences on where ``order`` stands at ``now`` (naive UTC)."""
    items = describe_items(order)
    head = f"Order {order.id} ({items})" if items else f"Order {order.id}"
    if order.status == "processing":
        expected = add_business_days(order.placed_at, SHIP_WITHIN_BUSINESS_DAYS)
        when = (
            f"by {format_date(expected)}"
            if expected.date() >= now.date()
            else "within the next business day"
        )
        return (
            f"{head} was placed on {format_date(order.placed_at)} and is being "
            f"prepared. It should ship {when}."
        )
    if order.status == "shipped":
        carrier = order.carrier or "our carrier"
        tracking = (
            f"; the tracking number is {order.tracking_number}" if order.tracking_number else ""
        )
        return (
            f"{head} shipped on {format_date(order.shipped_at)} with {carrier}{tracking}. "
            "Standard delivery takes 3-5 business days."
        )
    if order.status == "delivered":
        return f"{head} was delivered on {format_date(order.delivered_at)}."
    return (
        f"{head} was cancelled on {format_date(order.cancelled_at)}. The refund of "
        f"{format_money(order.total_cents)} goes back to your original payment method "
        f"within {REFUND_DAYS} of the cancellation."
    )


def describe_return(ret: Return) -> str:
    """Where a return and its refund stand."""
    reference, amount = return_reference(ret.id), format_money(ret.refund_cents)
    if ret.status == "refunded":
        return (
            f"Return {reference} is complete: {amount} was refunded to your original "
            f"payment method on {format_date(ret.refunded_at)}."
        )
    if ret.status == "received":
        return (
            f"Return {reference} has arrived at our warehouse; the refund of {amount} "
            f"goes back to your original payment method within {REFUND_DAYS}."
        )
    return (
        f"Return {reference} was requested on {format_date(ret.created_at)}. Once the "
        f"items reach our warehouse, the refund of {amount} goes back to your original "
        f"payment method within {REFUND_DAYS}."
    )


class ActionOrderStatus(DatabaseAction):
    """Submits ``order_lookup_form``: status, tracking, and any return or refund."""

    def name(self) -> Text:
        return "action_order_status"

    def answer(self, session: Session, tracker: Tracker) -> Text:
        """Describe the verified order and its returns in one message."""
        order, _ = load_verified_order(session, tracker)
        parts = [describe_status(order, utcnow())]
        parts.extend(describe_return(ret) for ret in order.returns)
        return " ".join(parts)


def cannot_cancel_reason(order: Order, now: datetime) -> str:
    """Why an order that is no longer ``processing`` cannot be cancelled."""
    if order.status == "shipped":
        return (
            f"Order {order.id} already shipped on {format_date(order.shipped_at)}, so it "
            "can't be cancelled any more. Once it's delivered you can return it within "
            f"{RETURN_WINDOW_DAYS} days for a refund; the return label is free."
        )
    if order.status == "delivered":
        deadline = order.delivered_at + timedelta(days=RETURN_WINDOW_DAYS)
        window = (
            f"You can still return it until {format_date(deadline)}: just ask me to "
            "start a return."
            if now <= deadline
            else f"Its {RETURN_WINDOW_DAYS}-day return window closed on {format_date(deadline)}."
        )
        return (
            f"Order {order.id} was delivered on {format_date(order.delivered_at)}, so it "
            f"can't be cancelled. {window}"
        )
    return (
        f"Order {order.id} was already cancelled on {format_date(order.cancelled_at)}; "
        f"the refund of {format_money(order.total_cents)} goes back to your original "
        "payment method."
    )


class ActionCancelOrder(DatabaseAction):
    """Submits ``cancel_order_form``: cancels a ``processing`` order once confirmed."""

    one_shot_slots = ("cancel_confirmed",)

    def name(self) -> Text:
        return "action_cancel_order"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[EventType]:
        """Leave the order alone unless ``cancel_confirmed`` is True; else cancel it."""
        if tracker.get_slot("cancel_confirmed") is not True:
            order_id, _ = requested_order(tracker)
            name = f"order {order_id}" if order_id else "your order"
            dispatcher.utter_message(text=f"Okay, I haven't cancelled {name}; it stays as it is.")
            return self.reset_events()
        return await super().run(dispatcher, tracker, domain)

    def answer(self, session: Session, tracker: Tracker) -> Text:
        """Cancel the verified order if it is still processing; else say why not."""
        order, _ = load_verified_order(session, tracker)
        now = utcnow()
        if order.status != "processing":
            raise CannotAct(cannot_cancel_reason(order, now))
        order.status = "cancelled"
        order.cancelled_at = now
        return (
            f"Done: order {order.id} is cancelled. The refund of "
            f"{format_money(order.total_cents)} goes back to your original payment "
            f"method in {REFUND_DAYS}."
        )


class ActionChangeAddress(DatabaseAction):
    """Submits ``change_address_form``: new shipping address while ``processing``."""

    one_shot_slots = ("new_address",)

    def name(self) -> Text:
        return "action_change_address"

    def answer(self, session: Session, tracker: Tracker) -> Text:
        """Store ``new_address`` on the verified order if it has not shipped yet."""
        order, _ = load_verified_order(session, tracker)
        address = clean_address(slot_text(tracker.get_slot("new_address")))
        if address is None:
            raise CannotAct(
                "I need the full new address, with house number, street, city and ZIP "
                "or postal code, to change it."
            )
        if order.status == "shipped":
            raise CannotAct(
                f"Order {order.id} already shipped on {format_date(order.shipped_at)}, so "
                "I can't change its address any more."
            )
        if order.status == "delivered":
            raise CannotAct(
                f"Order {order.id} was already delivered on "
                f"{format_date(order.delivered_at)}, so its address can't be changed."
            )
        if order.status == "cancelled":
            raise CannotAct(f"Order {order.id} was cancelled, so there's no address to change.")
        order.shipping_address = address
        return f"Done: order {order.id} will now ship to {address}."
