"""Reading Rasa's SQL tracker store, read-only, by SQLAlchemy URL.

Rasa's ``SQLTrackerStore`` keeps one row per event in the table ``events``
(id, sender_id, type_name, timestamp, intent_name, action_name, data), where
``data`` is the event's JSON (``Event.as_dict()``). This module reads those
rows without Rasa, so the feedback loop runs against any store a server wrote,
SQLite or PostgreSQL, and never changes it:

- SQLite is opened with ``mode=ro`` (a missing file is an error, never created);
- PostgreSQL runs every query in a ``READ ONLY`` transaction.

Rows that cannot be used are reported, not fatal: malformed JSON, a ``data``
whose ``event`` disagrees with ``type_name``, and event types this version does
not know (e.g. Rasa Pro's flow events) are counted in ``ReadReport``.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

logger = logging.getLogger(__name__)

# Event types of Rasa 3.x Open Source (rasa/shared/core/events.py, `type_name`).
KNOWN_EVENTS = frozenset({
    "user", "bot", "action", "slot", "session_started", "restart", "rewind", "reset_slots",
    "reminder", "cancel_reminder", "pause", "resume", "followup", "export", "undo",
    "agent", "active_loop", "loop_interrupted", "action_execution_rejected",
    "entities", "user_featurization", "stack", "form", "form_validation",
})
# Fields without which an event of that type cannot be used.
REQUIRED_FIELDS = {"user": ("text",), "bot": ("text",), "action": ("name",), "slot": ("name",)}

Event = Dict[str, Any]  # one event's JSON, plus "_row": the row id


class StoreError(RuntimeError):
    """The tracker store cannot be read; the message says why and what to do."""


@dataclass
class ReadReport:
    """What a read found besides the usable events."""

    rows: int = 0  # rows read
    malformed: List[Tuple[int, str]] = field(default_factory=list)  # (row id, reason)
    unknown_types: Counter = field(default_factory=Counter)  # event type -> rows

    def warnings(self) -> List[str]:
        """Human-readable lines, one per kind of skipped row."""
        lines = []
        if self.malformed:
            ids = ", ".join(str(r) for r, _ in self.malformed[:10])
            more = " ..." if len(self.malformed) > 10 else ""
            lines.append(f"skipped {len(self.malformed)} malformed row(s) (event ids {ids}{more}): "
                         f"{self.malformed[0][1]}")
        for name, n in sorted(self.unknown_types.items()):
            lines.append(f"skipped {n} event(s) of type '{name}', which Rasa 3.6 does not "
                         f"write (another Rasa version?)")
        return lines


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for logs and manifests."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL that does not parse is shown as given
        return url


def _engine(url: str):
    """A read-only engine for ``url``.

    Raises:
        StoreError: for an SQLite file that does not exist or a URL that does not parse.
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as e:
        raise StoreError(f"'{url}' is not an SQLAlchemy URL ({e}); use e.g. "
                         f"sqlite:///var/tracker.db or postgresql://user@host:5432/db.") from e
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if not db or db == ":memory:" or not Path(db).is_file():
            raise StoreError(f"The SQLite tracker store '{db}' does not exist. Point --store "
                             f"at the file the server writes (TRACKER_STORE_URL).")
        uri = f"file:{Path(db).resolve()}?mode=ro"
        return sa.create_engine("sqlite://", creator=lambda: __import__("sqlite3").connect(
            uri, uri=True, check_same_thread=False))
    return sa.create_engine(parsed, pool_pre_ping=True)


class TrackerStoreReader:
    """Read-only access to the ``events`` table of a Rasa SQL tracker store."""

    def __init__(self, url: str) -> None:
        """Opens the store and checks that it holds Rasa's ``events`` table.

        Raises:
            StoreError: if the database is unreachable, the SQLite file is
                missing, or there is no ``events`` table.
        """
        import sqlalchemy as sa

        self.url = url
        self.engine = _engine(url)
        try:
            with self.engine.connect() as conn:
                tables = sa.inspect(conn).get_table_names()
        except sa.exc.DatabaseError as e:  # OperationalError, "file is not a database", ...
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            raise StoreError(f"Cannot connect to the tracker store {redact_url(url)}: {reason}. "
                             f"Is the database running?") from e
        if "events" not in tables:
            raise StoreError(f"{redact_url(url)} has no `events` table, so it is not a Rasa SQL "
                             f"tracker store (tables: {sorted(tables) or 'none'}).")
        self.events = sa.Table("events", sa.MetaData(), autoload_with=self.engine)

    def _connect(self):
        conn = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        return conn

    def stats(self) -> Dict[str, Any]:
        """Row count, conversation count and the first and last timestamp (s since epoch)."""
        import sqlalchemy as sa

        e = self.events.c
        with self._connect() as conn:
            rows, senders, first, last = conn.execute(sa.select(
                sa.func.count(), sa.func.count(sa.distinct(e.sender_id)),
                sa.func.min(e.timestamp), sa.func.max(e.timestamp))).one()
        return {"events": rows, "conversations": senders, "first": first, "last": last}

    def last_row(self) -> int:
        """The largest event id (0 for an empty store): what a reader has seen up to."""
        import sqlalchemy as sa

        with self._connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(self.events.c.id))).scalar() or 0)

    def senders_after(self, row: int) -> List[str]:
        """The sender ids with at least one event whose id is above ``row``."""
        import sqlalchemy as sa

        e = self.events.c
        with self._connect() as conn:
            return [s for (s,) in conn.execute(
                sa.select(e.sender_id).where(e.id > row).distinct())]

    def conversations(self, since: Optional[float] = None, report: Optional[ReadReport] = None,
                      batch_rows: int = 2000, senders: Optional[List[str]] = None
                      ) -> Iterator[Tuple[str, List[Event]]]:
        """Yields (sender_id, events) for each conversation, oldest event first.

        With ``since`` (s since epoch), only conversations with at least one
        event after it are read, but each one whole, so that a new turn keeps
        its context. With ``senders``, only those conversations are read. Rows
        are streamed ``batch_rows`` at a time: memory grows with the longest
        conversation, not the store.

        Raises:
            StoreError: if the database fails while reading.
        """
        import sqlalchemy as sa

        report = report if report is not None else ReadReport()
        e = self.events.c
        query = sa.select(e.id, e.sender_id, e.type_name, e.timestamp, e.data)
        if since is not None:
            recent = sa.select(e.sender_id).where(e.timestamp > since).distinct()
            query = query.where(e.sender_id.in_(recent))
        if senders is not None:
            query = query.where(e.sender_id.in_(list(senders)))
        query = query.order_by(e.sender_id, e.id)
        current, events = None, []
        try:
            with self._connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=batch_rows) \
                             .execute(query)
                for row_id, sender, type_name, timestamp, data in result:
                    report.rows += 1
                    if sender != current:
                        if events:
                            yield current, events
                        current, events = sender, []
                    event = parse_row(row_id, type_name, timestamp, data, report)
                    if event is not None:
                        events.append(event)
        except sa.exc.DatabaseError as err:
            raise StoreError(f"The tracker store {redact_url(self.url)} failed while reading: "
                             f"{str(err.orig or err).splitlines()[0]}") from err
        if events:
            yield current, events


def parse_row(row_id: int, type_name: str, timestamp: Optional[float], data: Optional[str],
              report: ReadReport) -> Optional[Event]:
    """One row's event dict, or None (and a note in ``report``) when it is unusable."""
    try:
        event = json.loads(data) if data else None
    except (TypeError, ValueError) as e:
        report.malformed.append((row_id, f"`data` is not JSON ({e})"))
        return None
    if not isinstance(event, dict):
        report.malformed.append((row_id, "`data` is not a JSON object"))
        return None
    name = event.get("event")
    if name != type_name:
        report.malformed.append((row_id, f"event '{name}' does not match type_name '{type_name}'"))
        return None
    if name not in KNOWN_EVENTS:
        report.unknown_types[str(name)] += 1
        return None
    missing = [f for f in REQUIRED_FIELDS.get(name, ()) if f not in event]
    if missing:
        report.malformed.append((row_id, f"'{name}' event without {missing}"))
        return None
    if event.get("timestamp") is None:
        event["timestamp"] = timestamp
    event["_row"] = row_id
    return event
