"""Fixtures for the feedback loop: real Rasa SQLite tracker stores built in the test."""
from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

DAY = 86_400.0  # s
T0 = 1_714_564_800.0  # 2024-05-01 12:00:00 UTC, s since epoch

DOMAIN_YAML = """
version: "3.1"
slots:
  reply_rating:
    type: any
    influence_conversation: false
    mappings: [{type: custom}]
"""


def generation(reply_id: str, model_version: str = "v1", generated: bool = True,
               fallback: Optional[str] = None) -> Dict:
    """``metadata.generation`` as components.nlg.generative_nlg.GenerativeNLG writes it."""
    return {"reply_id": reply_id, "model_version": model_version, "generated": generated,
            "fallback": fallback, "latency_ms": 12.5}


def rating(reply_id: str, value: str, model_version: str = "v1", rated_at: float = T0) -> Dict:
    """The ``reply_rating`` slot value that actions.ratings.ActionRateReply sets."""
    return {"reply_id": reply_id, "rating": value, "model_version": model_version,
            "rated_at": rated_at}


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[[Dict[str, List]], str]:
    """A function ``(conversations: {sender_id: [rasa Event, ...]}) -> SQLAlchemy URL``.

    Each call writes a new SQLite file with Rasa's own ``SQLTrackerStore`` (the
    real ``events`` schema and JSON), one tracker per sender; events keep the
    ``timestamp`` they were created with. Usable from sync and async tests.
    """
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.from_yaml(DOMAIN_YAML)
    numbers = itertools.count()

    async def save(path: Path, conversations: Dict[str, List]) -> None:
        store = SQLTrackerStore(domain, dialect="sqlite", db=str(path))
        for sender, events in conversations.items():
            await store.save(DialogueStateTracker.from_events(sender, events,
                                                              slots=domain.slots))
        store.engine.dispose()

    def make(conversations: Dict[str, List]) -> str:
        path = tmp_path / f"tracker-{next(numbers)}.db"
        # Own thread and event loop: works whether or not the test runs in a loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, save(path, conversations)).result()
        return f"sqlite:///{path}"

    return make
