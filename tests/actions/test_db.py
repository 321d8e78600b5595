"""Tests for actions/db.py: normalising input, engines, sessions and query helpers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import StatementError

from actions import db
from actions.db import Order, Ticket, customer_owns_order, find_order, normalise_email
from actions.db import normalise_order_id, returns_for_order, session_scope

REPO_ROOT = Path(__file__).resolve().parents[2]
INJECTION = "KC-1'; DROP TABLE orders;--"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("KC-10423", "KC-10423"),
        ("kc10423", "KC-10423"),
        ("KC 10423", "KC-10423"),
        ("10423", "KC-10423"),
        ("  kc-10423  ", "KC-10423"),
        ("my order is kc 10423, can you check?", "KC-10423"),
        ("It's #10423.", "KC-10423"),
        ("KC-10423 again: KC-10423", "KC-10423"),
    ],
)
def test_normalise_order_id_accepts_the_forms_customers_type(text, expected):
    assert normalise_order_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        INJECTION,
        "KC-1' OR '1'='1",
        "KC-104231",  # six digits
        "1042",  # four digits
        "AB-10423",  # another prefix
        "555-01234",  # part of a phone number
        "KC--10423",
        "KC-10423 or KC-10424",  # ambiguous
        "no idea",
        "",
        None,
        12345,  # not text
        "KC-10423 " + "x" * 600,  # absurdly long
    ],
)
def test_normalise_order_id_rejects_everything_else(text):
    assert normalise_order_id(text) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("it's jane.doe@example.com.", "jane.doe@example.com"),
        ("j+kc@mail.example.org", "j+kc@mail.example.org"),
    ],
)
def test_normalise_email_accepts_and_lowercases(text, expected):
    assert normalise_email(text) == expected


@pytest.mark.parametrize(
    "text",
    ["jane", "jane@", "jane@example", "jane@@example.com", "a@b.com c@d.com", "j..d@x.com", None],
)
def test_normalise_email_rejects_malformed(text):
    assert normalise_email(text) is None


def test_get_engine_caches_per_url_and_reads_the_environment_lazily(tmp_path, monkeypatch):
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    monkeypatch.setenv(db.DB_URL_ENV, first)
    assert db.get_engine() is db.get_engine(first)
    monkeypatch.setenv(db.DB_URL_ENV, second)
    assert str(db.get_engine().url) == second
    assert db.get_engine(first) is not db.get_engine(second)


def test_default_url_creates_the_var_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(db.DB_URL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    engine = db.get_engine()
    assert str(engine.url) == "sqlite:///var/store.db"
    assert (tmp_path / "var").is_dir()


def test_importing_the_actions_does_no_work(tmp_path):
    code = (
        "import actions, actions.db, actions.forms, actions.orders, actions.returns, "
        "actions.handoff, actions.seed; assert actions.db._ENGINES == {}"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)
    assert list(tmp_path.iterdir()) == []  # no var/ folder, no database file


def test_schema_has_every_table(store):
    tables = set(inspect(db.get_engine(store)).get_table_names())
    assert tables == {"customers", "orders", "order_items", "returns", "tickets"}


def test_session_scope_commits_on_success(store, rows):
    with session_scope() as session:
        session.add(Ticket(customer_email="a@example.com", summary="s", conversation_id="c",
                           status="open", created_at=db.utcnow()))
    assert len(rows(store, select(Ticket))) == 1


def test_session_scope_rolls_back_on_error(store, rows):
    with pytest.raises(RuntimeError):
        with session_scope() as session:
            find_order(session, "KC-10425").status = "cancelled"
            raise RuntimeError("boom")
    assert rows(store, select(Order.status).where(Order.id == "KC-10425")) == ["processing"]


def test_status_columns_reject_unknown_values(store):
    with pytest.raises(StatementError):
        with session_scope() as session:
            find_order(session, "KC-10425").status = "lost"


def test_find_order_binds_its_parameter(store, rows):
    with session_scope() as session:
        assert find_order(session, "KC-10423").customer.email == "jane.doe@example.com"
        assert find_order(session, INJECTION) is None
        assert find_order(session, "KC-99999") is None
    assert rows(store, select(func.count(Order.id))) == [20]


def test_customer_owns_order_is_case_insensitive_and_strict(store):
    with session_scope() as session:
        assert customer_owns_order(session, "KC-10423", "JANE.DOE@example.com")
        assert not customer_owns_order(session, "KC-10423", "mei.chen@example.com")
        assert not customer_owns_order(session, "KC-10423", "' OR '1'='1")
        assert not customer_owns_order(session, "KC-10423", None)
        assert not customer_owns_order(session, "KC-99999", "jane.doe@example.com")


def test_returns_for_order_lists_them_oldest_first(store):
    with session_scope() as session:
        assert [r.id for r in returns_for_order(session, "KC-10441")] == [5001]
        assert returns_for_order(session, "KC-10423") == []
