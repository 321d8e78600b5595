"""NLU on Banking77: intent accuracy, macro-F1 and out-of-scope recall, two pipelines side by side.

    python bench/nlu_banking77.py [--data ../shared/datasets/banking77] [--per-intent 10]
                                  [--holdout 10] [--runs 3] [--report docs/benchmarks.md]
                                  [--cache DIR]

Data: Banking77 (Casanueva et al. 2020, "Efficient Intent Detection with Dual
Sentence Encoders", arXiv 2003.04807; PolyAI-LDN/task-specific-datasets,
CC BY 4.0), read in place; the harness exits 0 with a message when the folder
is absent.

Each run (seed 42, 43, ...):

1. draws ``--holdout`` of the 77 intents as out of scope: none of their
   examples is trained on, and their test messages should end in
   ``nlu_fallback``;
2. samples ``--per-intent`` training examples of each remaining intent (the
   paper's few-shot setting; 0 takes all) and keeps the full test split;
3. trains, with ``rasa train nlu`` and an empty cache, the pipeline that
   ``rasa init`` ships (Rasa's default config: no pipeline given, so Rasa
   fills in its default one, FallbackClassifier threshold 0.3) and the
   project's pipeline (config.yml, policies left out);
4. parses every test message and records the intent ranking.

Metrics, per pipeline:

- accuracy and macro-F1 of the top intent on in-scope test messages (no
  fallback), sklearn's ``f1_score(average="macro")``;
- at a fallback threshold t: a turn falls back when the top confidence is below
  t or within the FallbackClassifier's ``ambiguity_threshold`` of the second
  (Rasa's rule); in-scope accuracy = correct and not fallen back, over in-scope
  messages; OOS recall = fallen back, over out-of-scope messages. Reported at the
  threshold each config ships and plotted over t in 0..0.95;
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
from typing import Dict, List, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import machine, median_spread, write_section  # noqa: E402

RASA = str(Path(sys.executable).parent / "rasa")
MARK = "<!-- nlu-banking77 -->"
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "banking77"
PLOT = ROOT / "docs" / "images" / "nlu_threshold.png"
THRESHOLDS = [round(0.05 * i, 2) for i in range(20)]  # 0.0 .. 0.95
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
    """The two configs: their file and the FallbackClassifier settings they ship."""
    import yaml  # noqa: PLC0415

    # What `rasa init` writes: no pipeline, so Rasa fills in its default one,
    # whose FallbackClassifier has threshold 0.3, ambiguity_threshold 0.1
    # (rasa/engine/recipes/config_files/default_config.yml).
    default = tmp / "default.yml"
    default.write_text("recipe: default.v1\nlanguage: en\nassistant_id: bench\npipeline:\n")
    project_cfg = yaml.safe_load((ROOT / "config.yml").read_text())
    fallback = next(c for c in project_cfg["pipeline"] if c["name"] == "FallbackClassifier")
    project = tmp / "project.yml"
    project.write_text(yaml.safe_dump({k: project_cfg[k] for k in
                                       ("recipe", "language", "assistant_id", "pipeline")}))
    return {
        "rasa init default": {"config": default, "threshold": 0.3, "ambiguity": 0.1},
        "project (config.yml)": {"config": project,
                                 "threshold": float(fallback.get("threshold", 0.3)),
                                 "ambiguity": float(fallback.get("ambiguity_threshold", 0.1))},
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
    """Each text's ranking without nlu_fallback: ``{"intent", "conf", "second", "ms"}``."""
    import logging  # noqa: PLC0415

    from rasa.core.agent import Agent  # noqa: PLC0415 - imports TensorFlow
    from rasa.utils.log_utils import configure_structlog  # noqa: PLC0415

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
                         "second": float(second), "ms": ms})
        return rows

    return asyncio.run(run())


def falls_back(row: dict, threshold: float, ambiguity: float) -> bool:
    """Rasa's FallbackClassifier rule: low confidence, or too close to the runner-up."""
    return row["conf"] < threshold or (row["conf"] - row["second"]) < ambiguity


def metrics(test: Sequence[tuple], rows: Sequence[dict], threshold: float,
            ambiguity: float) -> Dict[str, object]:
    """Accuracy, macro-F1 (no fallback), and in-scope accuracy / OOS recall per threshold.

    Args:
        test: ``(text, intent, in_scope)`` per message.
        rows: ``parse_all`` output, same order.

    Raises:
        ValueError: if ``test`` has no in-scope or no out-of-scope message.
    """
    from sklearn.metrics import f1_score  # noqa: PLC0415

    inside = [(t, r) for t, r in zip(test, rows) if t[2]]
    outside = [r for t, r in zip(test, rows) if not t[2]]
    if not inside or not outside:
        raise ValueError("the test set needs in-scope and out-of-scope messages")
    gold = [t[1] for t, _ in inside]
    pred = [r["intent"] or "" for _, r in inside]

    def at(t: float) -> Dict[str, float]:
        ok = sum(g == r["intent"] and not falls_back(r, t, ambiguity)
                 for g, (_, r) in zip(gold, inside))
        return {"in_scope_accuracy": ok / len(inside),
                "oos_recall": sum(falls_back(r, t, ambiguity) for r in outside) / len(outside)}

    return {
        "accuracy": sum(g == p for g, p in zip(gold, pred)) / len(gold),
        "macro_f1": float(f1_score(gold, pred, labels=sorted(set(gold)), average="macro",
                                   zero_division=0)),
        "shipped": at(threshold),
        "curve": {str(t): at(t) for t in THRESHOLDS},
        "parse_ms": statistics.median(r["ms"] for r in rows),
    }


def run_once(data: Path, per_intent: int, holdout: int, seed: int, tmp: Path,
             env: dict) -> Dict[str, dict]:
    """One split, both pipelines trained and evaluated: ``{pipeline: metrics + train_s}``."""
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
        result[name] = {**metrics(split["test"], rows, spec["threshold"], spec["ambiguity"]),
                        "train_s": seconds, "threshold": spec["threshold"],
                        "oos_intents": split["oos"], "n_train": len(split["train"])}
        print(f"    accuracy {result[name]['accuracy']:.3f}, OOS recall at "
              f"{spec['threshold']}: {result[name]['shipped']['oos_recall']:.3f}", flush=True)
    return result


def cached_run(cache: Path, seed: int, per_intent: int, holdout: int,
               compute) -> Dict[str, dict]:
    """``compute()``'s result for one split, read from or written to ``cache``.

    The file name holds every argument that changes the split and a digest of
    config.yml's pipeline (parsed, so comments do not count) and of
    components/**/*.py, so a cache made with other settings or another
    pipeline is never reused.
    """
    import yaml  # noqa: PLC0415

    pipeline = yaml.safe_load((ROOT / "config.yml").read_text()).get("pipeline")
    digest = hashlib.sha256(json.dumps(pipeline, sort_keys=True).encode())
    for source in sorted((ROOT / "components").rglob("*.py")):
        digest.update(source.read_bytes())
    path = cache / f"seed-{seed}-per{per_intent}-hold{holdout}-{digest.hexdigest()[:10]}.json"
    if path.is_file():
        print(f"  seed {seed}: reusing {path}", flush=True)
        return json.loads(path.read_text())
    result = compute()
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return result


def plot(runs: Sequence[Dict[str, dict]], path: Path) -> None:
    """In-scope accuracy and OOS recall against the threshold, median over runs."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, color in zip(runs[0], ("tab:gray", "tab:blue")):
        for key, style, label in (("in_scope_accuracy", "-", "in-scope accuracy"),
                                  ("oos_recall", "--", "OOS recall")):
            ys = [statistics.median(r[name]["curve"][str(t)][key] for r in runs)
                  for t in THRESHOLDS]
            ax.plot(THRESHOLDS, [100 * y for y in ys], style, color=color,
                    label=f"{name}: {label}")
        ax.axvline(runs[0][name]["threshold"], color=color, linestyle=":", linewidth=1)
    ax.set_xlabel("FallbackClassifier threshold (dotted: the threshold each config ships)")
    ax.set_ylabel("%")
    ax.set_title("Banking77, 10 intents held out: accuracy vs out-of-scope recall")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
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
    shipped = " and ".join(f"{runs[0][n]['threshold']} ({n})" for n in names)
    return f"""{MARK}
## NLU on Banking77 (issue 5, part 1)

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
(min to max) over runs: {"; ".join(gains)}.

In-scope accuracy counts a message as right only when the intent is right and the turn
does not fall back; OOS recall is the share of messages of the held-out intents that end
in `nlu_fallback`. Intent accuracy and macro-F1 ignore the threshold. Training time is
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
    seeds = [42 + i for i in range(args.runs)]

    def one(seed: int) -> Dict[str, dict]:
        def compute() -> Dict[str, dict]:
            return run_once(args.data, args.per_intent, args.holdout, seed, tmp, env)
        if args.cache is None:
            return compute()
        return cached_run(args.cache, seed, args.per_intent, args.holdout, compute)

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
    print(section)
    if args.report:
        write_section(args.report, MARK, section)
        print(f"wrote {args.report} and {args.plot}")


if __name__ == "__main__":
    main()
