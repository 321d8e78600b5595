"""Opening a return (``action_open_return``, submits ``return_form``).

Store rule: a whole order can be returned within 30 days of delivery, with a free
prepaid label sent by email; the refund goes back to the original payment method
5-7 business days after the return reaches the warehouse. One return per order.
"""

from datetime import datetime, timedelta
from typing import Text

from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from actions.common import REFUND_DAYS, RETURN_WINDOW_DAYS, CannotAct, DatabaseAction
from actions.common import clean_reason, format_date, format_money, load_verified_order
from actions.common import return_reference, slot_text
from actions.db import Order, Return, returns_for_order, utcnow


def return_deadline(order: Order) -> datetime:
    """The last moment (naive UTC) a delivered order can be returned."""
    return order.delivered_at + timedelta(days=RETURN_WINDOW_DAYS)


def check_returnable(order: Order, now: datetime) -> None:
    """Raise `CannotAct` with the reason when ``order`` cannot be returned at ``now``."""
    if order.status == "processing":
        raise CannotAct(
            f"Order {order.id} hasn't shipped yet, so there's nothing to return. If you "
            "no longer want it, I can cancel it for you instead."
        )
    if order.status == "shipped":
        raise CannotAct(
            f"Order {order.id} is still on its way (it shipped on "
            f"{format_date(order.shipped_at)}). Once it's delivered you have "
            f"{RETURN_WINDOW_DAYS} days to return it."
        )
    if order.status == "cancelled":
        raise CannotAct(
            f"Order {order.id} was cancelled, so there's nothing to return; its refund "
            "goes back to your original payment method."
        )
    if now > return_deadline(order):
        raise CannotAct(
            f"Order {order.id} was delivered on {format_date(order.delivered_at)}, and "
            f"our {RETURN_WINDOW_DAYS}-day return window closed on "
            f"{format_date(return_deadline(order))}, so I can't open a return. If an "
            "item is faulty it may still be covered by our warranty: ask me to connect "
            "you with a person."
        )


def existing_return_message(order: Order, ret: Return) -> str:
    """Why a second return cannot be opened for ``order``."""
    reference = return_reference(ret.id)
    if ret.status == "refunded":
        return (
            f"Order {order.id} was already returned ({reference}) and "
            f"{format_money(ret.refund_cents)} was refunded on "
            f"{format_date(ret.refunded_at)}."
        )
    return (
        f"There's already a return open for order {order.id}: {reference}, requested on "
        f"{format_date(ret.created_at)}. The prepaid label was sent by email; there's "
        "no need to open another one."
    )


class ActionOpenReturn(DatabaseAction):
    """Creates a ``requested`` return for a verified, delivered, returnable order."""

    one_shot_slots = ("return_reason",)

    def name(self) -> Text:
        return "action_open_return"

    def answer(self, session: Session, tracker: Tracker) -> Text:
        """Open the return and say its id; raise `CannotAct` when a rule forbids it."""
        order, email = load_verified_order(session, tracker)
        reason = clean_reason(slot_text(tracker.get_slot("return_reason")))
        if reason is None:
            raise CannotAct("Please tell me in a few words why you're returning the order.")
        now = utcnow()
        check_returnable(order, now)
        existing = returns_for_order(session, order.id)
        if existing:
            raise CannotAct(existing_return_message(order, existing[-1]))
        ret = Return(
            order_id=order.id,
            reason=reason,
            status="requested",
            created_at=now,
            refund_cents=order.total_cents,
        )
        session.add(ret)
        session.flush()  # assigns ret.id
        return (
            f"I've opened return {return_reference(ret.id)} for order {order.id}. A "
            f"prepaid return label is on its way to {email}. Once the items reach our "
            f"warehouse, the refund of {format_money(ret.refund_cents)} goes back to "
            f"your original payment method within {REFUND_DAYS}."
        )
