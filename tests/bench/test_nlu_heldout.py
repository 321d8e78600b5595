"""bench/nlu_heldout.py: the held-out file, routing and scoring, the report, and a real run."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from bench import nlu_heldout as heldout
from tests.e2e_fixtures import ROOT

SETTINGS = {"threshold": 0.3, "ambiguity": 0.1, "gate": {"threshold": 0.6, "exempt": []},
            "open_intents": ["chitchat", "nlu_fallback", "out_of_scope"]}


def _training_texts() -> set:
    texts = set()
    for path in (ROOT / "data" / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text()).get("nlu", []):
            for line in (block.get("examples") or "").splitlines():
                text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.strip()[2:])
                texts.add(text.lower().strip())
    return texts


def test_the_held_out_messages_are_new_and_name_real_intents():
    messages = heldout.read_messages(heldout.DEFAULT_NLU)
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    assert {intent for _, intent in messages} <= set(domain["intents"])
    assert not {text.lower() for text, _ in messages} & _training_texts()
    assert sum(i == heldout.OUT_OF_SCOPE for _, i in messages) >= 20
    assert sum(i != heldout.OUT_OF_SCOPE for _, i in messages) >= 50


def test_shipped_settings_are_read_from_config_yml():
    settings = heldout.shipped_settings(ROOT / "config.yml")
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    gate = next(c for c in config["pipeline"] if c["name"] == heldout.GATE)
    assert settings["gate"] == {"threshold": gate["threshold"],
                                "exempt": sorted(gate["exempt_intents"])}
    assert "nlu_fallback" in settings["open_intents"]


def row(intent, conf, sim=0.9, second=0.0):
    """One message's parse: DIET's top intent and confidence, the gate's similarity."""
    return {"intent": intent, "conf": conf, "second": second, "sim": sim}


def test_score_reads_both_routes_from_one_parse():
    messages = [("where is my order", "order_status"),        # right either way
                ("odd order question", "order_status"),       # the gate sends it away
                ("unsure", "order_status"),                   # FallbackClassifier: too low
                ("cancel it", "order_status"),                # wrong scripted intent
                ("capital of france", "out_of_scope"),        # the gate catches it
                ("tell me a joke", "out_of_scope"),           # DIET: chitchat, open anyway
                ("weather", "out_of_scope")]                  # missed either way
    rows = [row("order_status", 0.9),
            row("order_status", 0.9, sim=0.4),
            row("order_status", 0.2),
            row("cancel_order", 0.9),
            row("opening_hours", 0.9, sim=0.2),
            row("chitchat", 0.9),
            row("help", 0.9)]
    scored = heldout.score(messages, rows, SETTINGS)
    assert scored["n_scripted"] == 4 and scored["n_oos"] == 3
    assert scored["counts"]["with gate"] == {"scripted_right": 1, "scripted_to_generator": 2,
                                             "oos_to_generator": 2}
    assert scored["counts"]["without gate"] == {"scripted_right": 2,
                                                "scripted_to_generator": 1,
                                                "oos_to_generator": 1}
    assert [c["text"] for c in scored["changed"]] == ["odd order question", "capital of france"]
    assert scored["changed"][1]["without"] == "opening_hours"
    # A gate at 0.3 catches only the 0.2 one; at 0.8 every message with sim 0.4 too.
    assert scored["sweep"]["0.3"]["oos_to_generator"] == 2
    assert scored["sweep"]["0.3"]["scripted_right"] == 2
    assert scored["sweep"]["0.45"]["scripted_right"] == 1
    assert set(scored["sweep"]) == {str(s) for s in heldout.GATE_THRESHOLDS}
    with pytest.raises(ValueError, match="out-of-scope"):
        heldout.score(messages[:4], rows[:4], SETTINGS)


def test_report_is_a_fenced_section():
    scored = heldout.score([("a", "order_status"), ("b", "out_of_scope")],
                           [row("order_status", 0.9),
                            row("help", 0.9, sim=0.1)], SETTINGS)
    section = heldout.report({"scored": scored, "settings": SETTINGS, "date": "2026-12-01",
                              "machine": "m", "command": "python bench/nlu_heldout.py"})
    assert section.startswith(heldout.MARK) and section.endswith(heldout.MARK)
    assert "| with gate | 1/1 (100%) | 0/1 (0%) | 1/1 (100%) |" in section
    assert "| without gate | 1/1 (100%) | 0/1 (0%) | 0/1 (0%) |" in section
    assert "| b | out_of_scope | help | 0.10 | help -> nlu_fallback |" in section
    assert "| 0.6 (shipped) | 1/1 (100%) | 0/1 (0%) | 1/1 (100%) |" in section


@pytest.mark.slow
def test_harness_runs_on_the_trained_project(trained_model, tmp_path):
    nlu = tmp_path / "heldout.yml"
    nlu.write_text('version: "3.1"\nnlu:\n- intent: order_status\n  examples: |\n'
                   "    - what stage is my order at\n- intent: out_of_scope\n"
                   "  examples: |\n    - how tall is mount everest\n")
    report = tmp_path / "bench.md"
    report.write_text("# Benchmarks\n\nkept\n")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "nlu_heldout.py"), "--model",
                          trained_model, "--nlu", str(nlu), "--report", str(report)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = report.read_text()
    assert "kept" in text and text.count(heldout.MARK) == 2
    assert re.search(r"\| with gate \| \d/1 \(\d+%\) \| \d/1 \(\d+%\) \| \d/1 \(\d+%\) \|", text)
