import json
import math
import re
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import torch
from rasa.shared.core.events import BotUttered, SlotSet, UserUttered

from components.feedback import evaluate as ev
from components.generator.config import GenerationConfig, TrainConfig
from components.generator.generator import Generator, GeneratorLoadError, write_meta
from components.generator.prompt import Turn, build_prompt
from components.generator.train import encode, fit
from components.generator.guardrails import postprocess
from tests.components.feedback.conftest import DAY, T0, generation, rating
from tests.conftest import TINY_TRAIN

PAIRS = [
    {"reply_id": "h1", "context": [{"role": "user", "text": "Do you ship to Canada?"}],
     "reply": "Yes, we ship to the US and Canada.", "source": "helpful", "model_version": "v1"},
    {"reply_id": "h2", "context": [{"role": "user", "text": "Do you ship to Canada?"},
                                   {"role": "assistant", "text": "Yes, we do."},
                                   {"role": "user", "text": "How long does it take?"}],
     "reply": "Standard shipping takes 3-5 business days.", "source": "correction",
     "model_version": "v1"},
    {"reply_id": "h3", "context": [{"role": "user", "text": "Is there a warranty on kettles?"}],
     "reply": "Yes, small appliances have a two-year warranty.", "source": "helpful",
     "model_version": None},
    {"reply_id": "h4", "context": [{"role": "user", "text": "Do you sell gift cards?"}],
     "reply": "Yes, Kestrel gift cards come in any amount from $10.", "source": "correction",
     "model_version": "v1"},
    {"reply_id": "h5", "context": [{"role": "user", "text": "How are you today?"}],
     "reply": "I'm doing well, thanks for asking! How can I help?", "source": "helpful",
     "model_version": "v1"},
]
MAX_NEW = 12  # tokens: keeps the tiny models fast
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def in_the_project_folder(monkeypatch):
    """The defaults read domain.yml and endpoints.yml in the working directory, as the CLI does."""
    monkeypatch.chdir(ROOT)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint, tmp_path_factory):
    """(current, candidate): the tiny GPT-2 as "v1", and a copy fine-tuned on the pairs as "v2"."""
    root = tmp_path_factory.mktemp("ckpt")
    current = root / "current"
    shutil.copytree(tiny_checkpoint, current)
    write_meta(current, {"model_id": "tiny", "version": "v1"})

    generator = Generator.load(tiny_checkpoint)
    cfg = TrainConfig(**{**TINY_TRAIN, "max_steps": 30, "epochs": 30, "learning_rate": 1e-2,
                         "max_turns": 6})
    examples = [([Turn(t["role"], t["text"]) for t in p["context"]], p["reply"]) for p in PAIRS]
    torch.manual_seed(0)
    fit(generator.model, generator.tokenizer, encode(generator.tokenizer, examples, cfg), [],
        cfg, progress=False)
    candidate = root / "candidate"
    generator.model.save_pretrained(candidate)
    generator.tokenizer.save_pretrained(candidate)
    write_meta(candidate, {"model_id": "tiny", "version": "v2", "train_config": cfg.to_dict()})
    return current, candidate


@pytest.fixture
def heldout(tmp_path):
    return write_jsonl(tmp_path / "heldout.jsonl", PAIRS)


@pytest.fixture
def store_url(make_store):
    def rated(reply_id, version, value, t):
        return [UserUttered("Do you ship to Canada?", timestamp=t),
                BotUttered("Yes.", metadata={"generation": generation(reply_id, version)},
                           timestamp=t + 1),
                SlotSet("reply_rating", rating(reply_id, value, version, t + 2), timestamp=t + 2)]

    return make_store({
        "a": rated("r1", "v1", "helpful", T0) + rated("r2", "v1", "not_helpful", T0 + 60),
        "b": rated("r3", "v1", "helpful", T0 + 120) + rated("r4", "v2", "helpful", T0 + DAY),
        "c": rated("r5", "v2", "not_helpful", T0 + DAY + 5)
             + [UserUttered("hi", timestamp=T0 + DAY + 9),
                BotUttered("Hello!", timestamp=T0 + DAY + 10)],
    })


def follows_rule(current, candidate):
    """The promotion rule as the brief states it, independently of the module."""
    return (candidate["perplexity"] < current["perplexity"]
            and candidate["relevance"] >= current["relevance"] - 0.01
            and candidate["guardrail_pass_rate"] >= current["guardrail_pass_rate"] - 0.02
            and candidate["latency_median_ms"] <= 1.5 * current["latency_median_ms"])


def test_report_plots_and_decision_are_written(checkpoints, heldout, tmp_path, store_url):
    import matplotlib.image

    out = tmp_path / "reports" / "eval"
    decision = ev.evaluate_candidate(*checkpoints, heldout, out, store_url=store_url,
                                     max_new_tokens=MAX_NEW, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "decision.json", "metrics.png", "rating_trend.png", "report.md"]
    assert json.loads((out / "decision.json").read_text()) == decision
    assert set(decision) == {"promote", "reasons", "current_version", "candidate_version",
                             "metrics", "heldout", "n_heldout", "created_at"}
    assert (decision["current_version"], decision["candidate_version"]) == ("v1", "v2")
    assert decision["heldout"] == str(heldout) and decision["n_heldout"] == len(PAIRS)
    assert datetime.fromisoformat(decision["created_at"]).tzinfo is not None
    for png in ("metrics.png", "rating_trend.png"):
        assert matplotlib.image.imread(out / png).shape[0] > 100

    current, candidate = decision["metrics"]["current"], decision["metrics"]["candidate"]
    # Fine-tuning on the pairs must have made the references more likely.
    assert candidate["perplexity"] < current["perplexity"]
    for m in (current, candidate):
        assert m["reference_tokens"] > len(PAIRS)
        assert -1 <= m["relevance"] <= 1 and 0 <= m["guardrail_pass_rate"] <= 1
        assert 0 < m["latency_median_ms"] <= m["latency_p95_ms"]
    assert decision["promote"] == follows_rule(current, candidate)
    assert decision["reasons"][0].startswith(
        f"perplexity {current['perplexity']:.1f} -> {candidate['perplexity']:.1f} (better)")

    report = (out / "report.md").read_text()
    assert report.startswith("# Generator evaluation")
    assert "`v1`" in report and "`v2`" in report
    assert ("PROMOTE the candidate" in report) == decision["promote"]
    assert ("KEEP the current generator" in report) == (not decision["promote"])
    for reason in decision["reasons"]:
        assert reason in report
    assert "![metrics](metrics.png)" in report and "![rating trend](rating_trend.png)" in report
    assert report.count("\n### ") == 3
    assert "- reference: Yes, we ship to the US and Canada." in report  # first pair
    assert re.search(r"\| 2024-05-01 +\| v1 +\| +3 \| +2 \| 67% +\|", report)
    assert re.search(r"\| 2024-05-02 +\| v2 +\| +2 \| +1 \| 50% +\|", report)


def test_rating_trend_per_day_and_version(store_url):
    rows, warnings = ev.rating_trend(store_url)
    assert rows == [
        {"day": "2024-05-01", "model_version": "v1", "rated": 3, "helpful": 2,
         "not_helpful": 1, "helpful_share": pytest.approx(2 / 3)},
        {"day": "2024-05-02", "model_version": "v2", "rated": 2, "helpful": 1,
         "not_helpful": 1, "helpful_share": 0.5},
    ]
    assert warnings == []


def test_without_a_store_the_report_says_so(checkpoints, heldout, tmp_path):
    out = tmp_path / "eval"
    ev.evaluate_candidate(*checkpoints, heldout, out, max_new_tokens=MAX_NEW, progress=False)
    assert "No tracker store was given" in (out / "report.md").read_text()
    assert (out / "rating_trend.png").stat().st_size > 0


def test_an_existing_out_dir_is_replaced_and_no_temp_folder_is_left(checkpoints, heldout,
                                                                    tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "stale.txt").write_text("old run")
    ev.evaluate_candidate(*checkpoints, heldout, out, max_new_tokens=MAX_NEW, progress=False)
    assert not (out / "stale.txt").exists() and (out / "decision.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval", "heldout.jsonl"]


def test_perplexity_is_exp_of_the_mean_nll_per_reply_token(checkpoints):
    path = checkpoints[0]
    generator = Generator.load(path)
    tok = generator.tokenizer
    pairs = ev.load_heldout(write_jsonl(path.parent / "ppl.jsonl", PAIRS[:2]))
    total, count = 0.0, 0
    for pair in pairs:  # by hand, one example at a time, no padding
        prompt = tok(build_prompt(tok, pair.context, 6), add_special_tokens=False)["input_ids"]
        reply = tok(pair.reply, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = torch.tensor([prompt + reply])
        with torch.no_grad():
            logp = torch.log_softmax(generator.model(ids).logits[0, :-1], dim=-1)
        targets = ids[0, 1:]
        nll = -logp[torch.arange(len(targets)), targets][len(prompt) - 1:]
        total, count = total + float(nll.sum()), count + len(reply)
    ppl, tokens = ev.perplexity(generator, path, pairs)
    assert tokens == count
    assert ppl == pytest.approx(math.exp(total / count), rel=1e-4)


def test_replies_are_post_processed_and_scored(checkpoints):
    generator = Generator.load(checkpoints[1])
    pairs = [ev.HeldoutPair(p["reply_id"], [Turn(**t) for t in p["context"]], p["reply"],
                            p["source"], p["model_version"]) for p in PAIRS]
    metrics, replies = ev.score_generator(generator, checkpoints[1], pairs, MAX_NEW,
                                          progress=False)
    assert len(replies) == len(PAIRS)
    for reply in replies:
        expected = postprocess(reply["raw"], ev.bot_settings().guardrails, ev.fallback_text())
        assert (reply["text"], reply["fallback"]) == (expected.text, expected.fallback)
    passed = [r["fallback"] is None for r in replies]
    assert metrics["guardrail_pass_rate"] == sum(passed) / len(replies)
    assert sum(metrics["fallbacks"].values()) == passed.count(False)
    assert metrics["relevance"] == pytest.approx(
        sum(r["relevance"] for r in replies) / len(replies))


# --------------------------------------------------------------------------- the rule

BASE = {"perplexity": 41.2, "relevance": 0.5, "guardrail_pass_rate": 0.9,
        "latency_median_ms": 100.0}


def test_a_candidate_better_everywhere_is_promoted():
    promote, reasons = ev.decide(BASE, {**BASE, "perplexity": 35.0, "relevance": 0.6,
                                        "guardrail_pass_rate": 0.95, "latency_median_ms": 90.0})
    assert promote
    assert reasons == ["perplexity 41.2 -> 35.0 (better)",
                       "relevance 0.500 -> 0.600 (better)",
                       "guardrail pass rate 90.0% -> 95.0% (better)",
                       "median latency 100 ms -> 90 ms (faster)"]


@pytest.mark.parametrize("change, promote, words", [
    ({"perplexity": 41.2}, False, "not better"),
    ({"perplexity": 50.0}, False, "not better"),
    ({"relevance": 0.495}, True, "within the 0.01 tolerance"),
    ({"relevance": 0.48}, False, "worse by more than 0.01"),
    ({"guardrail_pass_rate": 0.885}, True, "within the 2-point tolerance"),
    ({"guardrail_pass_rate": 0.87}, False, "worse by more than 2 points"),
    ({"latency_median_ms": 150.0}, True, "slower, within 1.5x the current"),
    ({"latency_median_ms": 151.0}, False, "slower than 1.5x the current"),
])
def test_each_test_of_the_rule_can_block_promotion(change, promote, words):
    candidate = {**BASE, "perplexity": 30.0, **change}
    result, reasons = ev.decide(BASE, candidate)
    assert result == promote == follows_rule(BASE, candidate)
    assert any(words in r for r in reasons), reasons


# --------------------------------------------------------------------------- errors

def test_missing_and_empty_heldout_files(checkpoints, tmp_path):
    with pytest.raises(ev.EvaluationError, match="does not exist"):
        ev.evaluate_candidate(*checkpoints, tmp_path / "nope.jsonl", tmp_path / "out")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(ev.EvaluationError, match="is empty"):
        ev.evaluate_candidate(*checkpoints, empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", r"Line 3 of .* is not JSON"),
    ("[1, 2]", r"Line 3 of .* is a JSON list, not an object"),
    (json.dumps({"reply_id": "x", "context": []}),
     r"Line 3 of .* lacks the key\(s\) \['reply', 'source', 'model_version'\]"),
    (json.dumps({**PAIRS[0], "context": [{"role": "user", "text": "hi"},
                                         {"role": "assistant", "text": "hello"}]}),
     r"Line 3 .* ends with an assistant turn"),
    (json.dumps({**PAIRS[0], "context": [{"role": "agent", "text": "hi"}]}),
     r"Line 3 .* context turn 0"),
    (json.dumps({**PAIRS[0], "reply": "  "}), r"Line 3 .* `reply` has to be a non-empty"),
])
def test_a_bad_line_is_named(tmp_path, bad_line, message):
    path = tmp_path / "heldout.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + "\n\n" + bad_line + "\n" + json.dumps(PAIRS[1]) + "\n")
    with pytest.raises(ev.EvaluationError, match=message):
        ev.load_heldout(path)


def test_a_bad_checkpoint_leaves_the_old_report_alone(checkpoints, heldout, tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "decision.json").write_text("{}")
    with pytest.raises(GeneratorLoadError, match="not a directory"):
        ev.evaluate_candidate(checkpoints[0], tmp_path / "missing", heldout, out,
                              progress=False)
    assert (out / "decision.json").read_text() == "{}"


def test_too_many_new_tokens_is_an_evaluation_error(checkpoints, heldout, tmp_path):
    with pytest.raises(ev.EvaluationError, match="max_new_tokens=96 does not fit"):
        ev.evaluate_candidate(*checkpoints, heldout, tmp_path / "out", max_new_tokens=96,
                              progress=False)


def test_the_fallback_is_the_bots_own_text():
    import yaml

    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert ev.fallback_text() == domain["responses"]["utter_gpt_reply"][0]["text"]
    assert ev.fallback_text(ROOT / "domain.yml") == ev.fallback_text()


def test_the_decoding_is_the_bots_own_made_greedy():
    from components.nlg.config import read_nlg_config

    bot = read_nlg_config(ROOT / "endpoints.yml").decoding
    assert ev.bot_decoding() == replace(bot, do_sample=False)
    assert ev.bot_decoding(MAX_NEW) == replace(bot, do_sample=False, max_new_tokens=MAX_NEW)
    # With the project's endpoints.yml, the settings this module used to hard-code.
    assert ev.bot_decoding() == GenerationConfig(do_sample=False, repetition_penalty=1.3,
                                                 copy_bias=16.0, max_new_tokens=48,
                                                 max_time_s=2.0)


def write_bot_files(tmp_path, canned="Our canned test reply.", decoding="max_time_s: 2.0"):
    domain = tmp_path / "domain.yml"
    domain.write_text(f'version: "3.1"\nresponses:\n  utter_gpt_reply:\n'
                      f'    - text: "{canned}"\n', encoding="utf-8")
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("nlg:\n  type: components.nlg.generative_nlg.GenerativeNLG\n"
                         f"  decoding: {{{decoding}}}\n", encoding="utf-8")
    return domain, endpoints


def test_scoring_uses_the_given_domain_and_endpoints_files(checkpoints, tmp_path):
    # A decoding budget no reply can meet: every reply gets the canned text of `domain`.
    domain, endpoints = write_bot_files(tmp_path, decoding="max_time_s: 1.0e-6")
    generator = Generator.load(checkpoints[0])
    pairs = ev.load_heldout(write_jsonl(tmp_path / "heldout.jsonl", PAIRS[:2]))
    metrics, replies = ev.score_generator(generator, checkpoints[0], pairs, MAX_NEW,
                                          progress=False, domain_path=domain,
                                          endpoints_path=endpoints)
    assert [r["text"] for r in replies] == ["Our canned test reply."] * 2
    assert metrics["fallbacks"] == {"timeout": 2} and metrics["guardrail_pass_rate"] == 0


@pytest.mark.parametrize("domain_text, endpoints_text, message", [
    (None, "nlg:\n  response: utter_gpt_reply\n", "`response` in endpoints.yml is no longer read"),
    (None, "nlg:\n  decoding: {max_time_s: 0}\n", "max_time_s has to be > 0"),
    ('version: "3.1"\nresponses:\n  utter_greet: [{text: hi}]\n', None,
     "has no text for the response 'utter_gpt_reply'"),
])
def test_bad_bot_files_fail_before_any_model_is_loaded(heldout, tmp_path, domain_text,
                                                      endpoints_text, message):
    domain, endpoints = write_bot_files(tmp_path)
    if domain_text:
        domain.write_text(domain_text, encoding="utf-8")
    if endpoints_text:
        endpoints.write_text(endpoints_text, encoding="utf-8")
    with pytest.raises(ev.EvaluationError, match=re.escape(message)):
        ev.evaluate_candidate(tmp_path / "no-model", tmp_path / "no-model", heldout,
                              tmp_path / "out", domain_path=domain, endpoints_path=endpoints)
    assert not (tmp_path / "out").exists()


def test_missing_bot_files_are_named(tmp_path):
    with pytest.raises(ev.EvaluationError, match="No domain file at"):
        ev.fallback_text(tmp_path / "domain.yml")
    with pytest.raises(ev.EvaluationError, match="No endpoints file at"):
        ev.bot_decoding(endpoints_path=tmp_path / "endpoints.yml")
