"""bench/thread_pools.py without Rasa: the endpoints it serves, its ratios and its report."""
from __future__ import annotations

import yaml

from bench import thread_pools
from bench.conversations import OPEN_ENDED, SCRIPTED
from tests.e2e_fixtures import ROOT


def test_endpoints_differ_from_the_projects_only_in_torch_threads(tmp_path):
    project = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    written = yaml.safe_load(thread_pools.endpoints_with(None, tmp_path).read_text())
    assert written["nlg"].pop("torch_threads") is None
    project["nlg"].pop("torch_threads")
    assert written == project


def cell(users, scripted_p95, open_p95):
    return {"users": users, "msgs_per_s": 10.0,
            SCRIPTED: {"p50": 1.0, "p95": scripted_p95}, OPEN_ENDED: {"p50": 1.0, "p95": open_p95}}


RESULT = {"defaults": {"cells": [cell(8, 100, 2000), cell(8, 100, 1000)]},
          "torch1": {"cells": [cell(8, 100, 1000), cell(8, 110, 800)]},
          "set": {"cells": [cell(8, 90, 1000), cell(8, 100, 1000)]}}


def test_ratios_are_taken_run_by_run():
    assert thread_pools.ratios(RESULT, "torch1", 8, OPEN_ENDED) == [0.5, 0.8]
    assert thread_pools.ratios(RESULT, "set", 8, SCRIPTED) == [0.9, 1.0]


def test_the_report_has_every_variant_and_its_ratio():
    text = thread_pools.report(RESULT, {"date": "d", "model": "m", "args": "", "machine": "x",
                                        "runs": 2, "seconds": 12.0, "users": [8]})
    assert text.startswith(thread_pools.MARK) and text.endswith(thread_pools.MARK)
    for label, _, _ in thread_pools.VARIANTS.values():
        assert f"| 8 | {label} |" in text
    assert "| 8 | decode worker on 1 torch thread | 1.05 (1.00-1.10) | 0.65 (0.50-0.80) |" in text
