"""Follow-up questions: searched alone, or with the customer's earlier messages?

    python bench/follow_ups.py --model models/kestrel.tar.gz [--report docs/benchmarks.md]

bench/data/follow_ups.yml holds two-turn conversations written for this benchmark
and never trained on: a first question, then a second message with the article
that answers it and the key facts a correct answer holds. Half of the second
messages are follow-ups that only read with the first ("and express?"); the
others change the topic and must not be pulled back to the first one.

Each conversation goes through ``GenerativeNLG`` exactly as `rasa run` answers
it (the first question, the bot's reply, then the second message), twice in
one run: with ``answers.follow_ups`` off (the second message searched alone) and
on (``answers.contextual_question``, shipped). Measured per kind: the answering
article first among the sources (hit@1) and a correct reply (every key fact,
and no number that article does not state: bench/answers.py ``correct``).

Writes the ``<!-- follow-ups -->`` section of ``--report`` and
docs/images/follow_ups.png.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Sequence

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.answers import correct  # noqa: E402
from bench.report import machine, publish  # noqa: E402
from components.generator.answers import REPEAT_LEAD  # noqa: E402

MARK = "<!-- follow-ups -->"
DATA = ROOT / "bench" / "data" / "follow_ups.yml"
PLOT = ROOT / "docs" / "images" / "follow_ups.png"
KINDS = ("follow_up", "new_topic")


def read_conversations(path: Path) -> List[dict]:
    """The ``conversations`` of ``path``: {first, then, kind, slug, facts}.

    Raises:
        ValueError: if there are none, or one lacks a key or has an unknown kind.
    """
    conversations = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("conversations")
    if not conversations:
        raise ValueError(f"{path} has no `conversations`.")
    for i, c in enumerate(conversations):
        missing = {"first", "then", "kind", "slug", "facts"} - set(c)
        if missing or c["kind"] not in KINDS:
            raise ValueError(f"{path}: conversation {i} lacks {sorted(missing)} or has a kind "
                             f"other than {KINDS}.")
    return conversations


def score(rows: List[dict]) -> Dict[str, Dict[str, float]]:
    """{kind: {"hit@1", "correct", "repeated", "n"}} over ``rows`` ({kind, hit, correct,
    repeated}); "repeated": the share sent as the last reply again, opened with
    ``answers.REPEAT_LEAD``."""
    out = {}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        n = max(1, len(mine))
        out[kind] = {"hit@1": sum(r["hit"] for r in mine) / n,
                     "correct": sum(r["correct"] for r in mine) / n,
                     "repeated": sum(r.get("repeated", False) for r in mine) / n,
                     "n": len(mine)}
    return out


def load_agent(model: str):
    """(Rasa's ``Agent`` of the ``model`` archive, endpoints.yml's ``nlg`` section): what
    a benchmark needs to answer as `rasa run` does, through ``GenerativeNLG``.

    Raises:
        SystemExit: if the archive has no help-center index.
    """
    from rasa.core.agent import Agent

    from components.generator import registry

    agent = Agent.load(model)
    if registry.retriever() is None:
        raise SystemExit(f"{model} has no help-center index; run `make train`.")
    return agent, yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8"))["nlg"]


async def run(model: str, conversations: List[dict]) -> Dict[str, List[dict]]:
    """{"alone": rows, "with earlier messages": rows}, one row per conversation."""
    from rasa.shared.core.events import BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    from components.generator import registry
    from components.generator.answers import strip_citation
    from components.generator.knowledge import load_articles
    from components.nlg.generative_nlg import GenerativeNLG

    agent, nlg_config = load_agent(model)
    articles = {a.slug: a.body for a in load_articles(ROOT / "data" / "knowledge")}
    responses = agent.domain.responses
    results = {}
    for name, follow_ups in (("alone", False), ("with earlier messages", True)):
        config = {**nlg_config, "answers": {**nlg_config.get("answers", {}),
                                            "follow_ups": follow_ups}}
        nlg = GenerativeNLG(EndpointConfig.from_dict(config), agent.domain)
        rows = []
        for c in conversations:
            first = await nlg.generate(registry.response(), DialogueStateTracker.from_events(
                "bench", [UserUttered(c["first"])]), "rest", domain_responses=responses)
            tracker = DialogueStateTracker.from_events("bench", [
                UserUttered(c["first"]), BotUttered(first["text"]), UserUttered(c["then"])])
            reply = await nlg.generate(registry.response(), tracker, "rest",
                                       domain_responses=responses)
            sources = (reply.get("generation") or {}).get("sources") or []
            rows.append({"kind": c["kind"], "then": c["then"],
                         "hit": bool(sources) and sources[0].get("slug") == c["slug"],
                         "correct": correct(reply["text"], c["facts"], articles[c["slug"]]),
                         "repeated": bool((reply.get("generation") or {}).get("repeated")),
                         "text": strip_citation(reply["text"])})
        results[name] = rows
    return results


def plot(scores: Dict[str, Dict[str, Dict[str, float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    width = 0.38
    for k, (name, by_kind) in enumerate(scores.items()):
        xs = [i + (k - 0.5) * width for i in range(len(KINDS))]
        ax.bar(xs, [by_kind[kind]["correct"] for kind in KINDS], width, label=name)
    ax.set_xticks(range(len(KINDS)), [k.replace("_", " ") for k in KINDS])
    ax.set_ylabel("correct replies")
    ax.set_ylim(0, 1)
    ax.legend(title="second message searched", fontsize=8)
    ax.set_title("Follow-up questions (bench/data/follow_ups.yml)")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=120)


def report(results: Dict[str, List[dict]], model: str) -> str:
    scores = {name: score(rows) for name, rows in results.items()}
    lines = [MARK, "## Follow-up questions (issue 14)", "",
             f"Command: `python bench/follow_ups.py --model {model}` ({datetime.now():%Y-%m-%d}, "
             f"{machine()}). Two-turn conversations of bench/data/follow_ups.yml through "
             f"`GenerativeNLG`, the second message searched alone or, as shipped "
             f"(`answers.follow_ups`), with the customer's earlier messages when it is a "
             f"follow-up (`answers.contextual_question`). ![follow-ups](images/follow_ups.png)",
             "", "A second reply \"repeated\" says only what the first did; as shipped it "
             "opens with \"" + REPEAT_LEAD + "\" (`answers.repeats`; only a follow-up searched "
             "with the earlier messages is checked).", "",
             "| second message searched | kind | n | article hit@1 | correct | repeated |",
             "|---|---|---|---|---|---|"]
    for name, by_kind in scores.items():
        for kind in KINDS:
            s = by_kind[kind]
            lines.append(f"| {name} | {kind.replace('_', ' ')} | {s['n']} | {s['hit@1']:.0%} | "
                         f"{s['correct']:.0%} | {s['repeated']:.0%} |")
    shipped = results["with earlier messages"]
    lines += ["", "Still wrong as shipped:", ""]
    lines += [f"- {r['kind'].replace('_', ' ')}: \"{r['then']}\" -> \"{r['text'][:120]}\""
              for r in shipped if not r["correct"]] or ["- none"]
    lines += ["", MARK]
    plot(scores)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/kestrel.tar.gz")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--report", help="markdown file whose section to rewrite")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.model, read_conversations(Path(args.data))))
    publish(report(results, args.model), MARK, Path(args.report) if args.report else None, PLOT)


if __name__ == "__main__":
    main()
