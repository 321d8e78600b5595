"""Short questions: do keyword-style messages ("return window?", "store hours") get answers?

    python bench/short_questions.py --model models/kestrel.tar.gz [--report docs/benchmarks.md]

Many customers type a few words, not a sentence. bench/data/short_questions.yml holds
50 such messages written for this benchmark and never trained on, each with the
articles that answer it. Each goes through ``GenerativeNLG`` as the first message of
a conversation, exactly as `rasa run` answers it, and is counted as:

- **right article**: a help-center answer whose first source is one of its articles;
- **wrong article**: a help-center answer from another article;
- **no answer**: a written reply or the canned text (nothing relevant was found).

Writes the ``<!-- short-questions -->`` section of ``--report`` and
docs/images/short_questions.png.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import List, Sequence

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.follow_ups import load_agent  # noqa: E402
from bench.report import machine, publish  # noqa: E402

MARK = "<!-- short-questions -->"
DATA = ROOT / "bench" / "data" / "short_questions.yml"
PLOT = ROOT / "docs" / "images" / "short_questions.png"
OUTCOMES = ("right article", "wrong article", "no answer")


def read_questions(path: Path) -> List[dict]:
    """The ``questions`` of ``path``: {question, slugs}.

    Raises:
        ValueError: if there are none, or one lacks its question or its slugs.
    """
    questions = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("questions")
    if not questions:
        raise ValueError(f"{path} has no `questions`.")
    for i, q in enumerate(questions):
        if not q.get("question") or not q.get("slugs"):
            raise ValueError(f"{path}: question {i} needs a `question` and its `slugs`.")
    return questions


def outcome(generation: dict, slugs: Sequence[str]) -> str:
    """One of ``OUTCOMES`` for a reply's generation record (``GenerationRecord.to_dict()``)."""
    if generation.get("mode") not in ("extractive", "generated") or not generation.get("sources"):
        return "no answer"
    return "right article" if generation["sources"][0].get("slug") in slugs else "wrong article"


async def run(model: str, questions: List[dict]) -> List[dict]:
    """One row per question: {question, outcome, slug (the first source's, or None)}."""
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    from components.generator import registry
    from components.nlg.generative_nlg import GenerativeNLG

    agent, nlg_config = load_agent(model)
    nlg = GenerativeNLG(EndpointConfig.from_dict(nlg_config), agent.domain)
    rows = []
    for q in questions:
        reply = await nlg.generate(registry.response(), DialogueStateTracker.from_events(
            "bench", [UserUttered(q["question"])]), "rest",
            domain_responses=agent.domain.responses)
        generation = reply.get("generation") or {}
        sources = generation.get("sources") or [{}]
        rows.append({"question": q["question"], "outcome": outcome(generation, q["slugs"]),
                     "slug": sources[0].get("slug")})
    return rows


def plot(counts: Counter) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.4))
    ax.barh(list(OUTCOMES)[::-1], [counts[o] for o in OUTCOMES][::-1],
            color=["tab:gray", "tab:red", "tab:green"])
    ax.set_xlabel("short questions")
    ax.set_title("Short questions (bench/data/short_questions.yml)")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=120)


def report(rows: List[dict], model: str) -> str:
    counts = Counter(r["outcome"] for r in rows)
    lines = [MARK, "## Short questions (issue 14)", "",
             f"Command: `python bench/short_questions.py --model {model}` "
             f"({datetime.now():%Y-%m-%d}, {machine()}). {len(rows)} keyword-style messages "
             f"of bench/data/short_questions.yml (\"return window?\", \"store hours\"), each "
             f"the first message of a conversation through `GenerativeNLG`. "
             f"![short questions](images/short_questions.png)", "",
             "| outcome | questions | share |", "|---|---|---|"]
    lines += [f"| {o} | {counts[o]} | {counts[o] / max(1, len(rows)):.0%} |" for o in OUTCOMES]
    lines += ["", "Not answered from one of their articles:", ""]
    lines += [f"- \"{r['question']}\": {r['outcome']}"
              + (f" ({r['slug']})" if r["outcome"] == "wrong article" else "")
              for r in rows if r["outcome"] != "right article"] or ["- none"]
    lines += ["", MARK]
    plot(counts)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/kestrel.tar.gz")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--report", help="markdown file whose section to rewrite")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.model, read_questions(Path(args.data))))
    publish(report(rows, args.model), MARK, Path(args.report) if args.report else None, PLOT)


if __name__ == "__main__":
    main()
