"""Export from real SQLite and PostgreSQL tracker stores: redaction, increments, stories."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from components.feedback.export import export_dataset, load_records
from components.feedback.store import StoreError
from tests.components.feedback.helpers import generated_reply, rating, save_conversations


def _conversations(now: float):
    from rasa.shared.core.events import (
        ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered,
    )

    return {
        "open": [
            ActionExecuted("action_session_start", timestamp=now), SessionStarted(timestamp=now),
            ActionExecuted("action_listen", timestamp=now),
            UserUttered("I'm jane.doe@example.com, do you ship to Canada?",
                        {"name": "product_question", "confidence": 0.9}, timestamp=now + 1),
            ActionExecuted("utter_gpt_reply", timestamp=now + 2),
            generated_reply("Yes, we ship to Canada.", "r1", timestamp=now + 2),
            ActionExecuted("action_listen", timestamp=now + 2),
            UserUttered('/rate_reply{"rating": "helpful", "reply_id": "r1"}',
                        {"name": "rate_reply", "confidence": 1.0}, timestamp=now + 3),
            rating("r1", "helpful", rated_at=now + 3, timestamp=now + 3),
            rating("ghost", "helpful", rated_at=now + 3, timestamp=now + 3),
        ],
        "scripted": [
            ActionExecuted("action_session_start", timestamp=now), SessionStarted(timestamp=now),
            ActionExecuted("action_listen", timestamp=now),
            UserUttered("change my address to 12 Elm Street, Springfield",
                        {"name": "change_address", "confidence": 0.9}, timestamp=now + 1),
            ActionExecuted("change_address_form", timestamp=now + 1),
            ActiveLoop("change_address_form", timestamp=now + 1),
            SlotSet("new_address", "12 Elm Street, Springfield", timestamp=now + 1),
            SlotSet("requested_slot", "order_id", timestamp=now + 1),
            BotUttered("Which order?", timestamp=now + 1),
            ActionExecuted("action_listen", timestamp=now + 1),
        ],
    }


def _sha(url: str) -> str:
    return hashlib.sha256(Path(url[len("sqlite:///"):]).read_bytes()).hexdigest()


def test_export_writes_redacted_jsonl_stories_and_manifest(make_store, tmp_path):
    now = time.time() - 100
    url = make_store(_conversations(now))
    before = _sha(url)
    result = export_dataset(url, tmp_path / "exports")
    assert _sha(url) == before, "export modified the tracker store"
    assert (result.generated, result.rated, result.stories) == (1, 1, 1)
    assert result.orphan_ratings == 1 and any("not in its conversation" in w
                                              for w in result.warnings)
    [line] = (result.folder / "generated.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["reply_id"] == "r1" and record["rating"] == "helpful"
    assert record["model_version"] == "kestrel-gpt-v1" and record["conversation"] != "open"
    assert record["context"][-1]["text"] == "I'm [email], do you ship to Canada?"
    stories = (result.folder / "stories.yml").read_text()
    assert "change_address_form" in stories and "Elm" not in stories and "[address]" in stories
    everything = "".join(p.read_text() for p in result.folder.iterdir())
    assert "jane.doe" not in everything
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["generated"] == 1 and manifest["until"] == result.until


def test_export_is_incremental_and_deduplicated(make_store, tmp_path):
    from rasa.shared.core.events import UserUttered

    now = time.time() - 100
    url = make_store(_conversations(now))
    first = export_dataset(url, tmp_path / "exports")
    again = export_dataset(url, tmp_path / "exports")
    assert again.folder is None and "nothing new" in again.warnings[0]
    # A later rating of the same reply re-exports that one turn, and only it.
    save_conversations(url, {"open": [UserUttered("actually no", timestamp=now + 50),
                                      rating("r1", "not_helpful", rated_at=now + 50,
                                             timestamp=now + 50)]})
    third = export_dataset(url, tmp_path / "exports")
    assert third.generated == 1 and third.stories == 0
    records = load_records(tmp_path / "exports")
    assert [(r["reply_id"], r["rating"]) for r in records] == [("r1", "not_helpful")]
    state = json.loads((tmp_path / "exports" / "state.json").read_text())
    assert [e["export_id"] for e in state["exports"]] == [first.folder.name, third.folder.name]
    # Only complete exports and the state: no temporary folder or file is left.
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [
        first.folder.name, third.folder.name, "state.json"]


def test_since_selects_the_window(make_store, tmp_path):
    now = time.time() - 100
    url = make_store(_conversations(now))
    result = export_dataset(url, tmp_path / "exports", since=now + 2.5)
    assert result.generated == 1  # reply older, but its rating is newer
    assert result.stories == 0


def test_empty_store_is_an_error_and_writes_nothing(make_store, tmp_path):
    url = make_store({})
    with pytest.raises(StoreError, match="is empty"):
        export_dataset(url, tmp_path / "exports")
    assert not (tmp_path / "exports").exists()


@pytest.mark.postgres
def test_export_from_postgresql(postgres_database, tmp_path):
    now = time.time() - 100
    save_conversations(postgres_database, _conversations(now))
    result = export_dataset(postgres_database, tmp_path / "exports")
    assert (result.generated, result.rated, result.stories) == (1, 1, 1)
    record = json.loads((result.folder / "generated.jsonl").read_text())
    assert "[email]" in record["context"][-1]["text"]
