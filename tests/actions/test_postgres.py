"""The store on PostgreSQL: seeding, sequences after explicit ids, and an action's write."""

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from actions import db
from actions.db import Order, Return
from actions.returns import ActionOpenReturn
from actions.seed import seed

SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STORE_URL = "postgresql://postgres@127.0.0.1:5432/kestrel_store_test"


@pytest.fixture(scope="module")
def postgres_store_url():
    """A dedicated database on the machine's PostgreSQL server, created if missing."""
    engine = sa.create_engine(SERVER_URL, future=True, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                select(sa.literal(1)).select_from(sa.table("pg_database", sa.column("datname")))
                .where(sa.column("datname") == "kestrel_store_test")
            ).first()
            if not exists:
                conn.execute(sa.text("CREATE DATABASE kestrel_store_test"))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {SERVER_URL}: {error}")
    finally:
        engine.dispose()
    return STORE_URL


@pytest.mark.postgres
def test_seed_and_open_a_return_on_postgres(postgres_store_url, monkeypatch, make_tracker,
                                            run_action, dispatcher, said, rows):
    monkeypatch.setenv(db.DB_URL_ENV, postgres_store_url)
    assert seed(postgres_store_url, reset=True).seeded
    assert not seed(postgres_store_url).seeded
    assert rows(postgres_store_url, select(func.count(Order.id))) == [20]

    slots = {"order_id": "kc10424", "email": "jane.doe@example.com",
             "verified_email": "jane.doe@example.com", "return_reason": "Cracked mug"}
    run_action(ActionOpenReturn(), make_tracker(slots=slots))
    assert "R-5003" in said(dispatcher)[0]  # the sequence continues after the seeded ids
    assert rows(postgres_store_url, select(Return.status).where(Return.id == 5003)) == [
        "requested"
    ]
