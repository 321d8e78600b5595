"""bench/generator_throughput.py: the report from figures written here, and a smoke run on a tiny model."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

from tests.e2e_fixtures import ROOT

spec = importlib.util.spec_from_file_location(
    "generator_throughput", ROOT / "bench" / "generator_throughput.py")
throughput = importlib.util.module_from_spec(spec)
spec.loader.exec_module(throughput)

TEXTS = [f"reply {i}" for i in range(throughput.CONCURRENT)]


def variant(b1: float, c8: float, texts=TEXTS, spread: float = 10.0) -> dict:
    """Three runs around the given tokens/s (40 tokens x 8 replies per run)."""
    def runs(tokens_s):
        return [{"tokens_s": t, "ms_reply": 320 / t * 1000 / 8}
                for t in (tokens_s - spread, tokens_s, tokens_s + spread)]
    return {"b1": runs(b1), "c8": runs(c8), "texts_b1": list(texts), "texts_c8": list(texts),
            "params": 2_377_536, "threads": 2, "quantized_modules": 0, "batch_sizes": [],
            "peak_rss_mib": 700.0, "load_before": 0.5, "load_after": 0.6}


def synthetic(batched_c8: float = 2400.0) -> dict:
    variants = {
        "baseline": variant(300, 200, texts=[t + "!" for t in TEXTS]),
        "generator": variant(360, 350),
        "no_kv_cache": variant(180, 175),
        "no_inference_mode": variant(350, 340),
        "int8_linear": variant(400, 390, texts=TEXTS[:-1] + ["changed"]),
        "int8_conv1d": variant(300, 290),
        "batched": variant(360, batched_c8),
        "batched_1thread": variant(370, batched_c8 * 0.9),
    }
    rows = throughput.techniques(variants)
    return {"date": "2026-11-22 20:00", "machine": "2 CPU cores (test)", "model": "m.tar.gz",
            "model_version": "kestrel-gpt-test", "runs": 3, "new_tokens": 40,
            "bandwidth": {"dram_gb_s": 9.510144, "l3_gb_s": 95.0},
            "compute": {"gflop_s": 50.0, "n": 512, "threads": 2}, "variants": variants,
            "techniques": rows, "plot": "docs/images/generator_throughput.png",
            "report": "docs/benchmarks.md", "notes": "A note."}


def test_techniques_are_kept_only_for_a_gain_with_the_same_replies():
    rows = {r["technique"]: r for r in synthetic()["techniques"]}
    assert rows["KV cache"]["kept"] and round(rows["KV cache"]["ratio"], 2) == 2.0
    assert not rows["`torch.inference_mode`"]["kept"]  # 360 / 350: under 5%
    int8 = rows["int8 `nn.Linear` (lm_head)"]
    assert int8["ratio"] > 1.05 and not int8["same_replies"] and not int8["kept"]
    assert rows["batching (8 per decode)"]["kept"]
    assert not rows["1 thread instead of 2"]["kept"]  # slower
    assert throughput.kept_options(list(rows.values())) == {"batched": True}


def test_kept_options_add_what_gained():
    result = synthetic()
    variants = dict(result["variants"], batched_1thread=variant(370, 3000),
                    int8_conv1d=variant(500, 480))
    options = throughput.kept_options(throughput.techniques(variants))
    assert options == {"batched": True, "int8": "conv1d", "threads": 1}


def test_report_is_a_fenced_section_with_every_variant():
    section = throughput.report(synthetic())
    mark = throughput.MARK
    assert section.startswith(mark) and section.endswith(mark)
    assert section.count(mark) == 2
    for name in throughput.VARIANTS:
        assert f"\n| {name} | " in section
    # batched 2400 tokens/s vs the baseline's 200 under 8 concurrent requests
    assert "| 2400.0 (2390.0-2410.0) |" in section and "12.00x |" in section
    assert "12.0x** (target 3x: met)" in section
    assert "| int8 `nn.Linear` (lm_head) | int8_linear / generator | batch 1 | 1.11x | no |" \
        in section
    assert "images/generator_throughput.png" in section
    # 9.51 GB/s over 9.51 MB of weights: a DRAM bound of 1,000 tokens/s
    assert "1,000 tokens/s" in section
    assert "0/8, 0/8" in section  # the pipeline's replies differ in the synthetic figures
    assert "A note." in section


def test_report_says_when_the_target_is_missed():
    assert "(target 3x: not met)" in throughput.report(synthetic(batched_c8=500.0))


def test_smoke_run_on_a_tiny_model(tiny_checkpoint, tmp_path):
    """The whole harness, every variant in its own process, on the tests' tiny GPT-2."""
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\n<!-- other -->\nkept as is\n<!-- other -->\n")
    plot, raw = tmp_path / "plot.png", tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generator_throughput.py"),
         "--model", str(tiny_checkpoint), "--runs", "1", "--new-tokens", "4",
         "--report", str(report), "--plot", str(plot), "--json", str(raw)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    text = report.read_text()
    assert "<!-- other -->\nkept as is\n<!-- other -->" in text
    assert text.count(throughput.MARK) == 2
    section = text[text.index(throughput.MARK):]
    for name in throughput.VARIANTS:
        assert f"\n| {name} | " in section
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads(raw.read_text())
    variants = result["variants"]
    for v in variants.values():
        assert len(v["b1"]) == len(v["c8"]) == 1 and v["peak_rss_mib"] > 0
        assert all(run["tokens_s"] > 0 and run["ms_reply"] > 0 for run in v["b1"] + v["c8"])
    # The 8 queued requests were decoded as one batch, with the unbatched greedy replies.
    assert variants["batched"]["batch_sizes"] == [throughput.CONCURRENT]
    assert variants["batched"]["texts_c8"] == variants["generator"]["texts_b1"]
    assert variants["generator"]["batch_sizes"] == []
    # Conv1D -> Linear makes every matmul quantizable; plain GPT-2 has only lm_head.
    assert variants["int8_linear"]["quantized_modules"] == 1
    assert variants["int8_conv1d"]["quantized_modules"] > 1
