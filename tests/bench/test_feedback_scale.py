"""bench/feedback_scale.py: the synthetic store Rasa reads back, and the report section."""
from __future__ import annotations

import asyncio

from bench import feedback_scale as scale


def test_store_is_read_back_by_rasas_sql_tracker_store(tmp_path):
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    events = scale.build_store(tmp_path / "tracker.db", 3)
    store = SQLTrackerStore(Domain.load(str(scale.ROOT / "domain.yml")), dialect="sqlite",
                            db=str(tmp_path / "tracker.db"))

    async def read():
        senders = sorted(await store.keys())
        trackers = [await store.retrieve_full_tracker(s) for s in senders]
        return senders, trackers

    senders, trackers = asyncio.run(read())
    assert senders == ["bench-0", "bench-1", "bench-2"]
    assert sum(len(t.events) for t in trackers) == events
    for tracker in trackers:
        assert any(e.type_name == "bot" for e in tracker.events)
        assert tracker.latest_message.text  # parse data survived the round trip


def _figures():
    run = {"seconds": 24.6, "peak_rss_mib": 125.0,
           "output": "loading ...\n14,973 generated turns exported\n"}
    return {"command": "python bench/feedback_scale.py --conversations 10000",
            "date": "2026-11-22", "machine": "2 CPU cores (test)", "conversations": 10000,
            "events": 254184, "store_mib": 62.3, "build_s": 40.0, "epochs": 1,
            "export": run, "dataset": {**run, "seconds": 0.3},
            "finetune": {**run, "seconds": 30.3, "peak_rss_mib": 685.0},
            "manifest": {"train": 3680, "heldout": 879},
            "meta": {"train_examples": 3128, "steps": 196, "val_perplexity": 1.12}}


def test_report_is_fenced_and_lists_every_step():
    section = scale.report(_figures())
    assert section.startswith(scale.MARK) and section.endswith(scale.MARK)
    assert "## Feedback loop at 10,000 conversations" in section
    assert "(254,184 events, 62 MiB" in section
    assert "| export | 24.6 s | 125.0 MiB | 14,973 generated turns exported |" in section
    assert "| dataset | 0.3 s | 125.0 MiB | 3,680 train / 879 held-out pairs" in section
    assert "| finetune, 1 epoch | 30.3 s | 685.0 MiB | 3,128 examples, 196 steps, " \
           "validation perplexity 1.1 |" in section
