"""The store database: SQLAlchemy models, the engine, sessions and query helpers.

The database URL comes from the environment variable ``SUPPORT_DB_URL``
(default ``sqlite:///var/store.db``, relative to the working directory). Nothing
happens at import time: the engine is created by the first `get_engine` call and
cached per URL. Every query goes through the ORM / ``select()``, so user input only
ever reaches the database as a bound parameter.

Timestamps are naive UTC datetimes (SQLite keeps no time zone); money is integer
cents.
"""

import logging
import os
import re
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from sqlalchemy import (
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    func,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, declarative_base, relationship

logger = logging.getLogger(__name__)

DB_URL_ENV = "SUPPORT_DB_URL"
DEFAULT_DB_URL = "sqlite:///var/store.db"

ORDER_STATUSES = ("processing", "shipped", "delivered", "cancelled")
RETURN_STATUSES = ("requested", "received", "refunded")
TICKET_STATUSES = ("open", "closed")

Base = declarative_base()


def _status(name: str, values: tuple) -> Enum:
    """A VARCHAR status column with a CHECK constraint limiting it to ``values``."""
    return Enum(
        *values, name=name, native_enum=False, create_constraint=True, validate_strings=True
    )


class Customer(Base):
    """A customer; ``email`` is unique and is what a customer proves to see orders."""

    __tablename__ = "customers"
    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False)
    email = Column(String(254), nullable=False, unique=True)
    phone = Column(String(30))
    address = Column(String(300))
    orders = relationship("Order", back_populates="customer")


class Order(Base):
    """An order with id ``KC-ddddd``; totals in cents, timestamps naive UTC."""

    __tablename__ = "orders"
    id = Column(String(8), primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False)
    status = Column(_status("order_status", ORDER_STATUSES), nullable=False)
    placed_at = Column(DateTime, nullable=False)
    shipped_at = Column(DateTime)
    delivered_at = Column(DateTime)
    cancelled_at = Column(DateTime)
    carrier = Column(String(40))
    tracking_number = Column(String(40))
    total_cents = Column(Integer, nullable=False)
    shipping_address = Column(String(300), nullable=False)
    customer = relationship("Customer", back_populates="orders")
    items = relationship("OrderItem", back_populates="order", order_by="OrderItem.id")
    returns = relationship("Return", back_populates="order", order_by="Return.id")


class OrderItem(Base):
    """One line of an order: ``quantity`` units of ``product`` at ``price_cents`` each."""

    __tablename__ = "order_items"
    id = Column(Integer, primary_key=True)
    order_id = Column(String(8), ForeignKey("orders.id"), nullable=False)
    product = Column(String(100), nullable=False)
    quantity = Column(Integer, nullable=False, default=1)
    price_cents = Column(Integer, nullable=False)
    order = relationship("Order", back_populates="items")


class Return(Base):
    """A return of a whole order; ``refund_cents`` is what goes back to the customer."""

    __tablename__ = "returns"
    id = Column(Integer, primary_key=True)
    order_id = Column(String(8), ForeignKey("orders.id"), nullable=False)
    reason = Column(Text, nullable=False)
    status = Column(_status("return_status", RETURN_STATUSES), nullable=False, default="requested")
    created_at = Column(DateTime, nullable=False)
    refund_cents = Column(Integer, nullable=False)
    refunded_at = Column(DateTime)
    order = relationship("Order", back_populates="returns")


class Ticket(Base):
    """A hand-off to a human agent, keyed by the conversation's sender id."""

    __tablename__ = "tickets"
    id = Column(Integer, primary_key=True)
    customer_email = Column(String(254), nullable=False)
    summary = Column(Text, nullable=False)
    conversation_id = Column(String(255), nullable=False)
    status = Column(_status("ticket_status", TICKET_STATUSES), nullable=False, default="open")
    created_at = Column(DateTime, nullable=False)


# --- engine and sessions -----------------------------------------------------------

_ENGINES: Dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def utcnow() -> datetime:
    """The current time as a naive UTC datetime, the form every timestamp is stored in."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def database_url(url: Optional[str] = None) -> str:
    """Return ``url``, else ``$SUPPORT_DB_URL``, else ``sqlite:///var/store.db``."""
    return url or os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL


def _prepare_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)


def get_engine(url: Optional[str] = None) -> Engine:
    """Return the (cached) engine for ``url`` or the configured database URL.

    For a SQLite file the parent folder (``var/`` by default) is created. Raises
    ``sqlalchemy.exc.ArgumentError`` for a malformed URL and ``OSError`` when the
    folder cannot be created; connection errors surface on first use.
    """
    resolved = database_url(url)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(resolved)
        if engine is None:
            _prepare_sqlite_folder(resolved)
            engine = create_engine(resolved, future=True)
            _ENGINES[resolved] = engine
        return engine


def dispose_engines() -> None:
    """Close and forget every cached engine (tests, or after changing the URL)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


@contextmanager
def session_scope(url: Optional[str] = None) -> Iterator[Session]:
    """Yield a `Session` that commits on success and rolls back on any exception.

    Exceptions (``sqlalchemy.exc.SQLAlchemyError`` for database trouble) propagate
    after the rollback; the session is always closed.
    """
    session = Session(get_engine(url), future=True, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --- query helpers (all parameters are bound) ----------------------------------------


def find_order(session: Session, order_id: str) -> Optional[Order]:
    """The order with the normalised id ``order_id`` (``KC-ddddd``), or None."""
    return session.execute(select(Order).where(Order.id == order_id)).scalar_one_or_none()


def customer_owns_order(session: Session, order_id: str, email: Optional[str]) -> bool:
    """True when ``email`` (case-insensitive) is the email of the order's customer."""
    if not email:
        return False
    statement = (
        select(Order.id)
        .join(Customer, Order.customer_id == Customer.id)
        .where(Order.id == order_id, func.lower(Customer.email) == email.strip().lower())
    )
    return session.execute(statement).first() is not None


def returns_for_order(session: Session, order_id: str) -> List[Return]:
    """All returns of an order, oldest first."""
    statement = select(Return).where(Return.order_id == order_id).order_by(Return.id)
    return list(session.execute(statement).scalars())


# --- normalising what customers type -----------------------------------------------

# "KC-10423", "kc10423", "KC 10423" or a bare "10423", not glued to other word
# characters or dashes (so "KC-104231", "AB-10423" and "555-01234" do not match).
_ORDER_ID_RE = re.compile(r"(?<![\w-])(?:kc[- ]?)?(\d{5})(?![\w-])", re.IGNORECASE | re.ASCII)
_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?![\w-]|\.[\w-])",
    re.IGNORECASE | re.ASCII,
)
MAX_INPUT_CHARS = 500


def normalise_order_id(text: Optional[str]) -> Optional[str]:
    """Return the one order id in ``text`` as ``KC-ddddd``, or None.

    Accepts "KC-10423", "kc10423", "KC 10423", "10423" and a sentence holding one of
    them ("it's order kc 10423, thanks"). Returns None for anything else: no id, two
    different ids, six digits, or text longer than 500 characters. Only the canonical
    form ever leaves this function, so nothing else the user typed reaches a query.
    """
    if not isinstance(text, str) or len(text) > MAX_INPUT_CHARS:
        return None
    found = {match.group(1) for match in _ORDER_ID_RE.finditer(text)}
    if len(found) != 1:
        return None
    return f"KC-{found.pop()}"


def normalise_email(text: Optional[str]) -> Optional[str]:
    """Return the one well-formed email address in ``text``, lower-cased, or None."""
    if not isinstance(text, str) or len(text) > MAX_INPUT_CHARS:
        return None
    found = {match.group(0).lower() for match in _EMAIL_RE.finditer(text)}
    if len(found) != 1:
        return None
    email = found.pop()
    return email if len(email) <= 254 and ".." not in email else None
