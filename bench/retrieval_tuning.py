"""Tuning the retrieval encoder on the known questions: which settings, measured on questions held apart.

    python bench/retrieval_tuning.py [--epochs 3] [--rates 5e-4 1e-3] [--report docs/benchmarks.md]

components/generator/tuning.py trains a LoRA adapter on all-MiniLM-L6-v2 so that
each known question of data/grounded/ embeds close to its section's passage.
Its settings are chosen here, not on bench/data/answers_heldout.yml (that set
only confirms the choice, in bench/answers.py): a fifth of the known questions
(seeded) is held apart, the adapter is trained on the rest, and after each epoch
the help center is indexed with the tuned encoder and the remaining known
questions only, exactly as ``rasa train`` indexes it. Reported per learning rate
and epoch, beside the untuned encoder in the same run:

- article hit@1 and hit@3 of the hybrid retrieval (``Retriever.search``);
- article hit@1 of the dense ranker alone (the one the tuning changes);
- hybrid hit@1 by the dense ranker's weight in the fusion (``DENSE_WEIGHTS``;
  ``retrieval.RANKER_WEIGHTS`` ships the choice);
- the training time.

Writes the ``<!-- retrieval-tuning -->`` section of ``--report`` and
docs/images/retrieval_tuning.png.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import machine, publish  # noqa: E402

MARK = "<!-- retrieval-tuning -->"
PLOT = ROOT / "docs" / "images" / "retrieval_tuning.png"
HELD_APART = 0.2  # share of the known questions held apart
DENSE_WEIGHTS = (1.0, 2.0, 3.0, 4.0, 6.0)  # the dense ranker's vote in the fusion, swept


def split(questions: Sequence, seed: int = 0):
    """(kept, held apart): a seeded ``HELD_APART`` share of ``questions`` held apart."""
    order = list(questions)
    random.Random(seed).shuffle(order)
    cut = int(len(order) * HELD_APART)
    return order[cut:], order[:cut]


def hit_rates(index, held: Sequence) -> Dict[str, object]:
    """Article hit@1 / hit@3 (hybrid, shipped weights), dense hit@1, and hybrid hit@1
    for each dense weight of ``DENSE_WEIGHTS``, of ``index`` on ``held`` questions."""
    from components.generator.retrieval import RANKER_WEIGHTS

    hybrid = [[h.passage.slug for h in index.search(q.question, 3)] for q in held]
    dense = [index.search(q.question, 1, mode="dense")[0].passage.slug for q in held]
    by_weight = {}
    for weight in DENSE_WEIGHTS:
        weights = (weight, *RANKER_WEIGHTS[1:])
        by_weight[weight] = float(np.mean([index.search(q.question, 1, weights=weights)[0]
                                           .passage.slug == q.slug for q in held]))
    return {"hit@1": float(np.mean([h[0] == q.slug for h, q in zip(hybrid, held)])),
            "hit@3": float(np.mean([q.slug in h for h, q in zip(hybrid, held)])),
            "dense@1": float(np.mean([d == q.slug for d, q in zip(dense, held)])),
            "by_weight": by_weight}


def run(epochs: int, rates: Sequence[float], rank: int, seed: int = 0) -> List[dict]:
    """The untuned row, then one row per (learning rate, epoch)."""
    from components.generator import tuning
    from components.generator.knowledge import load_known_questions, load_passages
    from components.generator.retrieval import CachedEncoder, Retriever, minilm_encoder

    passages = load_passages(ROOT / "data" / "knowledge")
    kept, held = split(load_known_questions(ROOT / "data" / "grounded"), seed)
    rows = [{"rate": None, "epoch": 0, "seconds": 0.0,
             **hit_rates(Retriever.build(passages, minilm_encoder(), kept), held)}]
    pairs = tuning.training_pairs(passages, kept)
    for rate in rates:
        start, spent = time.perf_counter(), [0.0]

        def measure(epoch: int, model, rate=rate, start=start, spent=spent) -> None:
            seconds = time.perf_counter() - start - spent[0]  # training only
            began = time.perf_counter()
            index = Retriever.build(passages, CachedEncoder(tuning.TunedEncoder(model)), kept)
            rows.append({"rate": rate, "epoch": epoch, "seconds": seconds,
                         **hit_rates(index, held)})
            spent[0] += time.perf_counter() - began
            print({k: v for k, v in rows[-1].items() if k != "by_weight"}, flush=True)

        tuning.tune(pairs, tuning.TuningConfig(epochs=epochs, learning_rate=rate, rank=rank,
                                               seed=seed), on_epoch=measure)
    return rows


def plot(rows: List[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    base = rows[0]
    for rate, marker in zip(sorted({r["rate"] for r in rows if r["rate"]}), "os^v"):
        mine = [base] + [r for r in rows if r["rate"] == rate]
        ax.plot([r["epoch"] for r in mine], [r["hit@1"] for r in mine], marker=marker,
                label=f"hybrid hit@1, lr {rate:g}")
        ax.plot([r["epoch"] for r in mine], [r["dense@1"] for r in mine], marker=marker,
                linestyle="--", label=f"dense hit@1, lr {rate:g}")
    ax.set_xlabel("epochs of tuning (0: all-MiniLM-L6-v2 as shipped)")
    ax.set_ylabel("article hit@1 (held-apart questions)")
    ax.set_ylim(0.4, 1.0)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Retrieval encoder tuned on the known questions (LoRA)")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=120)


def report(rows: List[dict], held: int, rank: int) -> str:
    lines = [MARK, "## Retrieval encoder tuned on the known questions (issue 14)", "",
             f"`make bench-retrieval` ({datetime.now():%Y-%m-%d}, {machine()}). The LoRA adapter "
             f"(rank {rank}) of components/generator/tuning.py, trained on four fifths of the "
             f"known questions of data/grounded/; article hit@k on the other {held}, indexed "
             f"with the tuned encoder and the kept questions only. Epoch 0 is the encoder as "
             f"shipped. ![tuning](images/retrieval_tuning.png)", "",
             "| learning rate | epochs | training s | hybrid hit@1 | hybrid hit@3 | dense hit@1 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        rate = "untuned" if r["rate"] is None else f"{r['rate']:g}"
        lines.append(f"| {rate} | {r['epoch']} | {r['seconds']:.0f} | {r['hit@1']:.1%} | "
                     f"{r['hit@3']:.1%} | {r['dense@1']:.1%} |")
    from components.generator.retrieval import RANKER_WEIGHTS

    lines += ["", f"Hybrid hit@1 by the dense ranker's weight in the fusion (BM25 and the "
                  f"known questions {RANKER_WEIGHTS[1]:g} and {RANKER_WEIGHTS[2]:g}; shipped "
                  f"{RANKER_WEIGHTS[0]:g}, `retrieval.RANKER_WEIGHTS`). Held apart, a "
                  f"question's own section has lost its known question, so the known-question "
                  f"ranker can only point elsewhere here: this split understates it.", "",
              "| learning rate | epochs | " + " | ".join(f"dense x{w:g}" for w in DENSE_WEIGHTS)
              + " |", "|---|---|" + "---|" * len(DENSE_WEIGHTS)]
    for r in rows:
        rate = "untuned" if r["rate"] is None else f"{r['rate']:g}"
        lines.append(f"| {rate} | {r['epoch']} | "
                     + " | ".join(f"{r['by_weight'][w]:.1%}" for w in DENSE_WEIGHTS) + " |")
    shipped = shipped_tuning()
    lines += ["", f"Shipped (config.yml's `retrieval_tuning` over `TuningConfig`'s defaults): "
                  f"learning rate {shipped.learning_rate:g}, {shipped.epochs} epochs, rank "
                  f"{shipped.rank}. bench/answers.py measures its effect on the held-out "
                  f"questions (\"Answers from the help center\").", "", MARK]
    return "\n".join(lines) + "\n"


def shipped_tuning():
    """config.yml's GPT policy ``retrieval_tuning`` as a ``TuningConfig``."""
    import yaml

    from components.generator.tuning import TuningConfig

    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    policy = next(p for p in config["policies"] if p["name"].endswith("GPTPolicy"))
    return TuningConfig.from_dict(policy.get("retrieval_tuning"))


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rates", type=float, nargs="+", default=[5e-4, 1e-3])
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--report", help="markdown file whose section to rewrite")
    args = parser.parse_args(argv)
    from components.generator.knowledge import load_known_questions

    rows = run(args.epochs, args.rates, args.rank)
    held = len(split(load_known_questions(ROOT / "data" / "grounded"))[1])
    plot(rows)
    publish(report(rows, held, args.rank), MARK, Path(args.report) if args.report else None,
            PLOT)


if __name__ == "__main__":
    main()
