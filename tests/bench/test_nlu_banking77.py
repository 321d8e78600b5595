"""bench/nlu_banking77.py: split, Rasa's fallback rule, metrics, report, and a tiny real run."""
from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.nlu.training_data.message import Message

from bench import nlu_banking77 as nlu
from tests.e2e_fixtures import ROOT

TRAIN = [(f"{intent} question {i}", intent) for intent in "abcdef" for i in range(8)]
TEST = [(f"{intent} test {i}", intent) for intent in "abcdef" for i in range(3)]


def test_split_holds_out_whole_intents_and_samples_per_intent():
    split = nlu.make_split(TRAIN, TEST, holdout=2, per_intent=5, seed=7)
    assert len(split["oos"]) == 2
    trained = {intent for _, intent in split["train"]}
    assert trained.isdisjoint(split["oos"]) and len(trained) == 4
    assert len(split["train"]) == 4 * 5
    assert all(in_scope == (intent not in split["oos"]) for _, intent, in_scope in split["test"])
    assert nlu.make_split(TRAIN, TEST, 2, 5, seed=7) == split  # same seed, same split
    assert len(nlu.make_split(TRAIN, TEST, 2, 0, seed=7)["train"]) == 4 * 8  # 0 = all


def test_split_rejects_a_holdout_that_leaves_too_few_intents():
    with pytest.raises(ValueError, match="--holdout"):
        nlu.make_split(TRAIN, TEST, holdout=5, per_intent=5, seed=1)


@pytest.mark.parametrize("conf,second", [(0.9, 0.05), (0.29, 0.1), (0.45, 0.4),
                                         (0.31, 0.2), (0.6, 0.55), (0.2, 0.01)])
def test_fallback_rule_matches_rasas_fallback_classifier(conf, second):
    config = {**FallbackClassifier.get_default_config(), "threshold": 0.3,
              "ambiguity_threshold": 0.1}
    message = Message(data={"text": "x", "intent": {"name": "a", "confidence": conf},
                            "intent_ranking": [{"name": "a", "confidence": conf},
                                               {"name": "b", "confidence": second}]})
    FallbackClassifier(config).process([message])
    rasa_says = message.get("intent")["name"] == "nlu_fallback"
    row = {"intent": "a", "conf": conf, "second": second}
    assert nlu.falls_back(row, 0.3, 0.1) == rasa_says


def test_metrics_count_fallbacks_as_errors_in_scope_and_as_hits_out_of_scope():
    test = [("t1", "a", True), ("t2", "a", True), ("t3", "b", True), ("t4", "b", True),
            ("o1", "z", False), ("o2", "z", False)]
    rows = [{"intent": "a", "conf": 0.9, "second": 0.0, "ms": 1.0},
            {"intent": "a", "conf": 0.4, "second": 0.0, "ms": 2.0},   # right, unsure
            {"intent": "a", "conf": 0.9, "second": 0.0, "ms": 3.0},   # wrong
            {"intent": "b", "conf": 0.8, "second": 0.75, "ms": 4.0},  # right, ambiguous
            {"intent": "a", "conf": 0.35, "second": 0.0, "ms": 5.0},
            {"intent": "b", "conf": 0.95, "second": 0.0, "ms": 6.0}]
    m = nlu.metrics(test, rows, threshold=0.5, ambiguity=0.1)
    assert m["accuracy"] == 0.75
    assert m["macro_f1"] == pytest.approx((2 * (2 / 3) * 1 / (2 / 3 + 1) + 2 / 3) / 2)
    assert m["shipped"] == {"in_scope_accuracy": 0.25, "oos_recall": 0.5}
    assert m["curve"]["0.0"]["oos_recall"] == 0.0  # nothing below 0 confidence
    assert m["curve"]["0.0"]["in_scope_accuracy"] == 0.5  # the ambiguous one still falls back


def oos(score):
    """SentenceIntentClassifier's record, as a parse carries it (threshold 0.5)."""
    return {"intent": "a", "confidence": 0.9, "similarity": 0.9, "score": score,
            "threshold": 0.5, "fallback": False}


@pytest.mark.parametrize("score,expected", [(0.49, True), (0.5, False), (0.9, False)])
def test_the_calibrated_rule_reads_the_recorded_score(score, expected):
    rule = {"score": 0.5}
    row = {"intent": "a", "conf": 0.9, "second": 0.0, "oos": oos(score)}
    assert nlu.falls_back(row, 0.0, 0.0, rule) == expected
    assert nlu.falls_back(row, 0.0, 0.0) is False  # without the rule: Rasa's rule only
    assert nlu.falls_back({**row, "oos": None}, 0.0, 0.0, rule) is False  # nothing recorded
    assert nlu.shipped_rule([{"oos": None}, row]) == rule


def test_metrics_with_the_rule_report_it_on_off_and_over_its_quantile():
    test = [("t1", "a", True), ("t2", "a", True), ("o1", "z", False), ("o2", "z", False)]
    rows = [{"intent": "a", "conf": 0.9, "second": 0.0, "oos": oos(0.8)},
            {"intent": "a", "conf": 0.9, "second": 0.0, "oos": oos(0.45)},  # falls back
            {"intent": "a", "conf": 0.9, "second": 0.0, "oos": oos(0.4)},  # falls back
            {"intent": "a", "conf": 0.9, "second": 0.0, "oos": oos(0.7)}]
    rule = {"score": 0.5}
    rules = {"0.0": {"score": 0.0}, "0.3": {"score": 0.75}}
    m = nlu.metrics(test, rows, threshold=0.0, ambiguity=0.0, rule=rule, rules=rules)
    assert m["shipped"] == {"in_scope_accuracy": 0.5, "oos_recall": 0.5}
    assert m["no_rule"] == {"in_scope_accuracy": 1.0, "oos_recall": 0.0}
    assert m["rule_curve"]["0.0"] == m["no_rule"]
    assert m["rule_curve"]["0.3"] == {"in_scope_accuracy": 0.5, "oos_recall": 1.0}
    assert m["rule"] == rule
    assert "rule_curve" not in nlu.metrics(test, rows, threshold=0.3, ambiguity=0.1)


def test_report_is_a_fenced_section_with_both_pipelines():
    def one(acc, oos):
        curve = {str(t): {"in_scope_accuracy": acc, "oos_recall": oos} for t in nlu.THRESHOLDS}
        return {"accuracy": acc, "macro_f1": acc, "shipped": curve["0.3"], "curve": curve,
                "parse_ms": 10.0, "train_s": 60.0, "threshold": 0.3, "n_train": 2010,
                "oos_intents": ["x"]}
    def ruled(acc, oos, q):
        return {**one(acc, oos), "rule": {"score": 0.5},
                "no_rule": {"in_scope_accuracy": acc + 0.05, "oos_recall": oos - 0.2},
                "rule_curve": {}, "shipped_q": q}
    runs = [{"rasa init default": one(0.8, 0.3), "project (config.yml)": ruled(0.85, 0.5, 0.1)},
            {"rasa init default": one(0.7, 0.2), "project (config.yml)": ruled(0.8, 0.6, 0.15)}]
    section = nlu.report({"runs": runs, "date": "2026-11-22", "machine": "m", "runs_n": 2,
                          "seeds": "42, 43", "holdout": 10, "per_intent_text": "30 of each",
                          "command": "python bench/nlu_banking77.py"})
    assert section.startswith(nlu.MARK) and section.endswith(nlu.MARK)
    assert "| intent accuracy, % | 75.0 (70.0-80.0) | 82.5 (80.0-85.0) |" in section
    assert "OOS recall +30.0 points (+20.0 to +40.0)" in section
    assert "the calibrated rule, q 0.1, 0.15 (project (config.yml))" in section
    assert "The rule's own share (project (config.yml), rule on vs off): OOS recall +20.0" \
        in section


def test_cached_run_computes_once_and_is_keyed_by_the_split_settings(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"default": {"accuracy": 0.5 + len(calls)}}

    first = nlu.cached_run(tmp_path, 42, 10, 10, compute)
    assert nlu.cached_run(tmp_path, 42, 10, 10, compute) == first  # read back, not recomputed
    assert len(calls) == 1
    assert nlu.cached_run(tmp_path, 43, 10, 10, compute) != first  # another seed
    assert nlu.cached_run(tmp_path, 42, 5, 10, compute) != first  # another sample size
    assert len(calls) == 3 and len(list(tmp_path.glob("*.json"))) == 3


def test_cache_key_ignores_thresholds_only():
    pipeline = [{"name": "DIETClassifier", "epochs": 100},
                {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.1},
                {"name": nlu.RULE, "featurizers": ["minilm"]}]
    key = nlu.cache_key(pipeline)
    moved = [dict(c) for c in pipeline]
    moved[1].update(threshold=0.5, ambiguity_threshold=0.2)
    assert nlu.cache_key(moved) == key  # re-scored, not retrained
    retrained = [dict(c) for c in pipeline]
    retrained[0]["epochs"] = 50
    assert nlu.cache_key(retrained) != key
    refeaturized = [dict(c) for c in pipeline]
    refeaturized[2]["featurizers"] = []
    assert nlu.cache_key(refeaturized) != key


def test_score_run_rescores_recorded_parses_at_the_current_thresholds():
    test = [("t1", "a", True), ("t2", "a", True), ("o1", "z", False)]
    rows = [{"intent": "a", "conf": 0.9, "second": 0.0, "oos": None},
            {"intent": "a", "conf": 0.45, "second": 0.0, "oos": None},
            {"intent": "a", "conf": 0.9, "second": 0.0, "oos": oos(0.45)}]
    raw = {"p": {"rows": rows, "parse_ms": 12.0, "train_s": 30.0, "n_train": 20,
                 "oos_intents": ["z"], "rules": {}, "shipped_q": 0.1}}

    def spec(t, calibrated):
        return {"p": {"threshold": t, "ambiguity": 0.1, "calibrated": calibrated}}
    low = nlu.score_run(raw, test, spec(0.3, False))["p"]
    assert low["shipped"] == {"in_scope_accuracy": 1.0, "oos_recall": 0.0}
    high = nlu.score_run(raw, test, spec(0.5, False))["p"]
    assert high["shipped"] == {"in_scope_accuracy": 0.5, "oos_recall": 0.0}
    ruled = nlu.score_run(raw, test, spec(0.3, True))["p"]  # the recorded rule: score 0.5
    assert ruled["shipped"] == {"in_scope_accuracy": 1.0, "oos_recall": 1.0}
    assert high["threshold"] == 0.5 and high["parse_ms"] == 12.0 and high["n_train"] == 20
    assert ruled["shipped_q"] == 0.1


def test_absent_dataset_is_skipped_with_a_message(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "nlu_banking77.py"),
                          "--data", str(tmp_path / "nowhere")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0
    assert "Skipped: Banking77 not found" in out.stdout


@pytest.mark.slow
def test_harness_smoke_run_on_a_tiny_dataset(tmp_path):
    """Trains both pipelines on 6 intents x 6 examples and writes a report and a plot."""
    phrases = {"card_arrival": "where is my new card", "top_up": "add money to my account",
               "pin": "change my card pin", "refund": "i want my money back",
               "fees": "why was i charged a fee", "exchange": "what exchange rate do you use"}
    for name, n in (("train.csv", 6), ("test.csv", 3)):
        with (tmp_path / name).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            for intent, phrase in phrases.items():
                writer.writerows([f"{phrase} please {i}", intent] for i in range(n))
    report = tmp_path / "bench.md"
    report.write_text("# Benchmarks\n\nkept\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "nlu_banking77.py"), "--data", str(tmp_path),
         "--holdout", "2", "--per-intent", "4", "--runs", "1", "--report", str(report),
         "--plot", str(tmp_path / "curve.png")],
        capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = report.read_text()
    assert "kept" in text and text.count(nlu.MARK) == 2
    assert "| intent accuracy, % |" in text and "project (config.yml)" in text
    assert (tmp_path / "curve.png").stat().st_size > 10_000
