"""NLU on Banking77: intent accuracy, macro-F1 and out-of-scope recall, two pipelines side by side.

    python bench/nlu_banking77.py [--data ../shared/datasets/banking77] [--per-intent 10]
                                  [--holdout 10] [--runs 3] [--report docs/benchmarks.md]
                                  [--cache DIR] [--seed 42]

Data: Banking77 (Casanueva et al. 2020, "Efficient Intent Detection with Dual
Sentence Encoders", arXiv 2003.04807; PolyAI-LDN/task-specific-datasets,
CC BY 4.0), read in place; the harness exits 0 with a message when the folder
is absent.

Each run (seed 42, 43, ... or from ``--seed``):

1. draws ``--holdout`` of the 77 intents as out of scope: none of their
   examples is trained on, and their test messages should end in
   ``nlu_fallback``;
2. samples ``--per-intent`` training examples of each remaining intent (the
   paper's few-shot setting; 0 takes all) and keeps the full test split;
3. trains, with ``rasa train nlu`` and an empty cache, the pipeline that
   ``rasa init`` ships (Rasa's default config: no pipeline given, so Rasa
   fills in its default one, FallbackClassifier threshold 0.3) and the
   project's pipeline (config.yml, policies left out);
4. parses every test message and records the intent ranking and, where the
   pipeline has components.nlu.nearest_example_fallback.NearestExampleFallback, the
   cosine similarity to the nearest training example of the top intent.

Metrics, per pipeline:

- accuracy and macro-F1 of the top intent on in-scope test messages (no
  fallback), sklearn's ``f1_score(average="macro")``;
- at a fallback threshold t: a turn falls back when the top confidence is below
  t or within the FallbackClassifier's ``ambiguity_threshold`` of the second
  (Rasa's rule), or when the pipeline's SentenceIntentClassifier rule fires
  (the fused max-softmax and nearest-example score below its calibrated
  threshold, as recorded in the parse); in-scope accuracy =
  correct and not fallen back, over in-scope messages; OOS recall = fallen
  back, over out-of-scope messages. Reported at the thresholds each config
  ships, plotted over t in 0..0.95 (the max-softmax threshold alone), and, for
  the calibrated rule, over its quantile q (thresholds recomputed from the
  held-out scores stored in the archive, ``read_rules``);
- training time (s, wall clock of ``rasa train nlu``) and parse latency (ms per
  message, ``Agent.parse_message`` one at a time).

Writes the ``<!-- nlu-banking77 -->`` section of ``--report`` and
docs/images/nlu_threshold.png. With ``--cache DIR`` each finished split is kept
in DIR (keyed by seed, ``--per-intent``, ``--holdout`` and the pipeline's files)
and reused by a later run, so a stopped job resumes where it stopped.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import machine, median_spread, publish  # noqa: E402

RASA = str(Path(sys.executable).parent / "rasa")
MARK = "<!-- nlu-banking77 -->"
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "banking77"
PLOT = ROOT / "docs" / "images" / "nlu_threshold.png"
THRESHOLDS = [round(0.05 * i, 2) for i in range(20)]  # 0.0 .. 0.95
QUANTILES = [round(0.05 * i, 2) for i in range(11)]  # the rule's q, 0 .. 0.5
RULE = "components.nlu.sentence_intent_classifier.SentenceIntentClassifier"
FALLBACK = "nlu_fallback"


def read_split(path: Path) -> List[tuple]:
    """``(text, intent)`` rows of a Banking77 CSV (columns ``text,category``)."""
    with path.open(newline="", encoding="utf-8") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def make_split(train: Sequence[tuple], test: Sequence[tuple], holdout: int,
               per_intent: int, seed: int) -> Dict[str, object]:
    """Out-of-scope intents, the training sample and the labelled test set of one run.

    Returns:
        ``{"oos": sorted held-out intents, "train": [(text, intent)],
        "test": [(text, intent, in_scope)]}``; the training sample holds only
        in-scope intents, ``per_intent`` of each (all when 0 or fewer exist).

    Raises:
        ValueError: if ``holdout`` leaves fewer than 2 in-scope intents.
    """
    intents = sorted({intent for _, intent in train})
    if not 0 <= holdout <= len(intents) - 2:
        raise ValueError(f"--holdout has to leave at least 2 of the {len(intents)} "
                         f"intents in scope, got {holdout}.")
    rng = random.Random(seed)
    oos = set(rng.sample(intents, holdout))
    by_intent: Dict[str, list] = {}
    for text, intent in train:
        if intent not in oos:
            by_intent.setdefault(intent, []).append((text, intent))
    sample = []
    for intent in sorted(by_intent):
        rows = by_intent[intent]
        sample += rows if per_intent <= 0 else rng.sample(rows, min(per_intent, len(rows)))
    return {"oos": sorted(oos), "train": sample,
            "test": [(text, intent, intent not in oos) for text, intent in test]}


def write_nlu(rows: Sequence[tuple], path: Path) -> None:
    """Rasa's JSON NLU format: brackets in customer text stay text, not entity markup."""
    examples = [{"text": text, "intent": intent} for text, intent in rows]
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": examples}}))


def pipelines(tmp: Path) -> Dict[str, dict]:
    """The two configs: their file, their FallbackClassifier settings, and whether
    their out-of-scope rule is the calibrated one of SentenceIntentClassifier.

    A config without a FallbackClassifier gets threshold and ambiguity 0 (the
    FallbackClassifier rule never fires).
    """
    import yaml

    # What `rasa init` writes: no pipeline, so Rasa fills in its default one,
    # whose FallbackClassifier has threshold 0.3, ambiguity_threshold 0.1
    # (rasa/engine/recipes/config_files/default_config.yml).
    default = tmp / "default.yml"
    default.write_text("recipe: default.v1\nlanguage: en\nassistant_id: bench\npipeline:\n")
    project_cfg = yaml.safe_load((ROOT / "config.yml").read_text())
    fallback = next((c for c in project_cfg["pipeline"] if c["name"] == "FallbackClassifier"),
                    {"threshold": 0.0, "ambiguity_threshold": 0.0})
    calibrated = any(c["name"] == RULE for c in project_cfg["pipeline"])
    project = tmp / "project.yml"
    project.write_text(yaml.safe_dump({k: project_cfg[k] for k in
                                       ("recipe", "language", "assistant_id", "pipeline")}))
    return {
        "rasa init default": {"config": default, "threshold": 0.3, "ambiguity": 0.1,
                              "calibrated": False},
        "project (config.yml)": {
            "config": project, "threshold": float(fallback.get("threshold", 0.3)),
            "ambiguity": float(fallback.get("ambiguity_threshold", 0.1)),
            "calibrated": calibrated},
    }


def train(config: Path, nlu: Path, out: Path, name: str, env: dict) -> float:
    """Trains an NLU model with an empty cache; returns the wall time in s.

    Raises:
        RuntimeError: if ``rasa train nlu`` fails; the message names its log file.
    """
    log = out / f"{name}.log"
    cmd = [RASA, "train", "nlu", "--config", str(config), "--nlu", str(nlu), "--out",
           str(out), "--fixed-model-name", name]
    env = {**env, "RASA_CACHE_DIRECTORY": str(out / f"cache-{name}")}
    start = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.run(cmd, env=env, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode
    if code:
        raise RuntimeError(f"rasa train nlu failed ({code}); see {log}")
    return time.perf_counter() - start


def parse_all(archive: Path, texts: Sequence[str]) -> List[dict]:
    """Each text's parse: ``{"intent", "conf", "second", "final", "oos", "ms"}``.

    ``intent``, ``conf`` and ``second`` come from the ranking without
    nlu_fallback; ``final`` is the parsed intent (nlu_fallback included);
    ``oos`` is SentenceIntentClassifier's record of its scores and thresholds
    (None without it); ``ms`` the parse time.
    """
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # unconfigured, Rasa logs every parse at debug
    agent = Agent.load(str(archive))

    async def run() -> List[dict]:
        rows = []
        for text in texts:
            start = time.perf_counter()
            parsed = await agent.parse_message(text)
            ms = (time.perf_counter() - start) * 1000.0
            ranking = [r for r in parsed.get("intent_ranking") or [] if r["name"] != FALLBACK]
            top = ranking[0] if ranking else {"name": None, "confidence": 0.0}
            second = ranking[1]["confidence"] if len(ranking) > 1 else 0.0
            rows.append({"intent": top["name"], "conf": float(top["confidence"]),
                         "second": float(second),
                         "final": (parsed.get("intent") or {}).get("name"),
                         "oos": parsed.get("out_of_scope"), "ms": ms})
        return rows

    return asyncio.run(run())


def falls_back(row: dict, threshold: float, ambiguity: float,
               rule: Optional[dict] = None) -> bool:
    """Rasa's FallbackClassifier rule (low confidence, or too close to the runner-up),
    or SentenceIntentClassifier's: ``rule = {"score"}``, the threshold applied
    to the fused in-scope score it recorded in ``row["oos"]``."""
    if row["conf"] < threshold or (row["conf"] - row["second"]) < ambiguity:
        return True
    record = row.get("oos")
    return (rule is not None and record is not None
            and record["score"] < rule["score"])


def shipped_rule(rows: Sequence[dict]) -> Optional[dict]:
    """The thresholds SentenceIntentClassifier recorded in the parses, or None."""
    record = next((r["oos"] for r in rows if r.get("oos")), None)
    return record and {"score": record["threshold"]}


def read_rules(archive: Path, quantiles: Sequence[float]):
    """``({str(q): {"score"}}, shipped q)`` from a trained archive.

    The threshold at each q is recomputed (``sentence_intent_classifier.rule_at``)
    from the held-out scores ``rasa train`` stored with the classifier; a q whose
    tied scores make no valid rule is left out; the shipped q is always among
    them. ``({}, None)`` when the archive has no SentenceIntentClassifier.
    """
    import numpy as np
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    from components.nlu import sentence_intent_classifier as sic

    with tempfile.TemporaryDirectory() as tmp:
        storage, metadata = LocalModelStorage.from_model_archive(Path(tmp), Path(archive))
        nodes = [n for n in metadata.predict_schema.nodes.values()
                 if n.uses is sic.SentenceIntentClassifier and n.resource]
        if not nodes:
            return {}, None
        with storage.read_from(nodes[0].resource) as directory:
            with np.load(directory / sic.ARRAYS_FILE) as stored:
                held = {key[len(sic.HELD):]: stored[key] for key in stored.files
                        if key.startswith(sic.HELD)}
            shipped = json.loads((directory / sic.CALIBRATION_FILE).read_text())["quantile"]
    rules = {}
    for q in sorted(set(quantiles) | {shipped}):
        rule = sic.rule_at(held, q, "") if held else None
        if rule:
            rules[str(q)] = {"score": rule.threshold}
    return rules, shipped


def metrics(test: Sequence[tuple], rows: Sequence[dict], threshold: float,
            ambiguity: float, rule: Optional[dict] = None,
            rules: Optional[Dict[str, dict]] = None) -> Dict[str, object]:
    """Accuracy, macro-F1 (no fallback), and in-scope accuracy / OOS recall per threshold.

    Args:
        test: ``(text, intent, in_scope)`` per message.
        rows: ``parse_all`` output, same order.
        rule: the calibrated out-of-scope thresholds the pipeline ships
            (``{"score"}``), or None. With a rule, ``no_rule``
            scores the same parses without it, and ``rule_curve`` moves it over
            ``rules`` (``{q: thresholds}``, from ``read_rules``).

    Raises:
        ValueError: if ``test`` has no in-scope or no out-of-scope message.
    """
    from sklearn.metrics import f1_score

    inside = [(t, r) for t, r in zip(test, rows) if t[2]]
    outside = [r for t, r in zip(test, rows) if not t[2]]
    if not inside or not outside:
        raise ValueError("the test set needs in-scope and out-of-scope messages")
    gold = [t[1] for t, _ in inside]
    pred = [r["intent"] or "" for _, r in inside]

    def at(t: float, g: Optional[dict] = rule) -> Dict[str, float]:
        ok = sum(label == r["intent"] and not falls_back(r, t, ambiguity, g)
                 for label, (_, r) in zip(gold, inside))
        return {"in_scope_accuracy": ok / len(inside),
                "oos_recall": sum(falls_back(r, t, ambiguity, g) for r in outside)
                / len(outside)}

    extra = {} if rule is None else {
        "rule": rule, "no_rule": at(threshold, None),
        "rule_curve": {q: at(threshold, r) for q, r in (rules or {}).items()}}
    return {**extra,
        "accuracy": sum(g == p for g, p in zip(gold, pred)) / len(gold),
        "macro_f1": float(f1_score(gold, pred, labels=sorted(set(gold)), average="macro",
                                   zero_division=0)),
        "shipped": at(threshold),
        "curve": {str(t): at(t) for t in THRESHOLDS},
    }


def run_once(data: Path, per_intent: int, holdout: int, seed: int, tmp: Path,
             env: dict) -> Dict[str, dict]:
    """One split, both pipelines trained and their test parses recorded.

    Returns:
        ``{pipeline: {"rows", "parse_ms", "train_s", "n_train", "oos_intents"}}``:
        ``rows`` is ``parse_all``'s output without the per-message time, in
        test-set order; ``score_run`` turns it into metrics.
    """
    split = make_split(read_split(data / "train.csv"), read_split(data / "test.csv"),
                       holdout, per_intent, seed)
    run_dir = tmp / f"run-{seed}"
    run_dir.mkdir()
    nlu = run_dir / "nlu.json"
    write_nlu(split["train"], nlu)
    texts = [t[0] for t in split["test"]]
    result = {}
    for i, (name, spec) in enumerate(pipelines(run_dir).items()):
        print(f"  seed {seed}: training '{name}' on {len(split['train'])} examples ...",
              flush=True)
        seconds = train(spec["config"], nlu, run_dir, f"p{i}", env)
        rows = parse_all(run_dir / f"p{i}.tar.gz", texts)
        rules, shipped_q = read_rules(run_dir / f"p{i}.tar.gz", QUANTILES)
        result[name] = {"rows": [{k: r[k] for k in ("intent", "conf", "second", "final",
                                                    "oos")} for r in rows],
                        "rules": rules, "shipped_q": shipped_q,
                        "parse_ms": statistics.median(r["ms"] for r in rows),
                        "train_s": seconds, "oos_intents": split["oos"],
                        "n_train": len(split["train"])}
    return result


def score_run(raw: Dict[str, dict], test: Sequence[tuple],
              specs: Dict[str, dict]) -> Dict[str, dict]:
    """``run_once``'s parses scored at the thresholds each config ships now.

    Thresholds only decide what ``falls_back`` computes from the recorded
    ranking and similarity, so this is exact for parses made under other
    thresholds too. Returns ``{pipeline: metrics + train_s, parse_ms, threshold,
    n_train, oos_intents}``.
    """
    scored = {}
    for name, spec in specs.items():
        run = raw[name]
        rule = shipped_rule(run["rows"]) if spec["calibrated"] else None
        scored[name] = {**metrics(test, run["rows"], spec["threshold"], spec["ambiguity"],
                                  rule, run.get("rules")),
                        "shipped_q": run.get("shipped_q"),
                        "threshold": spec["threshold"],
                        **{k: run[k] for k in ("parse_ms", "train_s", "n_train",
                                               "oos_intents")}}
    return scored


# Options that only move thresholds: they change no training and no parse, so
# the cache key leaves them out and a change re-scores the cached parses.
SCORING_OPTIONS = {"FallbackClassifier": ("threshold", "ambiguity_threshold")}


def cache_key(pipeline: Sequence[dict]) -> str:
    """Digest of the pipeline's training-relevant options and of components/**/*.py."""
    kept = [{k: v for k, v in c.items() if k not in SCORING_OPTIONS.get(c.get("name"), ())}
            for c in pipeline]
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode())
    for source in sorted((ROOT / "components").rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:10]


def cached_run(cache: Path, seed: int, per_intent: int, holdout: int,
               compute) -> Dict[str, dict]:
    """``compute()``'s result for one split, read from or written to ``cache``.

    The file name holds every argument that changes the split and
    ``cache_key`` of config.yml's pipeline (parsed, so comments do not count),
    so parses made with another pipeline or other code are never reused.
    """
    import yaml

    pipeline = yaml.safe_load((ROOT / "config.yml").read_text()).get("pipeline")
    path = cache / f"seed-{seed}-per{per_intent}-hold{holdout}-{cache_key(pipeline)}.json"
    if path.is_file():
        print(f"  seed {seed}: reusing {path}", flush=True)
        return json.loads(path.read_text())
    result = compute()
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return result


def plot(runs: Sequence[Dict[str, dict]], path: Path) -> None:
    """In-scope accuracy and OOS recall against the threshold, median over runs.

    Left: a max-softmax threshold (the FallbackClassifier rule). Right, when
    the project ships the calibrated rule: its quantile q, with the default
    pipeline's shipped figures as horizontal lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(runs[0])
    gated = [n for n in names if runs[0][n].get("rule_curve")]
    fig, axes = plt.subplots(1, 2 if gated else 1, figsize=(12 if gated else 7, 4.2),
                             squeeze=False)
    ax = axes[0][0]
    keys = (("in_scope_accuracy", "-", "in-scope accuracy"), ("oos_recall", "--", "OOS recall"))
    colors = dict(zip(names, ("tab:gray", "tab:blue")))
    for name in names:
        for key, style, label in keys:
            ys = [statistics.median(r[name]["curve"][str(t)][key] for r in runs)
                  for t in THRESHOLDS]
            ax.plot(THRESHOLDS, [100 * y for y in ys], style, color=colors[name],
                    label=f"{name}: {label}")
        ax.axvline(runs[0][name]["threshold"], color=colors[name], linestyle=":", linewidth=1)
    ax.set_xlabel("max-softmax threshold (dotted: the FallbackClassifier threshold shipped)")
    ax.set_ylabel("%")
    ax.set_title("Banking77, 10 intents held out: accuracy vs out-of-scope recall", fontsize=10)
    for name in gated:
        ax = axes[0][1]
        qs = [q for q in runs[0][name]["rule_curve"] if all(q in r[name]["rule_curve"]
                                                            for r in runs)]
        for key, style, label in keys:
            ys = [statistics.median(r[name]["rule_curve"][q][key] for r in runs) for q in qs]
            ax.plot([float(q) for q in qs], [100 * y for y in ys], style, color=colors[name],
                    label=f"{name}: {label}")
            for other in names:
                if other != name:
                    base = statistics.median(r[other]["shipped"][key] for r in runs)
                    ax.axhline(100 * base, color=colors[other], linestyle=style, linewidth=1,
                               label=f"{other} as shipped: {label}")
        for r in runs:
            ax.axvline(r[name]["shipped_q"], color=colors[name], linestyle=":", linewidth=1)
        ax.set_xlabel("the out-of-scope rule's quantile q (dotted: calibrated per run)")
        ax.set_title(f"{name}: in-scope score below its q-quantile", fontsize=10)
    for row in axes:
        for ax in row:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(result: dict) -> str:
    """The Markdown section (fenced by MARK) for docs/benchmarks.md."""
    runs = result["runs"]
    names = list(runs[0])

    def col(name: str, get) -> str:
        return median_spread([get(r[name]) for r in runs])

    rows = []
    for label, get in (
            ("intent accuracy, %", lambda m: 100 * m["accuracy"]),
            ("macro-F1, %", lambda m: 100 * m["macro_f1"]),
            ("in-scope accuracy at the shipped threshold, %",
             lambda m: 100 * m["shipped"]["in_scope_accuracy"]),
            ("OOS recall at the shipped threshold, %",
             lambda m: 100 * m["shipped"]["oos_recall"]),
            ("training time, s", lambda m: m["train_s"]),
            ("parse latency, ms per message (median)", lambda m: m["parse_ms"])):
        rows.append(f"| {label} | " + " | ".join(col(n, get) for n in names) + " |")
    gains = []
    for label, key in (("in-scope accuracy", "in_scope_accuracy"), ("OOS recall", "oos_recall")):
        diffs = [100 * (r[names[1]]["shipped"][key] - r[names[0]]["shipped"][key]) for r in runs]
        gains.append(f"{label} {statistics.median(diffs):+.1f} points "
                     f"({min(diffs):+.1f} to {max(diffs):+.1f})")
    shipped = " and ".join(
        (f"the calibrated rule, q {', '.join(str(r[n]['shipped_q']) for r in runs)}"
         if runs[0][n].get("rule") else f"FallbackClassifier {runs[0][n]['threshold']}")
        + f" ({n})" for n in names)
    gate_text = ""
    for n in [n for n in names if runs[0][n].get("rule")]:
        alone = [100 * (r[n]["shipped"]["oos_recall"] - r[n]["no_rule"]["oos_recall"])
                 for r in runs]
        cost = [100 * (r[n]["shipped"]["in_scope_accuracy"]
                       - r[n]["no_rule"]["in_scope_accuracy"]) for r in runs]
        gate_text = (
            f"\n\nThe rule's own share ({n}, rule on vs off): OOS recall "
            f"{statistics.median(alone):+.1f} points ({min(alone):+.1f} to {max(alone):+.1f}), "
            f"in-scope accuracy {statistics.median(cost):+.1f} points ({min(cost):+.1f} to "
            f"{max(cost):+.1f}). The rule (components/nlu/sentence_intent_classifier.py) sends "
            f"a turn to `nlu_fallback` when its in-scope score, the mean of the percentile "
            f"ranks of the max-softmax probability and of the cosine to the nearest training "
            f"example of the top intent, is below its q-quantile over held-out folds of the "
            f"training data; `rasa train` chooses q on those folds.")
    return f"""{MARK}
## NLU on Banking77 (issues 5 and 15)

Command: `{result["command"]}` ({result["date"]}; {result["machine"]}).
Data: Banking77 (Casanueva et al. 2020, arXiv 2003.04807, CC BY 4.0), read from
`../shared/datasets/banking77/`. Runs: {result["runs_n"]} (seeds {result["seeds"]}); each
holds out {result["holdout"]} of the 77 intents as out of scope (a different draw per run)
and trains on {result["per_intent_text"]} of the other {77 - result["holdout"]}
({runs[0][names[0]]["n_train"]} examples in the first run); the test split is the full
Banking77 test set (3,080 messages). Figures are the median over runs (min-max).

| figure | {" | ".join(names)} |
|---|{"---|" * len(names)}
{chr(10).join(rows)}

Difference at the shipped thresholds ({shipped}), project minus default, median
(min to max) over runs: {"; ".join(gains)}.{gate_text}

In-scope accuracy counts a message as right only when the intent is right and the turn
does not fall back; OOS recall is the share of messages of the held-out intents that end
in `nlu_fallback`. Intent accuracy and macro-F1 ignore the thresholds. Training time is
`rasa train nlu` with an empty cache; parse latency is one message at a time through
`Agent.parse_message`.

![In-scope accuracy and OOS recall against the fallback threshold](images/nlu_threshold.png)
{MARK}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with Banking77's train.csv and test.csv")
    parser.add_argument("--per-intent", type=int, default=10,
                        help="training examples per in-scope intent (0: all)")
    parser.add_argument("--holdout", type=int, default=10, help="intents held out as OOS")
    parser.add_argument("--runs", type=int, default=3, help="splits (seeds 42, 43, ...)")
    parser.add_argument("--seed", type=int, default=42, help="the first split's seed")
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--cache", type=Path,
                        help="folder keeping each finished split's result, reused on a rerun")
    args = parser.parse_args()
    if not (args.data / "train.csv").is_file() or not (args.data / "test.csv").is_file():
        print(f"Skipped: Banking77 not found at {args.data} (needs train.csv and test.csv; "
              f"pass --data).")
        return
    if args.runs < 1:
        parser.error("--runs has to be >= 1")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    tmp = Path(tempfile.mkdtemp(prefix="nlu-bench-"))
    seeds = [args.seed + i for i in range(args.runs)]

    train_rows, test_rows = read_split(args.data / "train.csv"), read_split(args.data / "test.csv")
    specs = pipelines(tmp)

    def one(seed: int) -> Dict[str, dict]:
        def compute() -> Dict[str, dict]:
            return run_once(args.data, args.per_intent, args.holdout, seed, tmp, env)
        raw = (compute() if args.cache is None
               else cached_run(args.cache, seed, args.per_intent, args.holdout, compute))
        test = make_split(train_rows, test_rows, args.holdout, args.per_intent, seed)["test"]
        scored = score_run(raw, test, specs)
        for name, m in scored.items():
            print(f"  seed {seed}, {name}: accuracy {m['accuracy']:.3f}; at the shipped "
                  f"thresholds in-scope accuracy {m['shipped']['in_scope_accuracy']:.3f}, "
                  f"OOS recall {m['shipped']['oos_recall']:.3f}", flush=True)
        return scored

    runs = [one(seed) for seed in seeds]
    result = {
        "date": datetime.now().strftime("%Y-%m-%d"), "machine": machine(), "runs": runs,
        "runs_n": args.runs, "seeds": ", ".join(map(str, seeds)), "holdout": args.holdout,
        "per_intent_text": ("all examples" if args.per_intent <= 0
                            else f"{args.per_intent} examples of each"),
        "command": " ".join(["python bench/nlu_banking77.py"] + sys.argv[1:]),
    }
    (tmp / "result.json").write_text(json.dumps(result, indent=1))
    plot(runs, args.plot)
    section = report(result)
    publish(section, MARK, args.report, args.plot)


if __name__ == "__main__":
    main()
