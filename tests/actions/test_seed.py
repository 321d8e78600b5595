"""Tests for actions/seed.py: the demo data, idempotence, --reset and the CLI."""

from datetime import datetime, timedelta

from sqlalchemy import func, select

from actions import seed as seed_module
from actions.db import ORDER_STATUSES, Customer, Order, Return, find_order, session_scope
from actions.seed import CUSTOMERS, ORDERS, main, order_total, seed

NOW = datetime(2024, 6, 12, 15, 30)  # a Wednesday


def test_seed_creates_customers_orders_and_returns(db_url, rows):
    result = seed(db_url, now=NOW)
    assert result == (True, 8, 20, 2)
    assert set(rows(db_url, select(Order.status))) == set(ORDER_STATUSES)
    assert len(rows(db_url, select(Order).where(Order.status == "cancelled"))) == 1
    assert sorted(rows(db_url, select(Return.status))) == ["refunded", "requested"]


def test_demo_people_are_fictional(db_url, rows):
    seed(db_url, now=NOW)
    for customer in rows(db_url, select(Customer)):
        assert customer.email.endswith(("@example.com", "@example.org"))
        assert "555" in customer.phone


def test_demo_orders_are_in_the_documented_states(db_url):
    seed(db_url, now=NOW)
    with session_scope(db_url) as session:
        shipped = find_order(session, "KC-10423")
        assert (shipped.status, shipped.carrier) == ("shipped", "UPS")
        assert shipped.tracking_number and shipped.shipped_at == NOW - timedelta(days=2)
        assert find_order(session, "KC-10424").delivered_at == NOW - timedelta(days=5)
        assert find_order(session, "KC-10426").delivered_at == NOW - timedelta(days=45)
        assert find_order(session, "KC-10425").status == "processing"
        cancelled = find_order(session, "KC-10432")
        assert cancelled.cancelled_at == NOW - timedelta(days=9)
        assert cancelled.placed_at < cancelled.cancelled_at
        refunded = find_order(session, "KC-10441").returns[0]
        assert (refunded.id, refunded.status) == (5001, "refunded")
        assert refunded.refunded_at > refunded.created_at > refunded.order.delivered_at
        requested = find_order(session, "KC-10442").returns[0]
        assert (requested.id, requested.status, requested.refunded_at) == (5002, "requested", None)


def test_every_order_has_items_and_consistent_dates(db_url):
    seed(db_url, now=NOW)
    with session_scope(db_url) as session:
        orders = list(session.execute(select(Order)).scalars())
        assert all(order.items for order in orders)
    for order in orders:
        assert order.placed_at <= NOW
        if order.status in ("shipped", "delivered"):
            assert order.placed_at < order.shipped_at
        if order.status == "delivered":
            assert order.shipped_at < order.delivered_at
        if order.status == "shipped":
            assert order.carrier and order.tracking_number


def test_totals_follow_the_shipping_rule():
    assert order_total([("Skillet", 1, 4500)]) == 4995  # under $50: + $4.95
    assert order_total([("Blender", 1, 8999)]) == 8999  # over $50: free


def test_docstring_lists_every_demo_order_with_its_email_and_state():
    emails = {customer_id: email for customer_id, _, email, _, _ in CUSTOMERS}
    lines = {line.split()[0]: line for line in seed_module.__doc__.splitlines()
             if line.strip().startswith("KC-")}
    assert set(lines) == {spec.order_id for spec in ORDERS}
    for spec in ORDERS:
        assert emails[spec.customer_id] in lines[spec.order_id]
        assert spec.status in lines[spec.order_id]


def test_seed_is_idempotent_without_reset(db_url, rows):
    seed(db_url, now=NOW)
    with session_scope(db_url) as session:
        find_order(session, "KC-10425").status = "cancelled"
    again = seed(db_url, now=NOW)
    assert again == (False, 8, 20, 2)
    assert rows(db_url, select(Order.status).where(Order.id == "KC-10425")) == ["cancelled"]


def test_reset_restores_the_demo_state(db_url, rows):
    seed(db_url, now=NOW)
    with session_scope(db_url) as session:
        find_order(session, "KC-10425").status = "cancelled"
    assert seed(db_url, reset=True, now=NOW).seeded
    assert rows(db_url, select(Order.status).where(Order.id == "KC-10425")) == ["processing"]
    assert rows(db_url, select(func.count(Order.id))) == [20]


def test_cli_seeds_then_says_there_is_nothing_to_do(db_url, capsys):
    assert main(["--url", db_url]) == 0
    first = capsys.readouterr().out
    assert "8 customers, 20 orders, 2 returns" in first
    assert "KC-10423" in first and "jane.doe@example.com" in first
    assert main(["--url", db_url]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["--url", db_url, "--reset"]) == 0
    assert capsys.readouterr().out.startswith("Reset and seeded")


def test_cli_uses_support_db_url_by_default(db_url, capsys, rows):
    assert main([]) == 0
    assert db_url in capsys.readouterr().out
    assert rows(db_url, select(func.count(Customer.id))) == [8]
