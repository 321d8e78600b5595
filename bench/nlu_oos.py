"""Out-of-scope detection methods side by side, on frozen MiniLM embeddings of Banking77.

    python bench/nlu_oos.py [--data ../shared/datasets/banking77] [--per-intent 10]
                            [--holdout 10] [--runs 3] [--report docs/benchmarks.md]

The intent classifier (components/nlu/sentence_intent_classifier.py) is a
logistic regression on the all-MiniLM-L6-v2 sentence embedding; what decides
"out of scope" is a score and a threshold. This compares four scores from the
literature, each thresholded the same way, and the rule the component ships:

- max-softmax probability (Hendrycks & Gimpel 2017, arXiv 1610.02136);
- cosine to the nearest training example of the top intent (Sun et al. 2022,
  arXiv 2204.06507, k = 1);
- energy, logsumexp of the logits (Liu et al. 2020, arXiv 2010.03759);
- Mahalanobis distance to the nearest intent mean, shared covariance with
  Ledoit-Wolf shrinkage (Lee et al. 2018, arXiv 1807.03888; Podolskiy et al.
  2021 for intents);
- shipped: the mean of the max-softmax and nearest-example percentile ranks
  (``sentence_intent_classifier.in_scope_score``) below its q-quantile, q chosen
  as ``sentence_intent_classifier.calibrate`` does, on the training data alone;
- either: max-softmax OR nearest-example below their q-quantile (the rule
  shipped until 2026-12-04), q chosen the same way.

The classifier reads what config.yml gives it: the embedding and, when its
``featurizers`` name a CountVectorsFeaturizer, that featurizer's n-grams (counted
here by scikit-learn's CountVectorizer with the same analyzer and n-gram range,
on the raw text rather than Rasa's tokens).

Each score's threshold is its q-quantile over 5-fold out-of-fold scores of the
correctly classified training examples (q = 0 .. 0.5), so every method spends the
same share of in-scope turns. Splits are bench/nlu_banking77.py's (seeds 42, 43,
...: ``--holdout`` intents out of scope, ``--per-intent`` examples of the rest).
No Rasa training: the embeddings are computed once per run (about a minute for
Banking77's 13,083 messages on 2 cores). Writes the ``<!-- nlu-oos -->`` section
of ``--report`` and docs/images/nlu_oos.png.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.nlu_banking77 import DEFAULT_DATA, make_split, read_split  # noqa: E402
from bench.report import machine, median_spread, publish  # noqa: E402

MARK = "<!-- nlu-oos -->"
PLOT = ROOT / "docs" / "images" / "nlu_oos.png"
QS = tuple(round(0.05 * i, 2) for i in range(11))  # 0 .. 0.5
QS_FINE = tuple(round(0.01 * i, 2) for i in range(51))  # the calibration's own steps
METHODS = ("max-softmax", "nearest example", "energy", "Mahalanobis")


def ngram_counter(config_path: Path = ROOT / "config.yml"):
    """A CountVectorizer set as config.yml's n-gram featurizer the classifier reads, or None."""
    import yaml
    from sklearn.feature_extraction.text import CountVectorizer

    pipeline = yaml.safe_load(config_path.read_text())["pipeline"]
    reads = next(c for c in pipeline if c["name"].endswith("SentenceIntentClassifier"))
    for c in pipeline:
        if c["name"] == "CountVectorsFeaturizer" and c.get("alias") in reads["featurizers"]:
            return CountVectorizer(analyzer=c.get("analyzer", "word"),
                                   ngram_range=(c.get("min_ngram", 1), c.get("max_ngram", 1)))
    return None


def method_scores(coef, intercept, classes, vectors, labels, queries,
                  inputs=None) -> Dict[str, np.ndarray]:
    """Each method's score per query, higher = more in scope; and ``top`` (B,) intents.

    Args:
        coef (K, F), intercept (K,), classes (K,): the logistic regression.
        vectors (N, D) and labels (N,): the training examples it was fitted on.
        queries (B, D): unit embeddings to score.
        inputs (B, F): the queries' classifier features when F > D (n-grams), else None.
    """
    from scipy.special import logsumexp
    from sklearn.covariance import LedoitWolf

    from components.nlu.sentence_intent_classifier import scores

    logits = np.asarray((queries if inputs is None else inputs) @ coef.T) + intercept  # (B, K)
    _, top, confidence, similarity = scores(coef, intercept, classes, vectors, labels, queries,
                                            inputs)
    means = np.stack([vectors[labels == c].mean(axis=0) for c in classes])  # (K, D)
    centred = vectors - means[np.searchsorted(classes, labels)]
    precision = LedoitWolf().fit(centred).precision_  # (D, D)
    diffs = queries[:, None, :] - means[None, :, :]  # (B, K, D)
    distance = np.einsum("bkd,de,bke->bk", diffs, precision, diffs).min(axis=1)
    return {"top": top, "max-softmax": confidence, "nearest example": similarity,
            "energy": logsumexp(logits, axis=1), "Mahalanobis": -distance}


def out_of_fold(vectors: np.ndarray, labels: np.ndarray, seed: int,
                counts=None) -> Dict[str, np.ndarray]:
    """Each method's scores of the training examples a 5-fold model got right.

    ``counts``: scipy sparse (N, V) n-gram counts of the examples, or None.
    """
    from sklearn.model_selection import StratifiedKFold

    from components.nlu.sentence_intent_classifier import features, fit, idf_of, weights

    kept: Dict[str, List[np.ndarray]] = {m: [] for m in METHODS}
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    for train, test in folds.split(vectors, labels):
        inputs = features(vectors, counts, None if counts is None else idf_of(counts[train]))
        model = fit(inputs[train], labels[train], 100.0)
        s = method_scores(*weights(model), model.classes_, vectors[train], labels[train],
                          vectors[test], None if counts is None else inputs[test])
        right = s["top"] == labels[test]
        for m in METHODS:
            kept[m].append(s[m][right])
    return {m: np.concatenate(v) for m, v in kept.items()}


def one_run(train_rows, test_rows, per_intent: int, holdout: int, seed: int, encode) -> dict:
    """``{method: {q: (in-scope accuracy, OOS recall)}, "shipped": (...), "q": q}``."""
    from components.nlu import sentence_intent_classifier as sic
    from components.nlu.sentence_intent_classifier import features, fit, idf_of, weights

    split = make_split(train_rows, test_rows, holdout, per_intent, seed)
    x = encode([t for t, _ in split["train"]])
    y = np.asarray([i for _, i in split["train"]])
    xq = encode([t for t, _, _ in split["test"]])
    gold = np.asarray([i for _, i, _ in split["test"]])
    inside = np.asarray([s for _, _, s in split["test"]])
    counter, counts, idf, inputs = ngram_counter(), None, None, None
    if counter is not None:
        counts = counter.fit_transform([t for t, _ in split["train"]])
        idf = idf_of(counts)
        inputs = features(xq, counter.transform([t for t, _, _ in split["test"]]), idf)
    model = fit(features(x, counts, idf), y, 100.0)
    s = method_scores(*weights(model), model.classes_, x, y, xq, inputs)
    right = s["top"] == gold
    held = out_of_fold(x, y, seed, counts)

    def measure(fell: np.ndarray) -> tuple:
        return float((right & ~fell)[inside].mean()), float(fell[~inside].mean())

    result: dict = {}
    for m in METHODS:
        result[m] = {str(q): measure(s[m] < (np.quantile(held[m], q, method="lower") if q
                                             else -np.inf)) for q in QS}
    calibration, source = sic.held_out_scores(x, y, seed=seed, counts=counts)
    rule = sic.choose([r for r in (sic.rule_at(calibration, q, source) for q in sic.QUANTILES)
                       if r], source)
    score = sic.in_scope_score(s["max-softmax"], s["nearest example"],
                               *sic.references(calibration))
    result["shipped"] = measure(score < rule.threshold)
    result["q"] = rule.quantile
    result["either"], result["either_q"] = either_rule(calibration, s, measure)
    result["accuracy"] = float(right[inside].mean())
    return result


def either_rule(held: Dict[str, np.ndarray], s: Dict[str, np.ndarray], measure) -> tuple:
    """The rule shipped until 2026-12-04, for comparison: ``(measure(fell), q)``.

    It fell back when the max-softmax OR the nearest-example cosine was below its
    own q-quantile over the right held-out in-scope examples, q chosen as
    ``sentence_intent_classifier.choose`` does.
    """
    kept_right = ~held["is_oos"] & held["right"]
    inside, outside = ~held["is_oos"], held["is_oos"]
    best = None
    for q in QS_FINE:
        conf_t = np.quantile(held["confidence"][kept_right], q, method="lower") if q else 0.0
        sim_t = np.quantile(held["similarity"][kept_right], q, method="lower") if q else -1.0
        fell = (held["confidence"] < conf_t) | (held["similarity"] < sim_t)
        total = ((kept_right & ~fell).sum() / inside.sum()
                 + (fell | held["top_open"])[outside].mean())
        if best is None or total >= best[0]:
            best = (total, q, conf_t, sim_t)
    _, q, conf_t, sim_t = best
    return measure((s["max-softmax"] < conf_t) | (s["nearest example"] < sim_t)), q


def plot(runs: Sequence[dict], path: Path) -> None:
    """In-scope accuracy against OOS recall per method over q, the shipped rule as stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.6))
    for m in METHODS:
        xs = [100 * statistics.median(r[m][str(q)][1] for r in runs) for q in QS]
        ys = [100 * statistics.median(r[m][str(q)][0] for r in runs) for q in QS]
        ax.plot(xs, ys, marker=".", label=m)
    ax.scatter([100 * r["either"][1] for r in runs], [100 * r["either"][0] for r in runs],
               marker="x", s=60, color="grey", zorder=3,
               label="until 2026-12-04: max-softmax or nearest example, calibrated q")
    ax.scatter([100 * r["shipped"][1] for r in runs], [100 * r["shipped"][0] for r in runs],
               marker="*", s=140, color="black", zorder=3,
               label="shipped: mean of the two ranks, calibrated q (each run)")
    ax.set_xlabel("out-of-scope recall, % (held-out intents)")
    ax.set_ylabel("in-scope accuracy, % (right and kept)")
    ax.set_title("Banking77: out-of-scope scores over their q-quantile threshold (0..0.5)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(result: dict) -> str:
    """The Markdown section (fenced by MARK)."""
    runs = result["runs"]
    rows = []
    for m in METHODS:
        for q in ("0.1", "0.15", "0.2", "0.25"):
            rows.append(f"| {m} | {q} | "
                        f"{median_spread([100 * r[m][q][0] for r in runs])} | "
                        f"{median_spread([100 * r[m][q][1] for r in runs])} |")
    def total(m: str, q: str) -> float:
        return statistics.median(r[m][q][0] + r[m][q][1] for r in runs)

    m, q = max(((m, str(q)) for m in METHODS for q in QS), key=lambda mq: total(*mq))
    best = f"{m} at q {q} ({100 * total(m, q):.1f})"
    shipped = (f"| either score below its q-quantile (shipped until 2026-12-04; calibrated q "
               f"{', '.join(str(r['either_q']) for r in runs)}) | | "
               f"{median_spread([100 * r['either'][0] for r in runs])} | "
               f"{median_spread([100 * r['either'][1] for r in runs])} |\n"
               f"| **shipped**: mean of the two percentile ranks (calibrated q "
               f"{', '.join(str(r['q']) for r in runs)}) | | "
               f"{median_spread([100 * r['shipped'][0] for r in runs])} | "
               f"{median_spread([100 * r['shipped'][1] for r in runs])} |")
    return f"""{MARK}
## Out-of-scope detection methods compared (issue 15)

Command: `{result["command"]}` ({result["date"]}; {result["machine"]}).
Banking77 splits of bench/nlu_banking77.py ({result["runs_n"]} runs, {result["holdout"]}
intents held out as out of scope, {result["per_intent_text"]} of the rest); the same
logistic regression as config.yml's, on MiniLM embeddings and character n-grams
(intent accuracy {median_spread([100 * r["accuracy"] for r in runs])}%), four scores, each thresholded at its
q-quantile over out-of-fold scores of right training examples. Median (min-max).

| score | q | in-scope accuracy, % | OOS recall, % |
|---|---|---|---|
{chr(10).join(rows)}
{shipped}

Best single score (largest median in-scope accuracy + OOS recall over q): {best}.
The shipped rule fuses max-softmax and nearest example (the mean of their percentile
ranks among right held-out examples) and chooses its q on the training data only.

![In-scope accuracy against OOS recall per method](images/nlu_oos.png)
{MARK}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-intent", type=int, default=10)
    parser.add_argument("--holdout", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args()
    if not (args.data / "train.csv").is_file():
        print(f"Skipped: Banking77 not found at {args.data} (pass --data).")
        return
    from components.nlu import minilm

    model = minilm.load()
    cache: Dict[str, np.ndarray] = {}

    def encode(texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            for t, v in zip(missing, model.encode(missing, batch_size=128,
                                                  normalize_embeddings=True)):
                cache[t] = v
        return np.stack([cache[t] for t in texts]).astype(np.float32)

    train_rows, test_rows = read_split(args.data / "train.csv"), read_split(args.data / "test.csv")
    runs = []
    for seed in range(42, 42 + args.runs):
        runs.append(one_run(train_rows, test_rows, args.per_intent, args.holdout, seed, encode))
        print(f"  seed {seed}: shipped in-scope {runs[-1]['shipped'][0]:.3f}, "
              f"OOS recall {runs[-1]['shipped'][1]:.3f} (q {runs[-1]['q']})", flush=True)
    result = {"runs": runs, "runs_n": args.runs, "holdout": args.holdout,
              "per_intent_text": ("all examples" if args.per_intent <= 0
                                  else f"{args.per_intent} examples of each"),
              "date": datetime.now().strftime("%Y-%m-%d"), "machine": machine(),
              "command": " ".join(["python bench/nlu_oos.py"] + sys.argv[1:])}
    plot(runs, args.plot)
    section = report(result)
    publish(section, MARK, args.report, args.plot)


if __name__ == "__main__":
    main()
