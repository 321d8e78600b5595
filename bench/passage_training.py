"""Can the built-in GPT learn to answer from passages within the training budget?

    python bench/passage_training.py [--steps 800] [--report docs/benchmarks.md]

Issue 14 asks the built-in model to answer from retrieved passages ("train with the
right passage among distractors so that the model learns to pick and copy"), with
the model size and training length chosen by measurement within about 10 minutes of
training on 2 cores. This measures the shipped shape (TrainConfig's defaults: 4
layers, 192 wide, about 2.6M parameters) trained from scratch on:

- the 698 passage-grounded questions of data/grounded/ (90% train, 10% held apart),
  each twice: its passage alone, and its passage with another passage of the same
  article as a distractor, both in the system message of the chat template;
- the open-ended dialogue corpus (data/generator/), as the shipped model is.

It reports the training time, the held-apart perplexity, and for 40 held-apart
questions, greedy replies given their passage: how many pass the groundedness check
and how many state every number of the written answer. The tokenizer is trained on
the corpus, the passages and the answers, so passage words are not split apart.
Nothing here is shipped: it is the measurement behind "the built-in model does not
write answers" in the README.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import machine, write_section  # noqa: E402

MARK = "<!-- passage-training -->"
SYSTEM = "Answer from the passage.\n"
MAX_LEN = 384  # tokens per training example (passage + question + answer)


def grounded_pairs(passages) -> List[Tuple[str, str, object]]:
    """(question, answer, passage) for every pair of data/grounded/ whose section exists."""
    import yaml

    by_key = {(p.slug, p.heading): p for p in passages}
    pairs = []
    for f in sorted((ROOT / "data" / "grounded").glob("*.yml")):
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        for article in doc.get("articles") or []:
            for pair in article["pairs"]:
                passage = by_key.get((article["slug"], pair.get("section", "")))
                if passage is not None:
                    pairs.append((pair["question"], pair["answer"], passage))
    return pairs


def run(steps: int, seed: int = 0) -> dict:
    """Trains for ``steps`` optimiser steps and scores 40 held-apart questions."""
    import torch

    from components.generator import corpus as corpus_lib
    from components.generator import grounding, knowledge
    from components.generator import train as train_lib
    from components.generator.config import TrainConfig
    from components.generator.prompt import Turn, build_prompt
    from components.generator.tokenizer import train_tokenizer

    random.seed(seed)
    torch.manual_seed(seed)
    passages = knowledge.load_passages(ROOT / "data" / "knowledge")
    siblings = {}
    for p in passages:
        siblings.setdefault(p.slug, []).append(p)
    pairs = grounded_pairs(passages)
    random.shuffle(pairs)
    held, train_pairs = pairs[: len(pairs) // 10], pairs[len(pairs) // 10:]
    dialogues = corpus_lib.load_dialogues(ROOT / "data" / "generator")
    tok = train_tokenizer(corpus_lib.all_texts(dialogues) + [p.text for p in passages]
                          + [a for _, a, _ in pairs], 4000)

    def prompt(question: str, shown: Sequence) -> str:
        shown = list(shown)
        random.shuffle(shown)
        system = SYSTEM + "\n".join(f"[{p.title}] {p.text}" for p in shown)
        return build_prompt(tok, [Turn("user", question)], 4, system)

    def encode(text: str, reply: str):
        p_ids = tok(text, add_special_tokens=False)["input_ids"]
        r_ids = tok(reply, add_special_tokens=False)["input_ids"][:95] + [tok.eos_token_id]
        p_ids = p_ids[-(MAX_LEN - len(r_ids)):]
        return p_ids + r_ids, [-100] * len(p_ids) + r_ids

    train_x = []
    for q, a, p in train_pairs:
        others = [x for x in siblings[p.slug] if x is not p] or [random.choice(passages)]
        train_x += [encode(prompt(q, [p]), a), encode(prompt(q, [p, random.choice(others)]), a)]
    train_x += [encode(build_prompt(tok, ctx, 4, None), r)
                for ctx, r in corpus_lib.training_examples(dialogues, 4)]
    val_x = [encode(prompt(q, [p]), a) for q, a, p in held]
    cfg = TrainConfig(vocab_size=4000, n_positions=512, max_seq_len=MAX_LEN, epochs=100,
                      max_steps=steps, patience=100, warmup_steps=100)
    model = train_lib.build_model(tok, cfg)
    started = time.perf_counter()
    summary = train_lib.fit(model, tok, train_x, val_x, cfg, progress=True)
    seconds = time.perf_counter() - started
    rows = []
    for q, a, p in held[:40]:
        ids = tok(prompt(q, [p]), return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=60, do_sample=False,
                                 repetition_penalty=1.1, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id)
        text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
        numbers = [f for f in grounding.facts(a) if f[:1].isdigit() or f[:1] == "$"]
        rows.append({"question": q, "reply": text, "reference": a,
                     "grounded": grounding.check(text, [p.text]).grounded,
                     "numbers_right": bool(numbers) and all(
                         grounding.normalise(n) in grounding.normalise(text) for n in numbers),
                     "has_numbers": bool(numbers)})
    return {"steps": summary["steps"], "epochs": summary["epochs"], "seconds": seconds,
            "val_perplexity": summary["val_perplexity"],
            "parameters": sum(x.numel() for x in model.parameters()),
            "train_examples": len(train_x), "rows": rows}


def report(result: dict, steps: int) -> str:
    rows = result["rows"]
    with_numbers = [r for r in rows if r["has_numbers"]]
    lines = [MARK, "## Training the built-in model on passages (issue 14)", "",
             f"Command: `python bench/passage_training.py --steps {steps}` "
             f"({datetime.now():%Y-%m-%d}, {machine()}). The shipped model shape "
             f"({result['parameters']:,} parameters) from scratch on "
             f"{result['train_examples']} examples: the passage-grounded questions of "
             f"data/grounded/ (passage in the system message, alone and with a distractor) "
             f"and the dialogue corpus.", "",
             "| figure | value |", "|---|---|",
             f"| optimiser steps (epochs) | {result['steps']} ({result['epochs']}) |",
             f"| training time | {result['seconds'] / 60:.1f} min |",
             f"| held-apart perplexity | {result['val_perplexity']:.1f} |",
             f"| replies that pass the groundedness check (40 held-apart questions, "
             f"given their passage) | {sum(r['grounded'] for r in rows)} of {len(rows)} |",
             f"| replies stating every number of the written answer | "
             f"{sum(r['numbers_right'] for r in with_numbers)} of {len(with_numbers)} |", "",
             "First replies, read by hand:", ""]
    lines += [f"- \"{r['question']}\" -> \"{r['reply'][:150]}\"" for r in rows[:6]]
    lines += ["", MARK]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point; ``--help`` lists the options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=800, help="optimiser steps (800: ~10 min)")
    parser.add_argument("--report", default=None, help="Markdown file to write the section to")
    args = parser.parse_args(argv)
    result = run(args.steps)
    text = report(result, args.steps)
    print(text)
    print(json.dumps(result["rows"][:10], indent=1))
    if args.report:
        write_section(Path(args.report), MARK, text)


if __name__ == "__main__":
    main()
