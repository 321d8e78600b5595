"""Helpers of the channel tests: reading the tracker store, waiting for a condition."""
from __future__ import annotations

import json
import time
from typing import Callable, Dict, List

import pytest
import sqlalchemy as sa


def stored_events(tracker_url: str, sender: str) -> List[Dict]:
    """The tracker store's rows for ``sender``: [{"type", "data" (parsed)}], in order."""
    with sa.create_engine(tracker_url).connect() as conn:
        rows = conn.execute(sa.text("select type_name, data from events where sender_id = :s "
                                    "order by id"), {"s": sender}).fetchall()
    return [{"type": t, "data": json.loads(d)} for t, d in rows]


def wait_for(check: Callable[[], object], timeout: float = 60.0, what: str = "a condition",
             show: Callable[[], str] = lambda: ""):
    """Polls ``check`` until it returns something truthy; fails after ``timeout`` s.

    ``show`` adds what the test saw (a terminal screen, a log) to the failure.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{show()}")
