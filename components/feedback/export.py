"""Export: the tracker store -> versioned, PII-redacted JSONL and test stories.

    python -m components.feedback export --store sqlite:///var/tracker.db --out exports

Each run writes one new folder ``<out>/<export id>/``:

- ``generated.jsonl``: one line per generated turn (schema below);
- ``stories.yml``: scripted sessions as Rasa test stories, for regression tests;
- ``manifest.json``: the window (since, until), counts, warnings, the store URL
  without password.

``<out>/state.json`` remembers the last export, so the next run is
incremental: it takes generated turns written or rated after the last
``until`` (a rating given later re-exports its turn; readers keep the latest
line per reply_id) and sessions with events after it. Events newer than
this run's ``until`` wait for the next run, so nothing is exported twice.
The store is opened read-only; files appear only when complete (temp folder,
then rename).

``generated.jsonl`` line::

    {"schema": 1, "reply_id": str, "conversation": pseudonym, "timestamp": s,
     "model_version": str|null, "generated": bool, "fallback": str|null,
     "mode": "generated"|"extractive"|"fallback"|null,
     "sources": [{"id", "slug", "title", "url", "score", "dense", "bm25"}],
     "context": [{"role": "user"|"assistant", "text": str}], "reply": str,
     "rating": "helpful"|"not_helpful"|null, "rated_at": s|null}

``mode`` and ``sources`` (the help-center passages the reply used; [] for none)
exist since the help center (2026-12); older turns export ``mode`` null.
"""
from __future__ import annotations

import json
import logging
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from components.feedback.conversations import (
    GeneratedTurn, has_scripted_turn, parse_conversation,
)
from components.feedback.redact import Redactor, pseudonym
from components.feedback.store import ReadReport, StoreError, TrackerStoreReader, redact_url
from components.generator.atomic import atomic_dir, atomic_write_text

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STATE_FILE = "state.json"
GENERATED_FILE = "generated.jsonl"
STORIES_FILE = "stories.yml"
MANIFEST_FILE = "manifest.json"


@dataclass
class ExportResult:
    """What one export run did."""

    folder: Optional[Path]  # None when there was nothing new
    since: Optional[float]  # s since epoch, exclusive
    until: float  # s since epoch, inclusive
    conversations: int = 0  # conversations read
    generated: int = 0  # lines in generated.jsonl
    rated: int = 0  # of which carry a rating
    stories: int = 0  # test stories written
    orphan_ratings: int = 0  # ratings naming a reply the conversation does not have
    warnings: List[str] = field(default_factory=list)


def load_state(out_root: Union[str, Path]) -> Dict[str, Any]:
    """``<out_root>/state.json``, or a fresh state with a new pseudonym salt."""
    path = Path(out_root) / STATE_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"salt": secrets.token_hex(16), "last_until": None, "exports": []}


def _write_json_atomic(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2))


def turn_record(turn: GeneratedTurn, redactor: Redactor, salt: str) -> Dict[str, Any]:
    """The redacted JSONL line of one generated turn (schema in the module docstring)."""
    return {
        "schema": SCHEMA_VERSION,
        "reply_id": turn.reply_id,
        "conversation": pseudonym(turn.sender_id, salt),
        "timestamp": turn.timestamp,
        "model_version": turn.model_version,
        "generated": turn.generated,
        "fallback": turn.generation.get("fallback"),
        "mode": turn.generation.get("mode"),
        "sources": list(turn.generation.get("sources") or []),
        "context": [{"role": t.role, "text": redactor.text(t.text)} for t in turn.context],
        "reply": redactor.text(turn.reply),
        "rating": turn.rating,
        "rated_at": turn.rated_at,
    }


def export_dataset(store_url: str, out_root: Union[str, Path], since: Optional[float] = None,
                   incremental: bool = True, max_turns: int = 6, domain_path: str = "domain.yml",
                   stories: bool = True) -> ExportResult:
    """Exports new generated turns and scripted sessions (see module docstring).

    ``since`` (s since epoch) overrides the last export's ``until``;
    ``incremental=False`` exports everything.

    Raises:
        StoreError: if the store cannot be read or holds no events.
    """
    out_root = Path(out_root)
    reader = TrackerStoreReader(store_url)
    stats = reader.stats()
    if not stats["events"]:
        raise StoreError(f"The tracker store {redact_url(store_url)} is empty: there is nothing "
                         f"to export yet. Talk to the bot first (make chat), or check "
                         f"TRACKER_STORE_URL.")
    state = load_state(out_root)
    if since is None and incremental:
        since = state.get("last_until")
    until = float(stats["last"])
    result = ExportResult(folder=None, since=since, until=until)
    if since is not None and until <= since:
        result.warnings.append(f"nothing new since {_iso(since)}")
        return result

    def is_new(ts: Optional[float]) -> bool:
        return ts is not None and (since is None or ts > since) and ts <= until

    # Sortable: time, then the run's number in this folder (two runs in one second).
    export_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{len(state['exports']) + 1:04d}"
    report = ReadReport()
    seen: set = set()  # reply ids written, against duplicates across conversations
    final = out_root / export_id
    with atomic_dir(final) as tmp:  # creates out_root; `final` appears only when complete
        story_writer = None
        if stories:
            from components.feedback.stories import TestStoryWriter

            story_writer = TestStoryWriter(tmp / STORIES_FILE, domain_path)
        # Streamed: one conversation in memory at a time, lines in conversation order.
        with open(tmp / GENERATED_FILE, "w", encoding="utf-8") as lines:
            for sender_id, events in reader.conversations(since=since, report=report):
                result.conversations += 1
                conversation = parse_conversation(sender_id, events, max_turns)
                result.orphan_ratings += len(conversation.orphan_ratings)
                redactor = Redactor.for_events(events)
                for turn in conversation.generated:
                    if (is_new(turn.timestamp) or is_new(turn.rated_at)) \
                            and turn.reply_id not in seen:
                        seen.add(turn.reply_id)
                        record = turn_record(turn, redactor, state["salt"])
                        lines.write(json.dumps(record, ensure_ascii=False) + "\n")
                        result.generated += 1
                        result.rated += record["rating"] is not None
                if story_writer is not None:
                    for session in conversation.sessions:
                        if has_scripted_turn(session) and is_new(session[-1].get("timestamp")):
                            story_writer.add(pseudonym(sender_id, state["salt"]),
                                             [redact_event(e, redactor) for e in session])
        if story_writer is not None:
            result.stories = story_writer.close()
        result.warnings += report.warnings()
        if result.orphan_ratings:
            result.warnings.append(f"ignored {result.orphan_ratings} rating(s) of a reply that "
                                   f"is not in its conversation (unknown reply_id or rating)")
        if not result.generated and not result.stories:
            result.warnings.append("no generated turns or scripted sessions in the window")
            shutil.rmtree(tmp)  # publish nothing: atomic_dir then renames nothing
            return result
        manifest = {
            "schema": SCHEMA_VERSION, "export_id": export_id, "store": redact_url(store_url),
            "since": since, "until": until, "since_iso": _iso(since), "until_iso": _iso(until),
            "conversations_read": result.conversations, "generated": result.generated,
            "rated": result.rated, "stories": result.stories,
            "orphan_ratings": result.orphan_ratings, "warnings": result.warnings,
            "created_at": _iso(time.time()),
        }
        _write_json_atomic(tmp / MANIFEST_FILE, manifest)
    state["last_until"] = until
    state["exports"].append({k: manifest[k] for k in ("export_id", "since", "until",
                                                      "generated", "rated", "stories")})
    _write_json_atomic(out_root / STATE_FILE, state)
    result.folder = final
    return result


def redact_event(event: Dict[str, Any], redactor: Redactor) -> Dict[str, Any]:
    """A copy of a stored event with user text, entities, slot values and bot text redacted.

    Entity offsets are recomputed on the redacted text; an entity whose value
    was masked and cannot be found again is dropped.
    """
    event = {k: v for k, v in event.items() if k != "_row"}
    kind = event.get("event")
    if kind == "user" and isinstance(event.get("text"), str):
        text = redactor.text(event["text"])
        parse = dict(event.get("parse_data") or {})
        entities = []
        for ent in parse.get("entities") or []:
            value = redactor.text(str(ent.get("value", "")))
            start = text.find(value) if value else -1
            if start >= 0:
                entities.append({**ent, "value": value, "start": start, "end": start + len(value)})
        parse.update(text=text, entities=entities)
        event.update(text=text, parse_data=parse)
    elif kind == "bot" and isinstance(event.get("text"), str):
        event["text"] = redactor.text(event["text"])
        event["metadata"] = {}
    elif kind == "slot":
        event["value"] = redactor.value(event.get("value"))
    return event


def load_records(out_root: Union[str, Path]) -> List[Dict[str, Any]]:
    """All exported generated turns, de-duplicated: the latest line per reply_id wins.

    Raises:
        FileNotFoundError: if ``out_root`` holds no export.
    """
    folders = sorted(p for p in Path(out_root).iterdir()
                     if p.is_dir() and (p / GENERATED_FILE).is_file()) \
        if Path(out_root).is_dir() else []
    if not folders:
        raise FileNotFoundError(f"No export in '{out_root}'; run `python -m components.feedback "
                                f"export` first.")
    merged: Dict[str, Dict[str, Any]] = {}
    for folder in folders:  # export ids sort by time, then run number
        with open(folder / GENERATED_FILE, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                merged[record["reply_id"]] = record
    return sorted(merged.values(), key=lambda r: (r["timestamp"], r["reply_id"]))


def _iso(ts: Optional[float]) -> Optional[str]:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
