"""Opening a return (``action_open_return``, submits ``return_form``).

Store rule: a whole order can be returned within 30 days of delivery, with a free
prepaid label sent by email; the refund goes back to the original payment method
5-7 business days after the return reaches the warehouse. One return per order.
What it says are the ``utter_return_*`` responses in domain.yml.
"""

from datetime import datetime, timedelta
from typing import Text

from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from actions.common import REFUND_DAYS, RETURN_WINDOW_DAYS, CannotActError, DatabaseAction, Reply
from actions.common import clean_reason, format_date, format_money, load_verified_order
from actions.common import return_reference, slot_text
from actions.db import Order, Return, returns_for_order, utcnow


def return_deadline(order: Order) -> datetime:
    """The last moment (naive UTC) a delivered order can be returned."""
    return order.delivered_at + timedelta(days=RETURN_WINDOW_DAYS)


def check_returnable(order: Order, now: datetime) -> None:
    """Raise `CannotActError` with the reason when ``order`` cannot be returned at ``now``."""
    if order.status == "processing":
        raise CannotActError(Reply(response="utter_return_refused_processing", order_id=order.id))
    if order.status == "shipped":
        raise CannotActError(Reply(response="utter_return_refused_shipped", order_id=order.id,
                                   shipped_on=format_date(order.shipped_at),
                                   return_window_days=str(RETURN_WINDOW_DAYS)))
    if order.status == "cancelled":
        raise CannotActError(Reply(response="utter_return_refused_cancelled", order_id=order.id))
    if now > return_deadline(order):
        raise CannotActError(Reply(response="utter_return_refused_window_closed", order_id=order.id,
                                   delivered_on=format_date(order.delivered_at),
                                   return_window_days=str(RETURN_WINDOW_DAYS),
                                   return_deadline=format_date(return_deadline(order))))


def existing_return_reply(order: Order, ret: Return) -> Reply:
    """Why a second return cannot be opened for ``order``."""
    reference = return_reference(ret.id)
    if ret.status == "refunded":
        return Reply(response="utter_return_exists_refunded", order_id=order.id,
                     return_reference=reference, refund_amount=format_money(ret.refund_cents),
                     refunded_on=format_date(ret.refunded_at))
    return Reply(response="utter_return_exists", order_id=order.id, return_reference=reference,
                 requested_on=format_date(ret.created_at))


class ActionOpenReturn(DatabaseAction):
    """Creates a ``requested`` return for a verified, delivered, returnable order."""

    one_shot_slots = ("return_reason",)

    def name(self) -> Text:
        return "action_open_return"

    def answer(self, session: Session, tracker: Tracker) -> Reply:
        """Open the return and say its id; raise `CannotActError` when a rule forbids it."""
        order, email = load_verified_order(session, tracker)
        reason = clean_reason(slot_text(tracker.get_slot("return_reason")))
        if reason is None:
            raise CannotActError(Reply(response="utter_return_reason_missing"))
        now = utcnow()
        check_returnable(order, now)
        existing = returns_for_order(session, order.id)
        if existing:
            raise CannotActError(existing_return_reply(order, existing[-1]))
        ret = Return(
            order_id=order.id,
            reason=reason,
            status="requested",
            created_at=now,
            refund_cents=order.total_cents,
        )
        session.add(ret)
        session.flush()  # assigns ret.id
        return Reply(response="utter_return_opened", return_reference=return_reference(ret.id),
                     order_id=order.id, email=email,
                     refund_amount=format_money(ret.refund_cents), refund_days=REFUND_DAYS)
