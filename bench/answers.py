"""Answers to open-ended questions: retrieval hit@k, correctness, groundedness, modes, latency.

    python bench/answers.py --model models/kestrel.tar.gz [--heldout bench/data/answers_heldout.yml]
                            [--report docs/benchmarks.md]

bench/data/answers_heldout.yml holds customer questions written from the help
center and never trained on: for each answerable one the article that answers it
and the key facts a correct answer contains (copied from that article), plus
questions the help center cannot answer. For each question this runs, side by side
in one process:

- **grounded** (the shipped bot): ``GenerativeNLG`` with the archive's generator and
  help-center index, exactly as `rasa run` answers an open-ended turn;
- **ungrounded** (the bot before the help center): the same generator, decoded and
  post-processed as before, with no retrieval and no groundedness check.

Measures:

- retrieval hit@1 / hit@3 (the answering article among the best passages' articles)
  for hybrid, dense-only and BM25-only retrieval;
- correct: every key fact in the sent text (case and dash style ignored) and no
  number or amount that the answering article does not state;
- unsupported: share of sent (non-canned) replies with a factual sentence that
  neither the passages the reply cited nor the answering article support
  (``grounding.check``); for unanswerable questions, the invented facts;
- answer first: the share of correct replies whose first sentence holds a key fact;
- modes (generated, extractive, fallback), MiniLM relevance of the reply to the
  answering article's passage that holds the key facts, latency p50/p95;
- a sweep of the relevance threshold ``min_similarity``: answerable questions
  answered from the right article vs unanswerable questions declined.
- ceilings: correct answers with the answering article given (retrieval and the
  threshold bypassed), and the questions whose key facts fit in ``max_sentences``
  of its sentences: how many misses the sentence choice costs, and how many retrieval.

Writes the ``<!-- answers -->`` section of ``--report`` and docs/images/answers.png.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import machine, threshold_plot, write_section  # noqa: E402

MARK = "<!-- answers -->"
DEFAULT_HELDOUT = ROOT / "bench" / "data" / "answers_heldout.yml"
PLOT = ROOT / "docs" / "images" / "answers.png"
MODES = ("generated", "extractive", "retrieved", "fallback")
THRESHOLDS = [round(t, 2) for t in np.arange(0.30, 0.66, 0.05)]
# A held-out question this close (MiniLM cosine) to a known question of the index
# (data/grounded/) is a near copy of it: correctness is also given without those.
NEAR_COPY = 0.92


def read_heldout(path: Path) -> Dict[str, list]:
    """``{"answerable": [{question, slug, facts}], "unanswerable": [{question, why}]}``.

    Raises:
        ValueError: if either list is missing or empty.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("answerable", "unanswerable"):
        if not data.get(key):
            raise ValueError(f"{path} has no `{key}` questions.")
    return data


def body_text(text: str) -> str:
    """The reply without its citation line."""
    from components.generator.answers import strip_citation

    return strip_citation(text)


def verbatim(reply: str, given: str) -> bool:
    """Whether every sentence of ``reply`` is one of ``given``'s, word for word
    (case, dashes and spacing aside): the generator copied and added nothing."""
    from components.generator.grounding import normalise, split_sentences

    sentences = {normalise(s) for s in split_sentences(given)}
    return all(normalise(s) in sentences for s in split_sentences(reply))


def correct(text: str, facts: Sequence[str], article_text: str) -> bool:
    """All key facts present, and every number in the reply stated by the article."""
    from components.generator.grounding import Sources, facts as facts_of, normalise

    said = normalise(body_text(text))
    if not all(normalise(f) in said for f in facts):
        return False
    article = Sources.of([article_text])
    numbers = [f for f in facts_of(body_text(text)) if f[:1].isdigit() or f[:1] == "$"]
    return all(article.has(n) for n in numbers)


def fact_first(text: str, facts: Sequence[str]) -> bool:
    """Whether the reply's first sentence holds one of the key ``facts``: the answer
    comes first, not after a sentence about something else."""
    from components.generator.grounding import normalise, split_sentences

    sentences = split_sentences(body_text(text))
    return bool(sentences) and any(normalise(f) in normalise(sentences[0]) for f in facts)


def unsupported(text: str, sources: Sequence[str]) -> bool:
    """Whether a sent reply has a factual sentence the ``sources`` do not support."""
    from components.generator.grounding import check

    return bool(check(body_text(text), sources).unsupported)


def has_store_fact(text: str) -> bool:
    """Whether ``text`` holds a number, amount, time, e-mail address or link."""
    from components.generator.grounding import NAME, facts

    return any(not NAME.fullmatch(f) for f in facts(text))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def retrieval_figures(index, questions: List[dict]) -> Dict[str, Dict[str, float]]:
    """hit@1 and hit@3 per retrieval mode, over answerable questions (no threshold)."""
    figures = {}
    for mode in ("hybrid", "dense", "bm25"):
        hits = [[h.passage.slug for h in index.search(q["question"], 3, mode)] for q in questions]
        figures[mode] = {
            "hit@1": float(np.mean([h[0] == q["slug"] for h, q in zip(hits, questions)])),
            "hit@3": float(np.mean([q["slug"] in h for h, q in zip(hits, questions)])),
        }
    return figures


def threshold_sweep(index, heldout: Dict[str, list]) -> List[dict]:
    """Per min_similarity: answerable answered from the right article, unanswerable declined."""
    top_ans = [index.search(q["question"], 1)[0] for q in heldout["answerable"]]
    top_un = [index.search(q["question"], 1)[0] for q in heldout["unanswerable"]]
    rows = []
    for t in THRESHOLDS:
        rows.append({
            "threshold": t,
            "answered_right": float(np.mean([h.dense >= t and h.passage.slug == q["slug"]
                                             for h, q in zip(top_ans, heldout["answerable"])])),
            "answered": float(np.mean([h.dense >= t for h in top_ans])),
            "declined_unanswerable": float(np.mean([h.dense < t for h in top_un])),
        })
    return rows


def ceilings(index, questions: List[dict], articles: Dict[str, str], config) -> Dict[str, int]:
    """Where the wrong answers are lost: correct answers (of ``questions``) when retrieval
    is bypassed, and when the sentence choice is too.

    - ``right_article``: the extractive answer from the answering article (its passage
      closest to the question as the hit, with its known-question match,
      ``Retriever.question_matches``), whatever the ranking and the threshold;
    - ``facts_fit``: questions whose key facts all lie in at most
      ``config.max_sentences`` of the article's sentences that fit ``config.max_chars``:
      what a perfect choice of sentences could answer.
    """
    from components.generator import answers
    from components.generator.retrieval import Hit

    right = fit = 0
    for q in questions:
        article = index.article(q["slug"])
        vector = index.query_vector(q["question"])
        row = max(article.rows, key=lambda r: float(index.embeddings[r] @ vector))
        hit = Hit(index.passages[row], 1.0, float(index.embeddings[row] @ vector), 0.0,
                  index.question_matches(vector).get(q["slug"], 0.0))
        text = answers.extractive(q["question"], [hit], index, config).text
        right += correct(text, q["facts"], articles[q["slug"]])
        fit += facts_fit(article.sentences, q["facts"], config.max_sentences, config.max_chars)
    return {"right_article": right, "facts_fit": fit}


def facts_fit(sentences: Sequence[str], facts: Sequence[str], k: int, max_chars: int) -> bool:
    """Whether at most ``k`` of ``sentences``, ``max_chars`` characters in all, hold every
    one of ``facts`` (compared as ``correct`` compares them)."""
    from itertools import combinations

    from components.generator.grounding import normalise

    wanted = [normalise(f) for f in facts]
    holding = [(s, {f for f in wanted if f in normalise(s)}) for s in sentences]
    holding = [(s, held) for s, held in holding if held]  # only these can help
    return any(set().union(*(h for _, h in combo)) >= set(wanted)
               and sum(len(s) + 1 for s, _ in combo) <= max_chars + 1
               for n in range(1, k + 1) for combo in combinations(holding, n))


def index_scaling(dim: int = 384, sizes=(1_000, 10_000, 100_000), queries: int = 50) -> List:
    """(passages, MiB of float32 embeddings, ms per exact numpy search) on random unit vectors."""
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        matrix = rng.standard_normal((n, dim)).astype(np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        q = matrix[:queries] + 0.01
        start = time.perf_counter()
        for v in q:
            np.argpartition(-(matrix @ v), 3)[:3]
        rows.append((n, matrix.nbytes / 2**20, (time.perf_counter() - start) * 1000 / queries))
    return rows


async def run_system(name: str, ask, heldout: Dict[str, list], articles: Dict[str, str],
                     article_passages: Dict[str, List[str]]) -> Dict[str, object]:
    """Asks every question through ``ask(question) -> message``; scores the replies."""
    from components.feedback.relevance import relevance
    from tqdm.auto import tqdm

    rows, latencies = [], []
    for kind in ("answerable", "unanswerable"):
        for q in tqdm(heldout[kind], desc=f"{name}: {kind}", unit="question"):
            start = time.perf_counter()
            message = await ask(q["question"])
            latencies.append((time.perf_counter() - start) * 1000)
            meta = message.get("generation") or {}
            mode = meta.get("mode") or ("generated" if meta.get("generated") else "fallback")
            text = message.get("text") or ""
            sent = mode != "fallback"
            cited = [p for s in meta.get("sources") or [] for p in [s.get("id")]]
            sources = list(article_passages.get(q.get("slug"), []))
            sources += [t for pid, t in ARTICLE_BY_PASSAGE.items() if pid in cited]
            given = message.get("given")  # the sentences a grounded reply was written from
            suggested = (meta.get("suggestion") or {}).get("slug")
            rows.append({"kind": kind, "q": q, "text": text, "mode": mode, "sent": sent,
                         "suggested": suggested,
                         "verbatim": mode == "generated" and bool(given)
                         and verbatim(body_text(text), given),
                         "correct": kind == "answerable" and sent
                         and correct(text, q["facts"], articles[q["slug"]]),
                         # A written reply is the team's own text; it must hold no fact.
                         "unsupported": sent and (has_store_fact(text) if mode == "retrieved"
                                                  else unsupported(text, sources))})
    answerable = [r for r in rows if r["kind"] == "answerable"]
    unanswerable = [r for r in rows if r["kind"] == "unanswerable"]
    references = [best_reference(r["q"], article_passages) for r in answerable]
    scores = relevance([body_text(r["text"]) for r in answerable], references)
    modes = {m: sum(r["mode"] == m for r in rows) for m in MODES}
    correct_rows = [r for r in answerable if r["correct"]]
    return {
        "name": name,
        "correct": len(correct_rows) / len(answerable),
        "correct_generated": (sum(r["mode"] == "generated" for r in correct_rows)
                              / max(1, len(correct_rows))),
        "fact_first": (sum(fact_first(r["text"], r["q"]["facts"]) for r in correct_rows)
                       / max(1, len(correct_rows))),
        "generated_verbatim": sum(r["verbatim"] for r in rows),
        "unsupported_sent": (sum(r["unsupported"] for r in rows if r["sent"])
                             / max(1, sum(r["sent"] for r in rows))),
        "invented_unanswerable": sum(r["unsupported"] for r in unanswerable),
        "answered_unanswerable": sum(r["sent"] for r in unanswerable),
        # The canned reply with a related article linked (answers.suggestion).
        "suggested_answerable": sum(bool(r["suggested"]) for r in answerable),
        "suggested_right": sum(r["suggested"] == r["q"]["slug"] for r in answerable),
        "suggested_unanswerable": sum(bool(r["suggested"]) for r in unanswerable),
        "modes": modes, "relevance": float(np.mean(scores)),
        "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "rows": rows,
    }


ARTICLE_BY_PASSAGE: Dict[str, str] = {}  # passage id -> text, filled in main()


def best_reference(q: dict, article_passages: Dict[str, List[str]]) -> str:
    """The answering article's passage holding the most key facts."""
    from components.generator.grounding import normalise

    passages = article_passages[q["slug"]]
    return max(passages, key=lambda p: sum(normalise(f) in normalise(p) for f in q["facts"]))


def tracker_for(question: str):
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    return DialogueStateTracker.from_events("bench", [UserUttered(question)])


def near_copies(index, questions: List[dict]) -> set:
    """The questions (text) with a known question of ``index`` at cosine >= NEAR_COPY.

    Measured with the untuned all-MiniLM-L6-v2, not the index's encoder: an encoder
    tuned on the known questions (components/generator/tuning.py) pulls paraphrases
    together, which would move the line between a near copy and a new question.
    """
    from components.generator.retrieval import minilm_encoder

    if not len(index.questions):
        return set()
    encode = minilm_encoder()
    known = encode([k.question for k in index.questions])  # (Q, 384)
    asked = encode([q["question"] for q in questions])  # (len(questions), 384)
    return {q["question"] for q, row in zip(questions, asked @ known.T)
            if float(np.max(row)) >= NEAR_COPY}


def correct_without(result: dict, near: set) -> float:
    """Share of correct answers over the answerable questions not in ``near``."""
    rows = [r for r in result["rows"] if r["kind"] == "answerable"
            and r["q"]["question"] not in near]
    return sum(r["correct"] for r in rows) / max(1, len(rows))


def report(results: List[dict], retrieval: dict, sweep: List[dict], scaling: List,
           index, heldout: Dict[str, list], model: str, threshold: float,
           near: set = frozenset(), ceiling: Dict[str, int] = None,
           max_sentences: int = 3) -> str:
    n_ans, n_un = len(heldout["answerable"]), len(heldout["unanswerable"])
    lines = [MARK, "## Answers from the help center (issue 14)", "",
             f"Command: `python bench/answers.py --model {model}` "
             f"({datetime.now():%Y-%m-%d}, {machine()}).",
             f"Held-out set: bench/data/answers_heldout.yml, {n_ans} answerable questions over "
             f"{len({q['slug'] for q in heldout['answerable']})} articles and {n_un} the help "
             f"center cannot answer, written from the articles and never trained on. "
             f"Index: {len(index.passages)} passages; relevance threshold "
             f"`min_similarity` {threshold}.", "",
             "| | grounded (shipped) | ungrounded (before) |", "|---|---|---|"]
    g, u = results
    rows = [
        ("correct answers (answerable)", lambda r: f"{r['correct']:.1%}"),
        (f"correct, the {n_ans - len(near)} without a near copy (cosine >= {NEAR_COPY}) among "
         f"the index's {len(index.questions)} known questions",
         lambda r: f"{correct_without(r, near):.1%}"),
        ("of the correct, written by the generator", lambda r: f"{r['correct_generated']:.0%}"),
        ("of the correct, a key fact in the first sentence", lambda r: f"{r['fact_first']:.0%}"),
        ("generated replies made only of sentences of the extractive answer, word for word",
         lambda r: f"{r['generated_verbatim']} of {r['modes']['generated']}"),
        ("sent replies with an unsupported factual sentence",
         lambda r: f"{r['unsupported_sent']:.1%}"),
        ("unanswerable questions answered with invented facts",
         lambda r: f"{r['invented_unanswerable']} of {n_un}"),
        ("unanswerable questions answered at all (not the canned reply)",
         lambda r: f"{r['answered_unanswerable']} of {n_un}"),
        ("canned reply with a related article linked: answerable (the answering article) / "
         "unanswerable", lambda r: f"{r['suggested_answerable']} ({r['suggested_right']}) / "
                                   f"{r['suggested_unanswerable']}"),
        ("modes: " + " / ".join(MODES), lambda r: " / ".join(str(r["modes"][m]) for m in MODES)),
        ("MiniLM relevance to the answering passage", lambda r: f"{r['relevance']:.3f}"),
        ("latency p50 / p95 (ms, batch 1)", lambda r: f"{r['p50']:.0f} / {r['p95']:.0f}"),
    ]
    lines += [f"| {label} | {fn(g)} | {fn(u)} |" for label, fn in rows]
    if ceiling:
        shipped = sum(r["correct"] for r in g["rows"])
        lines += ["", "Where the wrong answers are lost: correct answers when a step is bypassed "
                  "(`ceilings`):", "", "| answer path | correct |", "|---|---|",
                  f"| shipped: retrieval, threshold, sentence choice | {shipped} of {n_ans} |",
                  f"| the answering article given (retrieval and threshold bypassed) | "
                  f"{ceiling['right_article']} of {n_ans} |",
                  f"| the best choice of at most {max_sentences} of its sentences (`max_chars` "
                  f"kept) | {ceiling['facts_fit']} of {n_ans} |"]
    lines += ["", "Retrieval over the answerable questions (no threshold):", "",
              "| ranker | hit@1 | hit@3 |", "|---|---|---|"]
    lines += [f"| {m} | {v['hit@1']:.1%} | {v['hit@3']:.1%} |" for m, v in retrieval.items()]
    lines += ["", "![answered vs declined by threshold](images/answers.png)", "",
              "| min_similarity | answered from the right article | answered | "
              "unanswerable declined |", "|---|---|---|---|"]
    lines += [f"| {r['threshold']:.2f} | {r['answered_right']:.1%} | {r['answered']:.1%} | "
              f"{r['declined_unanswerable']:.1%} |" for r in sweep]
    lines += ["", "Exact numpy search (one matrix-vector product) by index size, random "
              "384-d unit vectors:", "", "| passages | float32 MiB | ms per query |",
              "|---|---|---|"]
    lines += [f"| {n:,} | {mib:.1f} | {ms:.2f} |" for n, mib, ms in scaling]
    wrong = [r for r in g["rows"] if r["kind"] == "answerable" and not r["correct"]][:8]
    if wrong:
        lines += ["", "Answerable questions the grounded bot got wrong (first 8):", ""]
        lines += [f"- \"{r['q']['question']}\" ({r['q']['slug']}; needs "
                  f"{', '.join(r['q']['facts'])}): {r['mode']}, "
                  f"\"{body_text(r['text'])[:140]}\"" for r in wrong]
    chat = [r for r in g["rows"] if r["kind"] == "unanswerable"]
    lines += ["", "Replies to the first 12 questions the help center cannot answer (grounded bot; "
              "retrieved = a written reply sent as written, generated = the model's text "
              "that passed the check):", ""]
    lines += [f"- \"{r['q']['question']}\" -> {r['mode']}: \"{r['text'][:140]}\""
              for r in chat[:12]]
    lines += ["", MARK]
    return "\n".join(lines) + "\n"


def plot(sweep: List[dict], threshold: float) -> None:
    threshold_plot(PLOT, [r["threshold"] for r in sweep], {
        "answerable: answered from the right article": [r["answered_right"] for r in sweep],
        "unanswerable: declined": [r["declined_unanswerable"] for r in sweep]},
        threshold, "min_similarity (cosine of the best passage)", "share of questions",
        "Relevance threshold on the held-out questions")


async def main_async(args) -> None:
    from rasa.core.agent import Agent
    from rasa.utils.endpoints import EndpointConfig

    from components.generator import answers, registry
    from components.generator.guardrails import postprocess
    from components.generator.knowledge import load_articles, split_passages
    from components.generator.prompt import Turn
    from components.nlg.config import read_nlg_config
    from components.nlg.generative_nlg import GenerativeNLG

    heldout = read_heldout(Path(args.heldout))
    agent = Agent.load(args.model)
    generator, index = registry.active(), registry.retriever()
    if generator is None or index is None:
        raise SystemExit(f"{args.model} has no generator or no help-center index; "
                         f"run `make train`.")
    articles, article_passages = {}, {}
    for article in load_articles(ROOT / "data" / "knowledge"):
        articles[article.slug] = article.body
        article_passages[article.slug] = [p.text for p in split_passages(article)]
    ARTICLE_BY_PASSAGE.update({p.id: p.text for p in index.passages})
    endpoints = ROOT / "endpoints.yml"
    settings = read_nlg_config(endpoints)
    nlg = GenerativeNLG(EndpointConfig.from_dict(yaml.safe_load(endpoints.read_text())["nlg"]),
                        agent.domain)
    responses = agent.domain.responses
    canned = responses[registry.response()][0]["text"]

    async def grounded(question: str) -> dict:
        message = await nlg.generate(registry.response(), tracker_for(question), "rest",
                                     domain_responses=responses)
        hits = answers.retrieve(index, question, settings.answers)
        if hits:  # what the generator was given: the extractive answer's sentences
            given = answers.extractive(question, hits, index, settings.answers)
            message["given"] = answers.strip_citation(given.text)
        return message

    async def ungrounded(question: str) -> dict:
        generation = generator.generate([Turn("user", question)], settings.decoding,
                                        settings.max_turns)
        result = postprocess(generation.text, settings.guardrails, canned,
                             timed_out=generation.hit_time_budget)
        return {"text": result.text, "generation": {"generated": result.fallback is None}}

    results = [await run_system("grounded", grounded, heldout, articles, article_passages),
               await run_system("ungrounded", ungrounded, heldout, articles,
                                article_passages)]
    retrieval = retrieval_figures(index, heldout["answerable"])
    sweep = threshold_sweep(index, heldout)
    ceiling = ceilings(index, heldout["answerable"], articles, settings.answers)
    scaling = index_scaling()
    text = report(results, retrieval, sweep, scaling, index, heldout, args.model,
                  settings.answers.min_similarity, near_copies(index, heldout["answerable"]),
                  ceiling, settings.answers.max_sentences)
    plot(sweep, settings.answers.min_similarity)
    print(text)
    if args.report:
        write_section(Path(args.report), MARK, text)


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="trained archive (make train)")
    parser.add_argument("--heldout", default=str(DEFAULT_HELDOUT))
    parser.add_argument("--report", help="markdown file whose answers section to rewrite")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
