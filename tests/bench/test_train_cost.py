"""bench/train_cost.py's parsing and report, on a training log written here (no training)."""
from __future__ import annotations

import importlib.util

from tests.e2e_fixtures import ROOT

spec = importlib.util.spec_from_file_location("train_cost", ROOT / "bench" / "train_cost.py")
train_cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_cost)

LOG = """\
2026-11-22 16:50:00 INFO     rasa.engine.training.hooks  - Starting to train component 'WhitespaceTokenizer'.
2026-11-22 16:50:00 INFO     rasa.engine.training.hooks  - Finished training component 'WhitespaceTokenizer'.
2026-11-22 16:50:01 INFO     rasa.engine.training.hooks  - Starting to train component 'DIETClassifier'.
Epochs: 100%|##########| 100/100 [03:00<00:00]
2026-11-22 16:53:01 INFO     rasa.engine.training.hooks  - Finished training component 'DIETClassifier'.
2026-11-22 16:53:02 INFO     rasa.engine.training.hooks  - Starting to train component 'CountVectorsFeaturizer'.
2026-11-22 16:53:04 INFO     rasa.engine.training.hooks  - Finished training component 'CountVectorsFeaturizer'.
2026-11-22 16:53:05 INFO     rasa.engine.training.hooks  - Starting to train component 'CountVectorsFeaturizer'.
2026-11-22 16:53:08 INFO     rasa.engine.training.hooks  - Finished training component 'CountVectorsFeaturizer'.
2026-11-22 16:53:09 INFO     rasa.engine.training.hooks  - Starting to train component 'GPTPolicy'.
"""


def test_component_times_in_order_and_summed():
    times = train_cost.component_times(LOG)
    assert list(times) == ["WhitespaceTokenizer", "DIETClassifier", "CountVectorsFeaturizer"]
    assert times["DIETClassifier"] == 180 and times["CountVectorsFeaturizer"] == 5
    assert "GPTPolicy" not in times  # never finished: not reported


def test_report_is_a_replaceable_section():
    result = {"date": "2026-11-22", "train": {"wall_s": 200.0, "peak_rss_mib": 1500.0},
              "retrain": {"wall_s": 9.5, "peak_rss_mib": 700.0},
              "components": train_cost.component_times(LOG), "archive_mib": 44.2,
              "cold_start": {"first_reply_s": 31.0, "rss_mib": 1100.0}}
    section = train_cost.report(result)
    assert section.startswith(train_cost.MARK) and section.endswith(train_cost.MARK)
    assert "| DIETClassifier | 180 s | 90% |" in section
    assert "WhitespaceTokenizer" not in section  # under 1 s
    assert "44.2 MiB" in section and "9.5 s" in section
