"""Written replies for messages no article answers: which reply fits, by threshold.

    python bench/written_replies.py [--heldout bench/data/replies_heldout.yml] [--report docs/benchmarks.md]

A message the help center cannot answer (frustration, thanks, small talk,
off-topic) gets the reply the team wrote for the closest written question
(components/generator/replies.py) when the MiniLM cosine reaches
``nlg.answers.min_reply_similarity``; below it, the canned reply. A lower threshold
sends more written replies, and more that do not fit. bench/data/replies_heldout.yml
holds messages written after the replies of data/grounded/no_answer.yml and never
added to them, each with the kinds of reply a person judged to fit it. For each
threshold this counts the replies sent that fit, those sent that do not, and the
messages left to the canned reply. The bank is built as `rasa train` builds it
(config.yml's ``replies`` and the project's all-MiniLM-L6-v2), so no model archive
is needed.

Writes the ``<!-- written-replies -->`` section of ``--report`` and
docs/images/written_replies.png.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import machine, publish, threshold_plot  # noqa: E402

MARK = "<!-- written-replies -->"
DEFAULT_HELDOUT = ROOT / "bench" / "data" / "replies_heldout.yml"
PLOT = ROOT / "docs" / "images" / "written_replies.png"
THRESHOLDS = [round(t, 2) for t in np.arange(0.35, 0.66, 0.05)]


def read_heldout(path: Path) -> List[dict]:
    """``[{message, fits: [phrase, ...]}]``: each message with the phrases of its kinds.

    Raises:
        ValueError: if the file has no messages, or a message names an unknown kind.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    kinds: Dict[str, List[str]] = data.get("kinds") or {}
    if not data.get("messages"):
        raise ValueError(f"{path} has no `messages`.")
    items = []
    for item in data["messages"]:
        unknown = [k for k in item["fits"] if k not in kinds]
        if unknown:
            raise ValueError(f"{path}: {item['message']!r} names unknown kind(s) {unknown}; "
                             f"known: {sorted(kinds)}.")
        items.append({"message": item["message"],
                      "fits": [phrase for k in item["fits"] for phrase in kinds[k]]})
    return items


def fits(reply: str, phrases: Sequence[str]) -> bool:
    """Whether ``reply`` holds one of ``phrases`` (case-insensitive)."""
    return any(p.lower() in reply.lower() for p in phrases)


def sweep(bank, items: List[dict]) -> List[dict]:
    """Per threshold: replies sent that fit, sent that do not, and messages left canned."""
    rows = []
    for threshold in THRESHOLDS:
        sent = [(item, bank.nearest(item["message"], threshold)) for item in items]
        rows.append({
            "threshold": threshold,
            "fit": sum(m is not None and fits(m.reply.answer, i["fits"]) for i, m in sent),
            "unfit": sum(m is not None and not fits(m.reply.answer, i["fits"]) for i, m in sent),
            "canned": sum(m is None for _, m in sent),
            "canned_with_a_fit": sum(m is None and bool(i["fits"]) for i, m in sent),
        })
    return rows


def report(rows: List[dict], bank, items: List[dict], threshold: float,
           heldout: Path) -> str:
    n = len(items)
    lines = [MARK, "## Written replies for messages no article answers (issue 14)", "",
             f"Command: `python bench/written_replies.py` ({datetime.now():%Y-%m-%d}, "
             f"{machine()}).",
             f"Held-out messages: {os.path.relpath(heldout, ROOT)}, {n} messages ("
             f"{sum(bool(i['fits']) for i in items)} with a written reply that fits, by a "
             f"person's judgement); the bank: {len(bank.replies)} written questions of "
             f"data/grounded/no_answer.yml. A reply is sent when its question's MiniLM cosine "
             f"reaches `min_reply_similarity` and the message names its topic words; "
             f"otherwise the canned reply goes out. Shipped: {threshold}.", "",
             "| min_reply_similarity | sent, fits | sent, does not fit | canned |",
             "|---|---|---|---|"]
    for r in rows:
        mark = " (shipped)" if abs(r["threshold"] - threshold) < 1e-9 else ""
        lines.append(f"| {r['threshold']:.2f}{mark} | {r['fit']} | {r['unfit']} | "
                     f"{r['canned']} ({r['canned_with_a_fit']} of them had one that fits) |")
    lines += ["", "![written replies by threshold](images/written_replies.png)", "",
              f"Replies at the shipped threshold ({threshold}):", ""]
    for item in items:
        match = bank.nearest(item["message"], threshold)
        if match is None:
            lines.append(f"- \"{item['message']}\" -> canned")
        else:
            verdict = "fits" if fits(match.reply.answer, item["fits"]) else "**does not fit**"
            lines.append(f"- \"{item['message']}\" -> \"{match.reply.answer}\" "
                         f"({match.similarity:.2f}, {verdict})")
    return "\n".join(lines + ["", MARK]) + "\n"


def plot(rows: List[dict], threshold: float, n: int) -> None:
    threshold_plot(PLOT, [r["threshold"] for r in rows], {
        "written reply sent, fits": [r["fit"] / n for r in rows],
        "written reply sent, does not fit": [r["unfit"] / n for r in rows]},
        threshold, "min_reply_similarity (cosine of the closest written question)",
        f"share of {n} held-out messages", "Written replies on held-out off-topic messages",
        legend="upper right")


def main(argv: Sequence[str] = None) -> List[dict]:
    from components.generator.replies import ReplyBank, load_replies
    from components.generator.retrieval import minilm_encoder
    from components.nlg.config import read_nlg_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heldout", default=str(DEFAULT_HELDOUT))
    parser.add_argument("--report", help="markdown file whose written-replies section to rewrite")
    args = parser.parse_args(argv)
    heldout = Path(args.heldout).resolve()
    items = read_heldout(heldout)
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    paths = [p["replies"] for p in config["policies"] if p.get("replies")]
    bank = ReplyBank.build(load_replies([ROOT / p for p in paths]), minilm_encoder())
    threshold = read_nlg_config(ROOT / "endpoints.yml").answers.min_reply_similarity
    rows = sweep(bank, items)
    text = report(rows, bank, items, threshold, heldout)
    plot(rows, threshold, len(items))
    publish(text, MARK, Path(args.report) if args.report else None, PLOT)
    return rows


if __name__ == "__main__":
    main()
