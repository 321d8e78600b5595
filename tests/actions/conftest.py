"""Fixtures for the action tests: a fresh SQLite store per test and tracker builders."""

import asyncio
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import db
from actions.seed import seed

ORDER_SLOTS = ("order_id", "email", "verified_email", "cancel_confirmed", "return_reason",
               "new_address", "product", "payment_method", "requested_slot",
               "reply_rating")


@pytest.fixture(autouse=True)
def _forget_engines():
    """Every test starts and ends without cached engines (each has its own database)."""
    db.dispose_engines()
    yield
    db.dispose_engines()


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty SQLite database in tmp_path, set as SUPPORT_DB_URL."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv(db.DB_URL_ENV, url)
    return url


@pytest.fixture
def store(db_url: str) -> str:
    """SUPPORT_DB_URL pointing at a freshly seeded demo store; returns the URL."""
    seed(db_url)
    return db_url


@pytest.fixture
def broken_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """SUPPORT_DB_URL pointing at a database without tables: every query fails."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv(db.DB_URL_ENV, url)
    return url


def build_tracker(
    slots: Optional[Dict[str, Any]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    text: str = "",
    intent: str = "inform",
    active_loop: Optional[str] = None,
    sender_id: str = "test-user",
    entities: Optional[List[Dict[str, Any]]] = None,
) -> Tracker:
    """A rasa_sdk Tracker with every contract slot (None unless given).

    ``entities`` are the latest message's, e.g. ``[{"entity": "rating", "value": "up"}]``.
    """
    all_slots = {name: None for name in ORDER_SLOTS}
    all_slots.update(slots or {})
    return Tracker(
        sender_id=sender_id,
        slots=all_slots,
        latest_message={"text": text, "intent": {"name": intent},
                        "entities": list(entities or [])},
        events=list(events or []),
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


@pytest.fixture
def make_tracker() -> Callable[..., Tracker]:
    """Factory fixture for `build_tracker`."""
    return build_tracker


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    """A fresh CollectingDispatcher."""
    return CollectingDispatcher()


@pytest.fixture
def run_action(dispatcher: CollectingDispatcher) -> Callable[..., List[Dict[str, Any]]]:
    """Run an action's async ``run`` with the test dispatcher; returns its events."""

    def _run(action: Any, tracker: Tracker, domain: Optional[Dict[str, Any]] = None):
        return asyncio.run(action.run(dispatcher, tracker, domain or {}))

    return _run


def texts(dispatcher: CollectingDispatcher) -> List[str]:
    """The texts the dispatcher collected."""
    return [message.get("text") or "" for message in dispatcher.messages]


@pytest.fixture
def said() -> Callable[[CollectingDispatcher], List[str]]:
    """Function returning the texts a dispatcher collected."""
    return texts


def query(url: str, statement: Any) -> List[Any]:
    """Rows of a select() run against ``url`` in a fresh session."""
    with db.session_scope(url) as session:
        return list(session.execute(statement).scalars())


@pytest.fixture
def rows() -> Callable[[str, Any], List[Any]]:
    """Function running a select() against a URL and returning scalars."""
    return query
