"""bench/server_backend.py without Rasa: the closed loop, its stall meter, and the report."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from bench import server_backend as bench
from bench.conversations import OPEN_ENDED, SCRIPTED


def reply(tokens: int = 5):
    return SimpleNamespace(generated_tokens=tokens)


def test_the_loop_times_replies_and_counts_tokens():
    async def call(turns):
        await asyncio.sleep(0.01)
        return reply()

    result = asyncio.run(bench.closed_loop(call, users=4, seconds=0.3))
    assert result["replies"] >= 4 * 10  # 4 users, about 30 replies each in 0.3 s
    # Timer wake-ups are not exact: on a loaded CI machine the median of these 10 ms
    # sleeps was once 9.97 ms, so the bound leaves 1 ms.
    assert 9 <= result["p50"] <= result["p95"]
    assert abs(result["tokens_per_s"] - 5 * result["replies"] / 0.3) < 0.3 * result["tokens_per_s"]
    assert result["stall_ms"] < 50  # awaiting never blocks the loop for long


def test_the_stall_meter_sees_a_call_that_blocks_the_loop():
    async def blocking(turns):
        time.sleep(0.08)  # work done in the event loop, as a policy that decoded would
        return reply()

    result = asyncio.run(bench.closed_loop(blocking, users=1, seconds=0.3))
    assert result["stall_ms"] >= 70


def figures(p95):
    return {"p50": 1.0, "p95": p95, "replies": 3, "tokens_per_s": 100.0, "stall_ms": 2.0}


def cell(scripted_p95):
    return {"users": 8, "msgs_per_s": 10.0, SCRIPTED: {"p50": 1.0, "p95": scripted_p95},
            OPEN_ENDED: {"p50": 1.0, "p95": 1.0}}


def test_the_report_has_every_level_and_the_scripted_ratio():
    concurrency = {name: {n: figures(100.0 * n) for n in bench.CONCURRENCY}
                   for name in ("in-process", "server")}
    mixed = {"server": {"cells": [cell(100), cell(100)]},
             "in-process": {"cells": [cell(200), cell(100)]},
             "no GPT": {"cells": [cell(80), cell(100)]}}
    text = bench.report(concurrency, mixed, {"date": "d", "model": "m", "args": "",
                                             "machine": "x", "seconds": 5.0, "mixed_runs": 2})
    assert text.startswith(bench.MARK) and text.endswith(bench.MARK)
    for n in bench.CONCURRENCY:
        assert f"| {n} | `nlg.server`, streamed | 3 | 1 | {100 * n} |" in text
    assert "server over in-process, run by run: 0.75 (0.50-1.00)." in text
    assert "server over no GPT, run by run: 1.12 (1.00-1.25)." in text
