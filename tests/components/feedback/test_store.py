"""The read-only tracker store reader: real SQLite stores, bad rows, a store that is down."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from components.feedback.store import ReadReport, StoreError, TrackerStoreReader, redact_url
from tests.components.feedback.helpers import generated_reply


def _events_of(url):
    reader = TrackerStoreReader(url)
    report = ReadReport()
    return dict(reader.conversations(report=report)), report


def test_reads_conversations_in_order(make_store):
    from rasa.shared.core.events import UserUttered

    url = make_store({"b": [UserUttered("hi b")],
                      "a": [UserUttered("one"), generated_reply("two", "r1"), UserUttered("three")]})
    conversations, report = _events_of(url)
    assert sorted(conversations) == ["a", "b"]
    texts = [e.get("text") for e in conversations["a"] if e["event"] in ("user", "bot")]
    assert texts == ["one", "two", "three"]
    assert report.rows == 4 and not report.malformed and not report.unknown_types


def _insert(url, sender, type_name, data):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) "
                             "VALUES (:s, :t, 1.0, :d)"), {"s": sender, "t": type_name, "d": data})
    engine.dispose()


def test_bad_rows_are_reported_and_skipped(make_store):
    from rasa.shared.core.events import UserUttered

    url = make_store({"a": [UserUttered("fine")]})
    _insert(url, "a", "user", "{not json")
    _insert(url, "a", "flow_started", json.dumps({"event": "flow_started", "flow_id": "x"}))
    _insert(url, "a", "bot", json.dumps({"event": "user", "text": "mismatch"}))
    _insert(url, "a", "user", json.dumps({"event": "user"}))  # no text
    conversations, report = _events_of(url)
    assert [e["text"] for e in conversations["a"]] == ["fine"]
    assert len(report.malformed) == 3
    assert report.unknown_types == {"flow_started": 1}
    lines = "\n".join(report.warnings())
    assert "malformed" in lines and "'flow_started'" in lines and "not JSON" in lines


def test_never_writes_to_the_store(make_store):
    from rasa.shared.core.events import UserUttered

    url = make_store({"a": [UserUttered("hello")]})
    path = Path(url[len("sqlite:///"):])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    reader = TrackerStoreReader(url)
    with reader._connect() as conn:  # the connection itself refuses writes
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            conn.exec_driver_sql("DELETE FROM events")
    list(reader.conversations())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_missing_sqlite_file_is_not_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    with pytest.raises(StoreError, match="does not exist"):
        TrackerStoreReader(url)
    assert not (tmp_path / "absent.db").exists()


def test_database_without_events_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id INTEGER)")
    engine.dispose()
    with pytest.raises(StoreError, match="no `events` table"):
        TrackerStoreReader(url)


def test_store_that_is_down():
    with pytest.raises(StoreError, match="Cannot connect.*Is the database running"):
        TrackerStoreReader("postgresql://postgres@127.0.0.1:1/test")


def test_password_never_shown():
    assert "s3cret" not in redact_url("postgresql://bot:s3cret@db:5432/rasa")
