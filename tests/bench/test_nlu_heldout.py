"""bench/nlu_heldout.py: the held-out file, routing and scoring, the report, and a real run."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from bench import nlu_heldout as heldout
from tests.e2e_fixtures import ROOT

OPEN = ["chitchat", "nlu_fallback", "out_of_scope", "policy_question"]


def _training_texts() -> set:
    texts = set()
    for path in (ROOT / "data" / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text()).get("nlu", []):
            for line in (block.get("examples") or "").splitlines():
                text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.strip()[2:])
                texts.add(text.lower().strip())
    return texts


def test_the_held_out_messages_are_new_and_cover_every_scripted_intent():
    messages = heldout.read_messages(heldout.DEFAULT_NLU)
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    assert {intent for _, intent in messages} <= set(domain["intents"])
    assert not {text.lower() for text, _ in messages} & _training_texts()
    assert len(messages) >= 200
    assert sum(i == heldout.OUT_OF_SCOPE for _, i in messages) >= 60
    assert sum(i == heldout.POLICY for _, i in messages) >= 30
    scripted = set(domain["intents"]) - set(heldout.open_intents(ROOT / "config.yml"))
    assert scripted <= {intent for _, intent in messages}


# A held-out message of 3+ words and a training example this close (cosine of
# their all-MiniLM-L6-v2 embeddings) are the same sentence reworded by a word or
# two ("which items cant be returned"); below it they are paraphrases. One-word and
# two-word messages ("hello") are left out: they cannot be reworded.
NEAR_COPY = 0.92


def test_no_training_example_is_a_near_copy_of_a_held_out_message():
    from rasa.shared.nlu.training_data.loading import load_data

    from components.nlu import minilm

    held = [text for text, _ in heldout.read_messages(heldout.DEFAULT_NLU)
            if len(text.split()) >= 3]
    train = [m.get("text") for m in load_data(str(ROOT / "data" / "nlu")).intent_examples]
    model = minilm.load()
    cosines = (model.encode(held, normalize_embeddings=True)
               @ model.encode(train, normalize_embeddings=True).T)  # (H, T)
    copies = [(held[i], train[j], round(float(cosines[i, j]), 3))
              for i, j in zip(*(cosines >= NEAR_COPY).nonzero())]
    assert not copies, f"training examples that copy held-out messages: {copies}"


def test_open_intents_are_read_from_config_yml():
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    policy = next(p for p in config["policies"] if p["name"].endswith("GPTPolicy"))
    assert set(heldout.open_intents(ROOT / "config.yml")) == set(policy["open_intents"]) | {
        "nlu_fallback"}
    assert heldout.POLICY in policy["open_intents"]


def row(final, intent=None, score=0.9):
    """One message's parse: the final intent and the classifier's own record."""
    return {"final": final, "oos": {"intent": intent or final, "confidence": 0.9,
                                    "similarity": 0.8, "score": score}}


def test_score_counts_each_target_and_lists_the_wrong_routes():
    messages = [("where is my order", "order_status"),        # right
                ("cancel it", "order_status"),                # wrong scripted intent
                ("how long do refunds take", "policy_question"),  # help center: right
                ("can I pick it up", "policy_question"),      # a form: wrong
                ("capital of france", "out_of_scope"),        # fell back: right
                ("tell me a joke", "out_of_scope"),           # chitchat is open: right
                ("weather", "out_of_scope")]                  # scripted: wrong
    rows = [row("order_status"), row("cancel_order"), row("policy_question"),
            row("order_status"), row("nlu_fallback", "help", score=0.2), row("chitchat"),
            row("help", score=0.45)]
    rules = {"0.0": {"score": 0.0}, "0.5": {"score": 0.5}}
    scored = heldout.score(messages, rows, OPEN, rules)
    assert scored["counts"] == {"scripted": [1, 2], "out_of_scope": [2, 3], "policy": [1, 2]}
    assert [w["text"] for w in scored["wrong"]] == ["cancel it", "can I pick it up", "weather"]
    # q = 0: nothing falls back, so "capital of france" goes to help; q = 0.5 catches "weather".
    assert scored["sweep"]["0.0"]["out_of_scope"] == [1, 3]
    assert scored["sweep"]["0.5"]["out_of_scope"] == [3, 3]
    with pytest.raises(ValueError, match="out-of-scope"):
        heldout.score(messages[:2], rows[:2], OPEN)


def test_a_safety_intent_set_after_the_classifier_is_never_re_decided():
    safety = {"final": "abuse", "oos": {"intent": "feedback", "confidence": 0.1,
                                        "similarity": 0.1, "score": 0.1}}
    assert heldout.final_at(safety, {"score": 0.5}) == "abuse"
    assert heldout.final_at(row("nlu_fallback", "help", score=0.2), {"score": 0.0}) == "help"
    assert heldout.final_at({"final": "greet", "oos": None}, {"score": 1.0}) == "greet"


def test_report_is_a_fenced_section():
    scored = heldout.score([("a", "order_status"), ("b", "out_of_scope")],
                           [row("order_status"), row("help", score=0.1)], OPEN,
                           {"0.1": {"score": 0.5}})
    section = heldout.report({"scored": scored, "open_intents": OPEN, "shipped_q": 0.1,
                              "thresholds": "in-scope score 0.5",
                              "date": "2026-12-01", "machine": "m",
                              "command": "python bench/nlu_heldout.py"})
    assert section.startswith(heldout.MARK) and section.endswith(heldout.MARK)
    assert "| scripted paraphrases routed to the right intent | 1/1 (100%) | >= 95% |" in section
    assert "| out-of-scope questions reaching the generator | 0/1 (0%) | >= 90% |" in section
    assert "| b | out_of_scope | help | 0.90 / 0.80 / 0.10 |" in section
    assert "| 0.1 (shipped) | 1/1 (100%) | 1/1 (100%) | - |" in section


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
    assert re.search(r"\| scripted paraphrases routed to the right intent \| \d/1 \(\d+%\) \|",
                     text)
    assert "(shipped)" in text  # the sweep read the held-out scores from the archive
