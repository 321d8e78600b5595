"""bench/generator_latency.py: the report section and the event-loop stall meter (no model)."""
from __future__ import annotations

import asyncio
import time

from bench import generator_latency as latency
from bench.report import write_section


def _figures():
    return {"command": "python bench/generator_latency.py --runs 20", "date": "2026-11-22",
            "machine": "2 CPU cores (test)", "model": "kestrel-gpt-test", "params": 2_377_536,
            "runs": 20, "times_ms": [100.0 + i for i in range(20)],
            "stall_in_loop_ms": 612.4, "stall_nlg_ms": 1.6}


def test_report_is_fenced_and_computes_median_and_p95(tmp_path):
    section = latency.report(_figures())
    assert section.startswith(latency.MARK) and section.endswith(latency.MARK)
    assert "| generator parameters | 2,377,536 |" in section
    assert "| generator weights (fp32) | 9.5 MB |" in section
    # 100..119 ms: median 109.5, p95 = the value at index int(0.95 * 19) = 18 -> 118.
    assert "| 40-token reply, median of 20 | 110 ms (365 tokens/s) |" in section
    assert "| 40-token reply, p95 | 118 ms |" in section
    assert "generate() in the loop | 612 ms |" in section
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# B\n\n{latency.MARK}\nold\n{latency.MARK}\n\nafter\n")
    write_section(doc, latency.MARK, section)
    assert "old" not in doc.read_text() and doc.read_text().rstrip().endswith("after")


def test_stall_meter_sees_a_reply_that_blocks_the_loop():
    async def blocking(_text):
        time.sleep(0.08)  # what generate() inside the event loop does

    async def yielding(_text):
        await asyncio.sleep(0.08)

    # A blocked loop delays the 5 ms ticker by at least the blocking time.
    assert asyncio.run(latency._stall(blocking, 2)) >= 70
    # Every reply was made: the meter returns only after all of them.
    made = []

    async def counted(text):
        made.append(text)
        await yielding(text)

    asyncio.run(latency._stall(counted, 3))
    assert made == latency.PROMPTS[:3]
