"""Create the store tables and fill them with fictional demo data.

    python -m actions.seed             # create tables, seed if the database is empty
    python -m actions.seed --reset     # drop everything first, then seed afresh
    python -m actions.seed --url sqlite:///var/demo.db

The URL defaults to ``$SUPPORT_DB_URL``, else ``sqlite:///var/store.db``. Without
``--reset`` the command does nothing when customers already exist, and says so. Ids
are fixed; dates are relative to the moment of seeding, so re-run with ``--reset``
after a few days to put every order back into the state below.

Demo orders (order id / email to type -> state):

    KC-10423 / jane.doe@example.com       shipped 2 days ago, UPS 1Z999AA10123456784
    KC-10424 / jane.doe@example.com       delivered 5 days ago: returnable
    KC-10425 / jane.doe@example.com       processing: can be cancelled / re-addressed
    KC-10426 / jane.doe@example.com       delivered 45 days ago: return window closed
    KC-10431 / omar.haddad@example.org    processing (ships to Canada)
    KC-10432 / omar.haddad@example.org    cancelled 9 days ago
    KC-10441 / mei.chen@example.com       delivered 20 days ago, return R-5001 refunded
    KC-10442 / mei.chen@example.com       delivered 6 days ago, return R-5002 requested
    KC-10443 / mei.chen@example.com       shipped 1 day ago, FedEx
    KC-10451 / carlos.ruiz@example.org    delivered 12 days ago: returnable
    KC-10452 / carlos.ruiz@example.org    shipped 3 days ago, USPS
    KC-10461 / priya.natarajan@example.com processing, placed 6 days ago (overdue)
    KC-10462 / priya.natarajan@example.com delivered 60 days ago: window closed
    KC-10471 / sam.okafor@example.org     delivered 2 days ago: returnable
    KC-10472 / sam.okafor@example.org     shipped 4 days ago, USPS
    KC-10481 / lena.fischer@example.com   processing
    KC-10482 / lena.fischer@example.com   delivered 29 days ago: last day to return
    KC-10483 / lena.fischer@example.com   delivered 31 days ago: window just closed
    KC-10491 / tom.becker@example.org     shipped 1 day ago, UPS
    KC-10492 / tom.becker@example.org     delivered 40 days ago: window closed

All names, emails (example.com / example.org), phone numbers (555) and addresses
are fictional.
"""

import argparse
import sys
from datetime import datetime, timedelta
from typing import List, NamedTuple, Optional, Sequence, Tuple

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from actions.db import Base, Customer, Order, OrderItem, Return, database_url, get_engine
from actions.db import session_scope, utcnow

FREE_SHIPPING_OVER_CENTS = 5000
STANDARD_SHIPPING_CENTS = 495

# (id, name, email, phone, address)
CUSTOMERS: List[Tuple[int, str, str, str, str]] = [
    (1, "Jane Doe", "jane.doe@example.com", "+1 555 0101",
     "12 Maple Street, Springfield, IL 62701"),
    (2, "Omar Haddad", "omar.haddad@example.org", "+1 555 0102",
     "48 Harbour Road, Halifax, NS B3H 1A1"),
    (3, "Mei Chen", "mei.chen@example.com", "+1 555 0103",
     "301 Pine Avenue, Apt 4B, Portland, OR 97205"),
    (4, "Carlos Ruiz", "carlos.ruiz@example.org", "+1 555 0104",
     "77 Elm Court, Austin, TX 73301"),
    (5, "Priya Natarajan", "priya.natarajan@example.com", "+1 555 0105",
     "9 Birch Lane, Toronto, ON M5V 2T6"),
    (6, "Sam Okafor", "sam.okafor@example.org", "+1 555 0106",
     "150 Cedar Drive, Denver, CO 80203"),
    (7, "Lena Fischer", "lena.fischer@example.com", "+1 555 0107",
     "22 Willow Way, Madison, WI 53703"),
    (8, "Tom Becker", "tom.becker@example.org", "+1 555 0108",
     "5 Oak Hill Road, Burlington, VT 05401"),
]

Item = Tuple[str, int, int]  # (product, quantity, price of one in cents)


class DemoOrder(NamedTuple):
    """One seeded order. ``days_ago`` dates the event that gave it its status."""

    order_id: str
    customer_id: int
    status: str
    days_ago: int
    items: Tuple[Item, ...]
    carrier: Optional[str] = None
    tracking_number: Optional[str] = None


UPS, FEDEX, USPS = "UPS", "FedEx", "USPS"

ORDERS: List[DemoOrder] = [
    # Jane Doe: one order in each state a first-time user wants to try.
    DemoOrder("KC-10423", 1, "shipped", 2, (("Aero Blender", 1, 8999),),
              UPS, "1Z999AA10123456784"),
    DemoOrder("KC-10424", 1, "delivered", 5,
              (("Stoneware Mug (set of 4)", 1, 3400), ("Linen Tea Towels", 2, 900))),
    DemoOrder("KC-10425", 1, "processing", 0,
              (("Electric Kettle", 1, 4999), ("Smart LED Bulb", 2, 1499))),
    DemoOrder("KC-10426", 1, "delivered", 45, (("Cast Iron Skillet", 1, 4500),)),
    DemoOrder("KC-10431", 2, "processing", 1, (("Wireless Headphones", 1, 12999),)),
    DemoOrder("KC-10432", 2, "cancelled", 9, (("Toaster", 1, 3999),)),
    DemoOrder("KC-10441", 3, "delivered", 20, (("Chef's Knife 8in", 1, 5900),)),
    DemoOrder("KC-10442", 3, "delivered", 6,
              (("Desk Lamp", 1, 3999), ("Smart LED Bulb", 1, 1499))),
    DemoOrder("KC-10443", 3, "shipped", 1, (("Coffee Grinder", 1, 5499),),
              FEDEX, "771234567890"),
    DemoOrder("KC-10451", 4, "delivered", 12, (("Bluetooth Speaker", 1, 6499),)),
    DemoOrder("KC-10452", 4, "shipped", 3, (("Bamboo Cutting Board", 2, 2499),),
              USPS, "9400111899223100012345"),
    DemoOrder("KC-10461", 5, "processing", 6, (("Stand Mixer", 1, 24999),)),
    DemoOrder("KC-10462", 5, "delivered", 60, (("Glass Storage Jars (set of 3)", 1, 2700),)),
    DemoOrder("KC-10471", 6, "delivered", 2, (("Air Fryer", 1, 9999),)),
    DemoOrder("KC-10472", 6, "shipped", 4, (("Wireless Earbuds", 1, 7999),),
              USPS, "9400111899223100067890"),
    DemoOrder("KC-10481", 7, "processing", 0, (("Robot Vacuum", 1, 19999),)),
    DemoOrder("KC-10482", 7, "delivered", 29, (("Digital Kitchen Scale", 1, 2999),)),
    DemoOrder("KC-10483", 7, "delivered", 31, (("Espresso Cups (set of 2)", 1, 1999),)),
    DemoOrder("KC-10491", 8, "shipped", 1, (("Rice Cooker", 1, 8999),),
              UPS, "1Z999AA10198765432"),
    DemoOrder("KC-10492", 8, "delivered", 40, (("Table Lamp", 1, 4999),)),
]

# (return id, order id, reason, status, days after delivery it was opened,
#  days after opening it was refunded)
RETURNS: List[Tuple[int, str, str, str, int, Optional[int]]] = [
    (5001, "KC-10441", "The blade arrived chipped.", "refunded", 5, 7),
    (5002, "KC-10442", "The lamp is a different colour from the photo.", "requested", 4, None),
]


class SeedResult(NamedTuple):
    """What `seed` did: whether it wrote anything, and the row counts afterwards."""

    seeded: bool
    customers: int
    orders: int
    returns: int


def order_total(items: Sequence[Item]) -> int:
    """Total in cents: the items plus $4.95 standard shipping unless over $50."""
    subtotal = sum(quantity * price for _, quantity, price in items)
    shipping = 0 if subtotal > FREE_SHIPPING_OVER_CENTS else STANDARD_SHIPPING_CENTS
    return subtotal + shipping


def build_order(spec: DemoOrder, address: str, now: datetime) -> Order:
    """The `Order` (with its items) for ``spec``, dated relative to ``now``."""
    event = now - timedelta(days=spec.days_ago)
    placed = {"processing": event, "cancelled": event - timedelta(days=1)}.get(
        spec.status,
        event - timedelta(days=1 if spec.status == "shipped" else 4),
    )
    shipped = {"shipped": event, "delivered": event - timedelta(days=3)}.get(spec.status)
    order = Order(
        id=spec.order_id,
        customer_id=spec.customer_id,
        status=spec.status,
        placed_at=placed,
        shipped_at=shipped,
        delivered_at=event if spec.status == "delivered" else None,
        cancelled_at=event if spec.status == "cancelled" else None,
        carrier=spec.carrier,
        tracking_number=spec.tracking_number,
        total_cents=order_total(spec.items),
        shipping_address=address,
    )
    order.items = [
        OrderItem(product=product, quantity=quantity, price_cents=price)
        for product, quantity, price in spec.items
    ]
    return order


def build_return(spec: Tuple[int, str, str, str, int, Optional[int]], order: Order) -> Return:
    """The `Return` for one ``RETURNS`` row, dated from ``order.delivered_at``."""
    return_id, order_id, reason, status, opened_after, refunded_after = spec
    created = order.delivered_at + timedelta(days=opened_after)
    refunded = created + timedelta(days=refunded_after) if refunded_after else None
    return Return(
        id=return_id,
        order_id=order_id,
        reason=reason,
        status=status,
        created_at=created,
        refund_cents=order.total_cents,
        refunded_at=refunded,
    )


def advance_id_sequences(session: Session) -> None:
    """On PostgreSQL, move the id sequences of tables seeded with explicit ids past them.

    Without this the next ``INSERT`` into ``returns`` would get id 1 instead of 5003.
    Other databases (SQLite) pick ``max(id) + 1`` themselves, so nothing is done.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in (Customer, Return):
        table = model.__table__
        highest = select(func.max(table.c.id)).scalar_subquery()
        sequence = func.pg_get_serial_sequence(table.name, "id")
        session.execute(select(func.setval(sequence, func.coalesce(highest, 1))))


def seed(
    url: Optional[str] = None, reset: bool = False, now: Optional[datetime] = None
) -> SeedResult:
    """Create the tables and the demo rows unless customers already exist.

    ``reset`` drops every table first. ``now`` (naive UTC, default the current time)
    anchors all dates. Raises ``sqlalchemy.exc.SQLAlchemyError`` on database trouble.
    """
    engine = get_engine(url)
    if reset:
        Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    now = (now or utcnow()).replace(second=0, microsecond=0)
    with session_scope(url) as session:
        seeded = session.execute(select(func.count(Customer.id))).scalar_one() == 0
        if seeded:
            addresses = {}
            for customer_id, name, email, phone, address in CUSTOMERS:
                session.add(
                    Customer(id=customer_id, name=name, email=email, phone=phone, address=address)
                )
                addresses[customer_id] = address
            orders = {
                spec.order_id: build_order(spec, addresses[spec.customer_id], now)
                for spec in ORDERS
            }
            session.add_all(orders.values())
            session.add_all(build_return(spec, orders[spec[1]]) for spec in RETURNS)
            session.flush()
            advance_id_sequences(session)
        counts = [
            session.execute(select(func.count(model.id))).scalar_one()
            for model in (Customer, Order, Return)
        ]
    return SeedResult(seeded, *counts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; prints what it did and returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m actions.seed", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--reset", action="store_true", help="drop all tables, then seed")
    parser.add_argument(
        "--url", help="database URL (default: $SUPPORT_DB_URL or sqlite:///var/store.db)"
    )
    args = parser.parse_args(argv)
    shown_url = make_url(database_url(args.url)).render_as_string(hide_password=True)
    result = seed(args.url, reset=args.reset)
    if not result.seeded:
        print(
            f"{shown_url} already holds {result.customers} customers and {result.orders} "
            "orders; nothing to do (use --reset to start over)."
        )
        return 0
    print(
        f"{'Reset and seeded' if args.reset else 'Seeded'} {shown_url}: "
        f"{result.customers} customers, {result.orders} orders, {result.returns} returns."
    )
    emails = {customer_id: email for customer_id, _, email, _, _ in CUSTOMERS}
    for spec in ORDERS:
        print(f"  {spec.order_id}  {spec.status:<10}  {emails[spec.customer_id]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
