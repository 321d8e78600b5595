"""Actions that read or change one order: status, cancelling, changing the address.

Each one re-checks that the email in the slots owns the order (see
`actions.common.load_verified_order`) and says why it cannot act when a business
rule forbids it: cancelling and address changes only while ``processing``. What
they say are the ``utter_order_status_*``, ``utter_cancel_*``, ``utter_order_cancelled``
and ``utter_address_*`` responses in domain.yml.
"""

import logging
from datetime import datetime, timedelta
from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.common import REFUND_DAYS, RETURN_WINDOW_DAYS, CannotActError, DatabaseAction, Reply
from actions.common import clean_address, format_date, format_money, load_verified_order
from actions.common import requested_order, return_reference, slot_text
from actions.db import Order, Return, utcnow

logger = logging.getLogger(__name__)

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


def order_and_items(order: Order) -> str:
    """The order id and its lines: "KC-10423 (1 x Aero Blender)" (just the id without lines)."""
    items = describe_items(order)
    return f"{order.id} ({items})" if items else order.id


def status_reply(order: Order, now: datetime) -> Reply:
    """Where ``order`` stands at ``now`` (naive UTC), leaving its returns out."""
    label = order_and_items(order)
    if order.status == "processing":
        expected = add_business_days(order.placed_at, SHIP_WITHIN_BUSINESS_DAYS)
        if expected.date() >= now.date():
            return Reply(response="utter_order_status_processing", order_and_items=label,
                         placed_on=format_date(order.placed_at), ship_by=format_date(expected))
        return Reply(response="utter_order_status_processing_overdue", order_and_items=label,
                     placed_on=format_date(order.placed_at))
    if order.status == "shipped":
        shipped_on = format_date(order.shipped_at)
        if order.carrier and order.tracking_number:
            return Reply(response="utter_order_status_shipped", order_and_items=label,
                         shipped_on=shipped_on, carrier=order.carrier,
                         tracking_number=order.tracking_number)
        if order.carrier:
            return Reply(response="utter_order_status_shipped_untracked", order_and_items=label,
                         shipped_on=shipped_on, carrier=order.carrier)
        if order.tracking_number:
            return Reply(response="utter_order_status_shipped_no_carrier",
                         order_and_items=label, shipped_on=shipped_on,
                         tracking_number=order.tracking_number)
        return Reply(response="utter_order_status_shipped_no_carrier_untracked",
                     order_and_items=label, shipped_on=shipped_on)
    if order.status == "delivered":
        return Reply(response="utter_order_status_delivered", order_and_items=label,
                     delivered_on=format_date(order.delivered_at))
    return Reply(response="utter_order_status_cancelled", order_and_items=label,
                 cancelled_on=format_date(order.cancelled_at),
                 refund_amount=format_money(order.total_cents), refund_days=REFUND_DAYS)


def returned_status_reply(order: Order, ret: Return) -> Reply:
    """Where a delivered ``order`` and its return ``ret`` (and its refund) stand."""
    label, delivered_on = order_and_items(order), format_date(order.delivered_at)
    reference, amount = return_reference(ret.id), format_money(ret.refund_cents)
    if ret.status == "refunded":
        return Reply(response="utter_order_status_return_refunded", order_and_items=label,
                     delivered_on=delivered_on, return_reference=reference,
                     refund_amount=amount, refunded_on=format_date(ret.refunded_at))
    if ret.status == "received":
        return Reply(response="utter_order_status_return_received", order_and_items=label,
                     delivered_on=delivered_on, return_reference=reference,
                     refund_amount=amount, refund_days=REFUND_DAYS)
    return Reply(response="utter_order_status_return_requested", order_and_items=label,
                 delivered_on=delivered_on, return_reference=reference,
                 requested_on=format_date(ret.created_at), refund_amount=amount,
                 refund_days=REFUND_DAYS)


class ActionOrderStatus(DatabaseAction):
    """Submits ``order_lookup_form``: status, tracking, and any return or refund."""

    def name(self) -> Text:
        return "action_order_status"

    def answer(self, session: Session, tracker: Tracker) -> Reply:
        """Describe the verified order and its return in one message.

        Only a delivered order can be returned, once (`actions.returns`). Should the
        database hold more, the latest return of a delivered order is described, and
        the returns of an order in any other state are left out (logged).
        """
        order, _ = load_verified_order(session, tracker)
        if not order.returns:
            return status_reply(order, utcnow())
        if order.status != "delivered" or len(order.returns) > 1:
            logger.warning("Order %s is %s and has %d returns; describing %s.", order.id,
                           order.status, len(order.returns),
                           "the latest" if order.status == "delivered" else "none")
        if order.status != "delivered":
            return status_reply(order, utcnow())
        return returned_status_reply(order, order.returns[-1])


def cannot_cancel_reason(order: Order, now: datetime) -> Reply:
    """Why an order that is no longer ``processing`` cannot be cancelled."""
    if order.status == "shipped":
        return Reply(response="utter_cancel_refused_shipped", order_id=order.id,
                     shipped_on=format_date(order.shipped_at),
                     return_window_days=str(RETURN_WINDOW_DAYS))
    if order.status == "delivered":
        deadline = order.delivered_at + timedelta(days=RETURN_WINDOW_DAYS)
        if now <= deadline:
            return Reply(response="utter_cancel_refused_delivered", order_id=order.id,
                         delivered_on=format_date(order.delivered_at),
                         return_deadline=format_date(deadline))
        return Reply(response="utter_cancel_refused_delivered_window_closed",
                     order_id=order.id, delivered_on=format_date(order.delivered_at),
                     return_window_days=str(RETURN_WINDOW_DAYS),
                     return_deadline=format_date(deadline))
    return Reply(response="utter_cancel_refused_cancelled", order_id=order.id,
                 cancelled_on=format_date(order.cancelled_at),
                 refund_amount=format_money(order.total_cents))


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
            if order_id:
                dispatcher.utter_message(response="utter_cancel_declined", order_id=order_id)
            else:
                dispatcher.utter_message(response="utter_cancel_declined_no_order")
            return self.reset_events()
        return await super().run(dispatcher, tracker, domain)

    def answer(self, session: Session, tracker: Tracker) -> Reply:
        """Cancel the verified order if it is still processing; else say why not."""
        order, _ = load_verified_order(session, tracker)
        now = utcnow()
        if order.status != "processing":
            raise CannotActError(cannot_cancel_reason(order, now))
        order.status = "cancelled"
        order.cancelled_at = now
        return Reply(response="utter_order_cancelled", order_id=order.id,
                     refund_amount=format_money(order.total_cents), refund_days=REFUND_DAYS)


class ActionChangeAddress(DatabaseAction):
    """Submits ``change_address_form``: new shipping address while ``processing``."""

    one_shot_slots = ("new_address",)

    def name(self) -> Text:
        return "action_change_address"

    def answer(self, session: Session, tracker: Tracker) -> Reply:
        """Store ``new_address`` on the verified order if it has not shipped yet."""
        order, _ = load_verified_order(session, tracker)
        address = clean_address(slot_text(tracker.get_slot("new_address")))
        if address is None:
            raise CannotActError(Reply(response="utter_address_incomplete"))
        if order.status == "shipped":
            raise CannotActError(Reply(response="utter_address_refused_shipped", order_id=order.id,
                                       shipped_on=format_date(order.shipped_at)))
        if order.status == "delivered":
            raise CannotActError(Reply(response="utter_address_refused_delivered",
                                       order_id=order.id,
                                       delivered_on=format_date(order.delivered_at)))
        if order.status == "cancelled":
            raise CannotActError(Reply(response="utter_address_refused_cancelled",
                                       order_id=order.id))
        order.shipping_address = address
        return Reply(response="utter_address_changed", order_id=order.id, address=address)
