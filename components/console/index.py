"""What the console lists: one summary per conversation and the generated replies.

Reading every event of a large store on each page view would take seconds, so
the index reads the store once and then, on each ``refresh``, only the
conversations with events newer than the last row it saw (``TrackerStoreReader``,
read-only). Filters and text search then run over the summaries in memory:
about 10,000 conversations fit in a few tens of MB (docs/benchmarks.md).

Every text the index keeps is PII-masked (``components.feedback.redact``), so a
page can never show a clear value by accident; ``reveal`` re-reads one
conversation from the store for a lead.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

from components.feedback import analytics
from components.feedback import conversations as conv
from components.feedback.redact import Redactor
from components.feedback.store import Event, ReadReport, StoreError, TrackerStoreReader
from shared_names import HANDOFF_ACTION, HELPFUL, NOT_HELPFUL, RATING_SLOT, GenerationRecord

UNRATED = "unrated"
RATING_FILTERS = (HELPFUL, NOT_HELPFUL, UNRATED)
PREVIEW_CHARS = 120


@dataclass(frozen=True)
class ReplyItem:
    """One generated reply, masked, as the review queue shows it."""

    reply_id: str
    sender_id: str
    timestamp: float  # s since epoch
    question: str  # the user message it answered
    context: Tuple[Tuple[str, str], ...]  # (role, text) before the reply, oldest first
    reply: str
    rating: Optional[str]  # HELPFUL, NOT_HELPFUL or None
    generation: Dict[str, Any]  # metadata.generation as stored


@dataclass
class Summary:
    """One conversation, as the list shows and filters it."""

    sender_id: str
    first: float  # s since epoch
    last: float
    user_turns: int
    preview: str  # the first user message, masked and cut
    generated: int  # generated turns (GPT policy replies)
    ratings: frozenset  # the ratings its replies got (HELPFUL / NOT_HELPFUL); UNRATED if any is
    fell_back: bool  # a message got nlu_fallback or the canned reply
    handed_off: bool  # the customer was handed to a person (action_handoff ran)
    search_text: str  # every user and bot text, masked, lower-case
    replies: List[ReplyItem] = field(default_factory=list)


def summarise_conversation(sender_id: str, events: Sequence[Event]) -> Summary:
    """The masked summary of one conversation's stored events."""
    redactor = Redactor.for_events(events)
    texts, first_user = [], None
    user_turns = 0
    for event in events:
        text = event.get("text")
        if event["event"] in ("user", "bot") and isinstance(text, str) and text:
            if event["event"] == "user" and text.startswith("/"):
                continue  # a button payload
            texts.append(redactor.text(text))
            if event["event"] == "user":
                user_turns += 1
                first_user = first_user if first_user is not None else texts[-1]
    parsed = conv.parse_conversation(sender_id, events)
    replies = [ReplyItem(
        reply_id=t.reply_id, sender_id=sender_id, timestamp=t.timestamp,
        question=redactor.text(t.context[-1].text) if t.context else "",
        context=tuple((c.role, redactor.text(c.text)) for c in t.context),
        reply=redactor.text(t.reply), rating=t.rating, generation=t.generation)
        for t in parsed.generated]
    ratings = frozenset(r.rating or UNRATED for r in replies)
    stamps = [float(e["timestamp"]) for e in events if e.get("timestamp") is not None]
    return Summary(
        sender_id=sender_id, first=min(stamps, default=0.0), last=max(stamps, default=0.0),
        user_turns=user_turns, preview=(first_user or "")[:PREVIEW_CHARS],
        generated=len(replies), ratings=ratings,
        fell_back=any(analytics.fallback_messages(s) for s in parsed.sessions),
        handed_off=any(e["event"] == "action" and e.get("name") == HANDOFF_ACTION
                       for e in events),
        search_text="\n".join(texts).lower(), replies=replies)


@dataclass(frozen=True)
class Filters:
    """The conversation list's filters; None or "" means "any"."""

    generated: bool = False  # only conversations with generated turns
    rating: str = ""  # one of RATING_FILTERS
    fell_back: bool = False
    handed_off: bool = False
    since: Optional[date] = None  # last event on or after this day (UTC)
    until: Optional[date] = None  # first event on or before this day (UTC)
    text: str = ""  # case-insensitive substring of any masked message

    def __post_init__(self) -> None:
        if self.rating and self.rating not in RATING_FILTERS:
            raise ValueError(f"rating {self.rating!r} is not one of {list(RATING_FILTERS)}")

    def match(self, s: Summary) -> bool:
        if self.generated and not s.generated:
            return False
        if self.rating and self.rating not in s.ratings:
            return False
        if (self.fell_back and not s.fell_back) or (self.handed_off and not s.handed_off):
            return False
        if self.since and _day(s.last) < self.since:
            return False
        if self.until and _day(s.first) > self.until:
            return False
        return not self.text or self.text.lower() in s.search_text


def _day(ts: float) -> date:
    return datetime.fromtimestamp(ts, timezone.utc).date()


class ConversationIndex:
    """The summaries of every conversation in a tracker store, kept up to date.

    Thread-safe: the console's server threads share one index; a refresh holds
    a lock while it reads the new rows.
    """

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self._reader: Optional[TrackerStoreReader] = None
        self._summaries: Dict[str, Summary] = {}
        self._last_row = 0
        self._lock = threading.Lock()
        self.warnings: List[str] = []  # skipped rows of the last refresh (ReadReport)

    def reader(self) -> TrackerStoreReader:
        """The store's reader, opened on first use (and again after a failure).

        Raises:
            StoreError: if the store cannot be opened.
        """
        if self._reader is None:
            self._reader = TrackerStoreReader(self.store_url)
        return self._reader

    def refresh(self) -> None:
        """Reads the conversations that changed since the last refresh.

        Raises:
            StoreError: if the store cannot be read; the index keeps what it had.
        """
        with self._lock:
            try:
                reader = self.reader()
                last = reader.last_row()
                if last <= self._last_row:
                    return
                changed = None if not self._summaries else reader.senders_after(self._last_row)
                report = ReadReport()
                for sender, events in reader.conversations(report=report, senders=changed):
                    self._summaries[sender] = summarise_conversation(sender, events)
            except StoreError:
                self._reader = None  # reconnect next time
                raise
            self._last_row = last
            self.warnings = report.warnings()

    def _all(self) -> List[Summary]:
        """A snapshot of the summaries (a refresh in another thread may be adding to them)."""
        with self._lock:
            return list(self._summaries.values())

    def warm(self) -> None:
        """Builds the index now (in a server's background thread), so the first page is fast.

        A store that cannot be read yet is left for the first page to report.
        """
        try:
            self.refresh()
        except StoreError:
            pass

    def conversations(self, filters: Optional[Filters] = None) -> List[Summary]:
        """Matching conversations, the latest activity first."""
        filters = filters or Filters()
        found = [s for s in self._all() if filters.match(s)]
        return sorted(found, key=lambda s: (-s.last, s.sender_id))

    def summary(self, sender_id: str) -> Optional[Summary]:
        with self._lock:
            return self._summaries.get(sender_id)

    def replies(self) -> List[ReplyItem]:
        """Every generated reply, oldest first."""
        items = [r for s in self._all() for r in s.replies]
        return sorted(items, key=lambda r: (r.timestamp, r.reply_id))

    def reply(self, reply_id: str) -> Optional[ReplyItem]:
        return next((r for s in self._all() for r in s.replies if r.reply_id == reply_id), None)

    def events(self, sender_id: str) -> Tuple[List[Event], List[str]]:
        """One conversation's events, read now from the store, and skipped-row notes.

        Raises:
            StoreError: if the store cannot be read.
        """
        report = ReadReport()
        found = list(self.reader().conversations(report=report, senders=[sender_id]))
        return (found[0][1] if found else []), report.warnings()


def transcript(events: Sequence[Event], reveal: bool = False) -> List[Dict[str, Any]]:
    """The rows of a conversation view, PII-masked unless ``reveal``.

    Each row: ``{"kind": "session" | "user" | "bot" | "rating", "text", "at"}``
    plus, for a user message, ``intent``, ``confidence`` and ``entities``; for a
    bot message, ``action`` and ``policy`` (of the action that sent it) and
    ``generation`` (a GenerationRecord, for replies of the GPT policy).
    """
    redactor = Redactor.for_events(events)
    mask = (lambda t: t) if reveal else redactor.text
    rows: List[Dict[str, Any]] = []
    last_action: Dict[str, Any] = {}
    for event in events:
        kind, at = event["event"], event.get("timestamp")
        if kind == "session_started":
            rows.append({"kind": "session", "text": "", "at": at})
        elif kind == "action":
            last_action = event
        elif kind == "user" and isinstance(event.get("text"), str):
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            rows.append({"kind": "user", "text": mask(event["text"]), "at": at,
                         "intent": intent.get("name"), "confidence": intent.get("confidence"),
                         "entities": [(e.get("entity"), mask(str(e.get("value", ""))))
                                      for e in parse.get("entities") or []]})
        elif kind == "bot" and isinstance(event.get("text"), str):
            rows.append({"kind": "bot", "text": mask(event["text"]), "at": at,
                         "action": last_action.get("name"), "policy": last_action.get("policy"),
                         "confidence": last_action.get("confidence"),
                         "generation": GenerationRecord.from_metadata(event.get("metadata"))})
        elif kind == "slot" and event.get("name") == RATING_SLOT \
                and isinstance(event.get("value"), dict):
            rows.append({"kind": "rating", "text": str(event["value"].get("rating")), "at": at,
                         "reply_id": event["value"].get("reply_id")})
    return rows
