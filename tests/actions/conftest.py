"""Fixtures for the action tests: a fresh SQLite store per test, tracker builders, and
`rendered`, which turns what an action sent into the words the customer reads.
"""

import asyncio
import copy
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import db
from actions.seed import seed

DOMAIN_FILE = Path(__file__).resolve().parents[2] / "domain.yml"
# The contract's slots (None in a new conversation), plus requested_slot, which Rasa
# adds itself; `initial_slots` adds every domain.yml slot with its initial value.
ORDER_SLOTS = ("order_id", "email", "verified_email", "cancel_confirmed", "return_reason",
               "new_address", "product", "payment_method", "requested_slot",
               "reply_rating")
# A placeholder Rasa left unfilled: it returns the response's text unchanged then.
PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")


@lru_cache(maxsize=1)
def project_domain() -> Domain:
    """The project's domain.yml, as Rasa loads it."""
    return Domain.load(str(DOMAIN_FILE))


@pytest.fixture
def domain() -> Domain:
    """The project's domain.yml (`project_domain`)."""
    return project_domain()


def initial_slots() -> Dict[str, Any]:
    """Every slot as a new conversation has it: the domain's initial values, else None."""
    slots = {name: None for name in ORDER_SLOTS}
    slots.update({slot.name: slot.initial_value for slot in project_domain().slots})
    return slots


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
    """A rasa_sdk Tracker with every slot (its initial value, mostly None, unless given).

    ``entities`` are the latest message's, e.g. ``[{"entity": "rating", "value": "up"}]``.
    """
    all_slots = initial_slots()
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


def rendered(dispatcher: CollectingDispatcher,
             tracker: Optional[Tracker] = None) -> List[BotUttered]:
    """The bot messages Rasa makes of what ``dispatcher`` collected, one per message.

    Runs Rasa 3.6's own code for an action server's reply
    (``RemoteAction._utter_responses``) with a TemplatedNaturalLanguageGenerator over
    the project's domain.yml: a ``response`` is filled from the variables sent with
    it and from the slots (``tracker``'s, else the initial values). Fails when a
    response is not in domain.yml (Rasa would send nothing) or a ``{placeholder}``
    stayed unfilled (Rasa would send it as it is).
    """
    domain = project_domain()
    slots = dict(initial_slots())
    slots.update(tracker.slots if tracker is not None else {})
    rasa_tracker = DialogueStateTracker(
        tracker.sender_id if tracker is not None else "test-user", domain.slots)
    for slot in rasa_tracker.slots.values():
        slot.value = slots.get(slot.name, slot.value)
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    bots: List[BotUttered] = []
    for message in dispatcher.messages:
        [bot] = asyncio.run(RemoteAction._utter_responses(
            [copy.deepcopy(message)], CollectingOutputChannel(), nlg, rasa_tracker)) or [None]
        assert bot is not None, f"Rasa sends nothing for {message}: no such response"
        left = PLACEHOLDER.findall(bot.text or "")
        assert not left, f"{message.get('response')} left {left} unfilled: {bot.text!r}"
        bots.append(bot)
    return bots


def texts(dispatcher: CollectingDispatcher, tracker: Optional[Tracker] = None) -> List[str]:
    """The texts the customer reads, one per message the dispatcher collected."""
    return [bot.text or "" for bot in rendered(dispatcher, tracker)]


@pytest.fixture
def said() -> Callable[..., List[str]]:
    """``said(dispatcher, tracker=None)``: the texts the customer reads (see `rendered`)."""
    return texts


def query(url: str, statement: Any) -> List[Any]:
    """Rows of a select() run against ``url`` in a fresh session."""
    with db.session_scope(url) as session:
        return list(session.execute(statement).scalars())


@pytest.fixture
def rows() -> Callable[[str, Any], List[Any]]:
    """Function running a select() against a URL and returning scalars."""
    return query
