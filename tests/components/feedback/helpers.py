"""Events as the running bot writes them, and saving them through Rasa's SQLTrackerStore."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional


def generated_reply(text: str, reply_id: str, version: str = "kestrel-gpt-v1",
                    generated: bool = True, fallback: Optional[str] = None, **kwargs):
    """A BotUttered event as GenerativeNLG writes it for utter_gpt_reply."""
    from rasa.shared.core.events import BotUttered

    return BotUttered(text, metadata={"utter_action": "utter_gpt_reply", "generation": {
        "generated": generated, "fallback": fallback, "reply_id": reply_id,
        "model_version": version, "latency_ms": 12.5}}, **kwargs)


def rating(reply_id: str, value: str = "helpful", version: str = "kestrel-gpt-v1",
           rated_at: Optional[float] = None, **kwargs):
    """The SlotSet event ActionRateReply returns."""
    from rasa.shared.core.events import SlotSet

    return SlotSet("reply_rating", {"reply_id": reply_id, "rating": value,
                                    "model_version": version, "generated": True,
                                    "rated_at": rated_at or time.time()}, **kwargs)


def save_conversations(url: str, conversations: Dict[str, List]) -> None:
    """Appends each sender's events through Rasa's SQLTrackerStore at ``url`` (any dialect)."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load("domain.yml")

    async def save_all():
        store = SQLTrackerStore(domain=domain, host=url)
        for sender, events in conversations.items():
            tracker = await store.retrieve(sender) or DialogueStateTracker(sender, domain.slots)
            for event in events:
                tracker.update(event)
            await store.save(tracker)
        store.engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:  # own loop, from sync or async tests
        pool.submit(asyncio.run, save_all()).result()
