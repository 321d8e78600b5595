"""URLSQLTrackerStore against a real SQLite file and the real PostgreSQL server."""
import uuid

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from components.stores.tracker_store import DEFAULT_URL, URL_ENV, URLSQLTrackerStore, resolve_url

DOMAIN = Domain.from_yaml('version: "3.1"\nslots:\n  order_id:\n    type: text\n'
                          '    mappings: [{type: custom}]\n')


def conversation(sender: str) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(sender, [
        ActionExecuted("action_listen"),
        UserUttered("where is order KC-10423'; DROP TABLE events;--",
                    intent={"name": "order_status", "confidence": 0.9}),
        SlotSet("order_id", "KC-10423"),
        BotUttered("It shipped yesterday.", metadata={"generation": {"generated": True,
                                                                     "model_version": "v1"}}),
    ], slots=DOMAIN.slots)


async def round_trip(store: URLSQLTrackerStore, sender: str) -> None:
    original = conversation(sender)
    await store.save(original)
    loaded = await store.retrieve(sender)
    assert loaded is not None
    assert list(loaded.events) == list(original.events)
    assert loaded.get_slot("order_id") == "KC-10423"
    bot = [e for e in loaded.events if isinstance(e, BotUttered)][0]
    assert bot.metadata["generation"]["model_version"] == "v1"


def test_resolve_url_prefers_the_environment(monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)
    assert resolve_url() == DEFAULT_URL
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv(URL_ENV, "postgresql://postgres@127.0.0.1:5432/test")
    assert resolve_url("sqlite:///x.db").startswith("postgresql://")


async def test_sqlite_file_and_folder_are_created(tmp_path, monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)
    db = tmp_path / "nested" / "tracker.db"
    store = URLSQLTrackerStore(DOMAIN, url=f"sqlite:///{db}")
    await round_trip(store, "sqlite-user")
    assert db.is_file()
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        assert conn.execute(sa.text("select count(*) from events")).scalar() == 4


async def test_saving_again_appends_only_new_events(tmp_path, monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)
    store = URLSQLTrackerStore(DOMAIN, url=f"sqlite:///{tmp_path / 't.db'}")
    tracker = conversation("u")
    await store.save(tracker)
    tracker.update(UserUttered("thanks"))
    await store.save(tracker)
    assert len(list((await store.retrieve("u")).events)) == 5


@pytest.mark.postgres
async def test_postgres_through_the_environment_variable(postgres, monkeypatch):
    monkeypatch.setenv(URL_ENV, postgres)
    store = URLSQLTrackerStore(DOMAIN)
    assert store.engine.dialect.name == "postgresql"
    sender = f"pg-{uuid.uuid4()}"
    await round_trip(store, sender)
    with store.engine.begin() as conn:
        count = conn.execute(sa.text("select count(*) from events where sender_id = :s"),
                             {"s": sender}).scalar()
        conn.execute(sa.text("delete from events where sender_id = :s"), {"s": sender})
    assert count == 4


async def test_a_database_error_propagates_instead_of_falling_back_to_memory(tmp_path):
    """Rasa's FailSafeTrackerStore would keep the turn in memory and answer 200."""
    from rasa.core.tracker_store import FailSafeTrackerStore
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from components.stores.tracker_store import URLSQLTrackerStore

    store = URLSQLTrackerStore(url=f"sqlite:///{tmp_path / 't.db'}")
    safe = FailSafeTrackerStore(store)  # as Rasa's Agent wraps every store
    tracker = DialogueStateTracker.from_events("c1", [UserUttered("hi")])
    await safe.save(tracker)
    store.engine.dispose()
    (tmp_path / "t.db").unlink()
    (tmp_path / "t.db").mkdir()  # the database file is gone and cannot be recreated
    with pytest.raises(sa.exc.DatabaseError):
        await safe.retrieve("c1")
    with pytest.raises(sa.exc.DatabaseError):
        await safe.save(DialogueStateTracker.from_events("c2", [UserUttered("hello")]))
    assert not safe._fallback_tracker_store  # never fell back to memory


async def test_stores_that_do_not_ask_keep_rasas_fallback(tmp_path):
    from rasa.core.tracker_store import FailSafeTrackerStore
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from components.stores.tracker_store import URLSQLTrackerStore

    store = URLSQLTrackerStore(url=f"sqlite:///{tmp_path / 't.db'}", raise_on_error=False)
    safe = FailSafeTrackerStore(store)
    store.engine.dispose()
    (tmp_path / "t.db").unlink()
    (tmp_path / "t.db").mkdir()
    await safe.save(DialogueStateTracker.from_events("c2", [UserUttered("hello")]))
    assert (await safe.fallback_tracker_store.retrieve("c2")) is not None
