"""bench/lora_cost.py without training: its dataset is the loop's format, and the report."""
from __future__ import annotations

from bench import lora_cost
from components.feedback.finetune import pairs_to_examples
from components.feedback.review import read_pairs


def test_the_dataset_is_what_the_loop_fine_tunes_on(tmp_path):
    lora_cost.dataset(tmp_path / "data", 5)
    pairs = read_pairs(tmp_path / "data" / "train.jsonl")
    assert len(pairs) == 5 and len(pairs_to_examples(pairs)) == 5


def test_the_report_gives_both_runs_and_their_ratios():
    results = {"full": {"seconds": 60.0, "peak_rss_mb": 3000.0, "trainable": 134_000_000,
                        "steps": 8, "written_mb": 512.0},
               "lora": {"seconds": 30.0, "peak_rss_mb": 2100.0, "trainable": 1_400_000,
                        "steps": 8, "written_mb": 5.12}}
    text = lora_cost.report("llama", 134_000_000, 64, results,
                            {"date": "d", "machine": "x", "args": ""})
    assert text.startswith(lora_cost.MARK) and text.endswith(lora_cost.MARK)
    assert "| `--lora` (r 8, alpha 16) | 30 | 2100 | 1,400,000 | 5.1 |" in text
    assert "time 0.50x, peak RSS 0.70x, written 0.010x" in text
