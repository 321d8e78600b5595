"""Can the built-in GPT learn to answer from passages within the training budget?

    python bench/passage_training.py [--steps 800] [--report docs/benchmarks.md]

Issue 14 asks the built-in model to answer from retrieved passages ("train with the
right passage among distractors so that the model learns to pick and copy"), with
the model size and training length chosen by measurement within about 10 minutes of
training on 2 cores. This trains the model as `rasa train` does with the GPT
policy's ``answer_from_passages`` (``train.train`` with ``train.passage_examples``),
with ``PASSAGE_TRAIN``'s options, except that 10% of the known questions of
data/grounded/ are held apart:

- the known questions with a written answer, each twice: its passage alone, and its
  passage with another passage of the same article as a distractor, in the system
  message of the chat template (``prompt.build_prompt``);
- the open-ended dialogue corpus (data/generator/).

It reports the training time, the held-out perplexity, and for 40 held-apart
questions, greedy replies given their passage, for each copy bias
(``GenerationConfig.copy_bias``, components/generator/copying.py; the rest of
endpoints.yml's decoding): how many pass the groundedness check and how many state
every number of the written answer. endpoints.yml's copy bias was chosen here.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import machine, write_section  # noqa: E402

MARK = "<!-- passage-training -->"
BIASES = (0.0, 4.0, 8.0, 16.0, 32.0)  # copy_bias values compared (logits)
# The built-in model's TrainConfig options for answering from passages: a passage,
# the grounded instructions and a question need a 384-token example (the shipped
# shape's 160 cut the passage), and a 4,000-token vocabulary keeps the articles'
# words whole; 800 steps are about 7 epochs. config.yml points here.
PASSAGE_TRAIN = {"vocab_size": 4000, "n_positions": 512, "max_seq_len": 384,
                 "max_steps": 800, "warmup_steps": 100}
HELD = 40  # held-apart questions decoded


def grounded_pairs(passages) -> List[Tuple[str, str, object]]:
    """(question, answer, passage) for every answered question of data/grounded/ whose
    section exists."""
    from components.generator.knowledge import load_known_questions

    by_key = {(p.slug, p.heading): p for p in passages}
    return [(q.question, q.answer, by_key[(q.slug, q.section)])
            for q in load_known_questions(ROOT / "data" / "grounded")
            if q.answer and (q.slug, q.section) in by_key]


def shipped_decoding() -> dict:
    """endpoints.yml's ``nlg.decoding``."""
    import yaml

    nlg = yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8"))["nlg"]
    return dict(nlg.get("decoding") or {})


def run(steps: int, seed: int = 0, held_out: int = HELD) -> dict:
    """Trains for ``steps`` optimiser steps and scores ``held_out`` held-apart questions."""
    from components.generator import grounding, knowledge
    from components.generator import train as train_lib
    from components.generator.config import GenerationConfig, TrainConfig
    from components.generator.generator import Generator
    from components.generator.prompt import Turn, format_passage

    passages = knowledge.load_passages(ROOT / "data" / "knowledge")
    questions = knowledge.load_known_questions(ROOT / "data" / "grounded")
    pairs = grounded_pairs(passages)
    random.Random(seed).shuffle(pairs)
    held = pairs[: len(pairs) // 10]
    apart = {q for q, _, _ in held}
    grounded = train_lib.passage_examples(passages, [q for q in questions
                                                     if q.question not in apart])
    cfg = TrainConfig.from_dict({**PASSAGE_TRAIN, "max_steps": steps})
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        meta = train_lib.train(ROOT / "data" / "generator", Path(folder) / "gen", cfg,
                               progress=True, grounded=grounded)
        seconds = time.perf_counter() - started
        generator = Generator.load(Path(folder) / "gen")
    # A three-sentence answer needs more than the conversational 48 tokens.
    base = dataclasses.replace(GenerationConfig.from_dict(shipped_decoding()), max_new_tokens=96)
    sweep = {}
    for bias in BIASES:
        config = dataclasses.replace(base, copy_bias=bias, max_time_s=30.0)
        rows = []
        for q, a, p in held[:held_out]:
            reply = generator.generate([Turn("user", q)], config, passages=[
                format_passage(p.title, p.heading, p.text)]).text.strip()
            numbers = [f for f in grounding.facts(a) if f[:1].isdigit() or f[:1] == "$"]
            rows.append({"question": q, "reply": reply, "reference": a,
                         "grounded": grounding.check(reply, [p.text]).grounded,
                         "numbers_right": bool(numbers) and all(
                             grounding.normalise(n) in grounding.normalise(reply)
                             for n in numbers),
                         "has_numbers": bool(numbers)})
        sweep[bias] = rows
    return {"steps": meta["steps"], "epochs": meta["epochs"], "seconds": seconds,
            "val_perplexity": meta["val_perplexity"], "parameters": meta["n_parameters"],
            "train_examples": meta["train_examples"], "shipped_bias": base.copy_bias,
            "sweep": sweep, "rows": sweep[base.copy_bias] if base.copy_bias in sweep
            else sweep[BIASES[-1]]}


def report(result: dict, steps: int) -> str:
    """The Markdown section (between two ``MARK`` lines) of ``result``."""
    lines = [MARK, "## Training the built-in model on passages (issue 14)", "",
             f"Command: `python bench/passage_training.py --steps {steps}` "
             f"({datetime.now():%Y-%m-%d}, {machine()}). The built-in model's layers with "
             f"`PASSAGE_TRAIN`'s vocabulary and context ({result['parameters']:,} "
             f"parameters), from scratch, trained "
             f"as `rasa train` does with `answer_from_passages: true`, on "
             f"{result['train_examples']} examples: the questions of data/grounded/ "
             f"with their passage (alone and beside a distractor) less 10% held apart, and "
             f"the dialogue corpus.", "",
             "| figure | value |", "|---|---|",
             f"| optimiser steps (epochs) | {result['steps']} ({result['epochs']}) |",
             f"| training time | {result['seconds'] / 60:.1f} min |",
             f"| held-out perplexity | {result['val_perplexity']:.1f} |", "",
             f"Greedy replies to {len(result['rows'])} held-apart questions given their passage, by copy "
             f"bias (logits; endpoints.yml ships {result['shipped_bias']:g}):", "",
             "| copy_bias | pass the groundedness check | state every number of the "
             "written answer |", "|---|---|---|"]
    for bias, rows in result["sweep"].items():
        with_numbers = [r for r in rows if r["has_numbers"]]
        lines.append(f"| {bias:g} | {sum(r['grounded'] for r in rows)} of {len(rows)} | "
                     f"{sum(r['numbers_right'] for r in with_numbers)} of {len(with_numbers)} |")
    lines += ["", "First replies at the shipped copy bias, read by hand:", ""]
    lines += [f"- \"{r['question']}\" -> \"{r['reply'][:200]}\"" for r in result["rows"][:6]]
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
