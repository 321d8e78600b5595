"""Agreement of the groundedness check with a person's judgement, on judged samples.

    python bench/grounding_agreement.py [--sample bench/data/grounding_judged.yml]
                                        [--sample bench/data/grounding_judged_test.yml]
                                        [--report docs/benchmarks.md]

A judged sample holds help-center passages copied from data/knowledge, each with
a reply written by hand as the bot might write it and the reference label
``supported`` (does the passage support everything the reply states?), judged as
a careful support lead would. ``kind`` says how the reply was made (see KINDS).
There are two samples, and by default both are run, each reported on its own:

- bench/data/grounding_judged.yml, "dev: designed against": the check's rules
  were designed against it, so its figures flatter the check;
- bench/data/grounding_judged_test.yml, "test: written blind": written afterwards
  without looking at the check, in the proportions of a bot that is mostly right;
  its figures are the ones to quote.

For each item this runs ``grounding.check(reply, [passage])`` and compares its
verdict (grounded or not) with the label:

- agreement (accuracy) and Cohen's kappa;
- precision and recall of "unsupported": the check exists to block unsupported
  replies, so its recall of unsupported replies matters most; the share of
  supported replies it blocks is what that recall costs;
- agreement per kind, and every disagreement with the check's reason.

Pure text, no model, no Rasa: runs in seconds. Writes the
``<!-- grounding-agreement -->`` section of ``--report``: one section with every
sample given.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import machine, write_section  # noqa: E402

MARK = "<!-- grounding-agreement -->"
DEFAULT_SAMPLE = ROOT / "bench" / "data" / "grounding_judged.yml"
TEST_SAMPLE = ROOT / "bench" / "data" / "grounding_judged_test.yml"
DEFAULT_SAMPLES = (DEFAULT_SAMPLE, TEST_SAMPLE)
# file name -> (how the report names the sample, what its figures mean).
ROLES: Dict[str, Tuple[str, str]] = {
    DEFAULT_SAMPLE.name: ("dev: designed against", "the sample the check's rules were "
                          "designed against, so its figures flatter the check"),
    TEST_SAMPLE.name: ("test: written blind", "written afterwards without looking at the "
                       "check, mostly supported replies as from a bot that is mostly "
                       "right; the figures to quote"),
}
FIELDS = ("id", "passage_slug", "passage", "reply", "supported", "kind", "note")
# kind -> what a reply of that kind is (the label it should carry), in report order.
KINDS: Dict[str, bool] = {
    "copy": True,  # a sentence copied from the passage
    "paraphrase": True,  # the same fact in other words
    "merge": True,  # two facts of the passage combined
    "conversational": True,  # no factual claim: states nothing
    "wrong_number": False,  # a number, price or duration changed
    "negation": False,  # the passage's claim negated or reversed
    "swap": False,  # a fact from another article, or entities/values swapped
    "invented": False,  # a plausible claim the passage does not make
    "partial": False,  # one supported sentence plus one unsupported
}


def read_sample(path: Path) -> List[dict]:
    """The judged items of ``path`` (a YAML file with an ``items`` list).

    Raises:
        ValueError: if there are no items, an item lacks a field, an id repeats,
            a kind is unknown or ``supported`` is not a boolean.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    items = data.get("items") or []
    if not items:
        raise ValueError(f"{path} has no `items`.")
    seen = set()
    for n, item in enumerate(items):
        missing = [f for f in FIELDS if item.get(f) in (None, "")]
        if missing:
            raise ValueError(f"{path}: item {n} ({item.get('id')}) lacks {missing}.")
        if item["id"] in seen:
            raise ValueError(f"{path}: id {item['id']} is used twice.")
        seen.add(item["id"])
        if item["kind"] not in KINDS:
            raise ValueError(f"{path}: {item['id']} has kind {item['kind']!r}; "
                             f"use one of {', '.join(KINDS)}.")
        if not isinstance(item["supported"], bool):
            raise ValueError(f"{path}: {item['id']}: `supported` must be true or false.")
    return items


def reason(verdict) -> str:
    """Why the check decided as it did, in one line."""
    from components.generator.grounding import MIN_OVERLAP

    failed = [s for s in verdict.sentences if not s.supported]
    if not verdict.sentences:
        return "empty reply"
    if not failed:
        parts = []
        for s in verdict.sentences:
            parts.append(f"overlap {s.overlap:.2f}" if s.factual else "not factual")
        return "every sentence passed (" + "; ".join(parts) + ")"
    parts = []
    for s in failed:
        why = []
        if s.missing_facts:
            why.append("missing " + ", ".join(f"`{f}`" for f in s.missing_facts))
        if s.overlap < MIN_OVERLAP:
            why.append(f"overlap {s.overlap:.2f} < {MIN_OVERLAP}")
        if not s.polarity:
            why.append("negation differs from the closest source clause")
        if not s.in_place:
            why.append("a number is not in the source clause its clause is about")
        parts.append(f"\"{s.sentence}\": " + " and ".join(why))
    return "; ".join(parts)


def evaluate(items: Sequence[dict]) -> dict:
    """Runs the check on every item; the agreement figures and the disagreements."""
    from sklearn.metrics import cohen_kappa_score, precision_score, recall_score

    from components.generator.grounding import check

    rows = []
    for item in items:
        verdict = check(item["reply"], [item["passage"]])
        rows.append({"item": item, "grounded": verdict.grounded, "reason": reason(verdict)})
    # 1 = unsupported: the class the check has to catch.
    truth = [int(not r["item"]["supported"]) for r in rows]
    pred = [int(not r["grounded"]) for r in rows]
    agree = [t == p for t, p in zip(truth, pred)]
    kappa = float(cohen_kappa_score(truth, pred)) if len(set(truth) | set(pred)) > 1 \
        else float("nan")
    per_kind = {}
    for kind in KINDS:
        kind_rows = [(r, a) for r, a in zip(rows, agree) if r["item"]["kind"] == kind]
        if kind_rows:
            per_kind[kind] = {"n": len(kind_rows), "agree": sum(a for _, a in kind_rows),
                              "blocked": sum(not r["grounded"] for r, _ in kind_rows)}
    supported = [r for r in rows if r["item"]["supported"]]
    return {
        "n": len(rows),
        "labels": Counter("supported" if r["item"]["supported"] else "unsupported"
                          for r in rows),
        "agreement": sum(agree) / len(rows),
        "kappa": kappa,
        "precision_unsupported": float(precision_score(truth, pred, zero_division=0)),
        "recall_unsupported": float(recall_score(truth, pred, zero_division=0)),
        "supported_blocked": (sum(not r["grounded"] for r in supported) / len(supported)
                              if supported else float("nan")),
        "confusion": {"tp": sum(t and p for t, p in zip(truth, pred)),
                      "fn": sum(t and not p for t, p in zip(truth, pred)),
                      "fp": sum(p and not t for t, p in zip(truth, pred)),
                      "tn": sum(not t and not p for t, p in zip(truth, pred))},
        "per_kind": per_kind,
        "disagreements": [r for r, a in zip(rows, agree) if not a],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def role(path: Path) -> str:
    """How the report names the sample at ``path``: its role, or its file name."""
    return ROLES.get(Path(path).name, (Path(path).name, ""))[0]


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, as given otherwise."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _summary(figures: dict) -> Dict[str, str]:
    """figure name -> its value for one sample, in report order."""
    c = figures["confusion"]
    return {
        "agreement with the labels": f"{figures['agreement']:.1%}",
        "Cohen's kappa": f"{figures['kappa']:.2f}",
        "unsupported replies blocked (recall of unsupported)":
            f"{figures['recall_unsupported']:.1%} ({c['tp']} of {c['tp'] + c['fn']})",
        "blocked replies that were unsupported (precision of unsupported)":
            f"{figures['precision_unsupported']:.1%} ({c['tp']} of {c['tp'] + c['fp']})",
        "supported replies blocked":
            f"{figures['supported_blocked']:.1%} ({c['fp']} of {c['fp'] + c['tn']})",
    }


def report(results: Dict[str, dict]) -> str:
    """The ``MARK``-fenced markdown section for one or more samples.

    Args:
        results: sample path as shown (relative to the repository) -> its figures,
            in report order; each sample is named by ``role``.
    """
    from components.generator.grounding import MIN_CLAIM_WORDS, MIN_OVERLAP

    names = {sample: role(Path(sample)) for sample in results}
    command = " ".join(f"--sample {sample}" for sample in results)
    lines = [MARK, "## Groundedness check vs a person's judgement (issue 14)", "",
             f"Command: `python bench/grounding_agreement.py {command}` "
             f"({datetime.now():%Y-%m-%d}, {machine()}).",
             "Replies written by hand against help-center passages and labelled by a "
             "person; each checked with `grounding.check(reply, [passage])` at "
             f"MIN_CLAIM_WORDS {MIN_CLAIM_WORDS}, MIN_OVERLAP {MIN_OVERLAP}. \"Blocked\" = "
             "the check finds the reply not grounded. Samples:", ""]
    for sample, figures in results.items():
        what = ROLES.get(Path(sample).name, ("", ""))[1]
        lines.append(f"- {names[sample]}: `{sample}`, {figures['n']} replies "
                     f"({figures['labels']['supported']} supported, "
                     f"{figures['labels']['unsupported']} unsupported)"
                     + (f"; {what}." if what else "."))
    summaries = {sample: _summary(figures) for sample, figures in results.items()}
    lines += ["", "| figure | " + " | ".join(names[s] for s in results) + " |",
              "|---|" + "---|" * len(results)]
    for figure in next(iter(summaries.values())):
        lines.append(f"| {figure} | " + " | ".join(summaries[s][figure] for s in results) + " |")
    for sample, figures in results.items():
        lines += ["", f"### {names[sample]} (`{sample}`)", "",
                  "| kind | label | items | agreement | blocked |", "|---|---|---|---|---|"]
        for kind, k in figures["per_kind"].items():
            label = "supported" if KINDS[kind] else "unsupported"
            lines.append(f"| {kind} | {label} | {k['n']} | {k['agree']}/{k['n']} "
                         f"({k['agree'] / k['n']:.0%}) | {k['blocked']} |")
        if figures["disagreements"]:
            lines += ["", f"Disagreements ({len(figures['disagreements'])}):", "",
                      "| id | kind | reply | check | reason |", "|---|---|---|---|---|"]
            for r in figures["disagreements"]:
                item = r["item"]
                verdict = "grounded" if r["grounded"] else "blocked"
                lines.append(f"| {item['id']} | {item['kind']} | {_cell(item['reply'])} | "
                             f"{verdict} | {_cell(r['reason'])} |")
    lines += ["", MARK]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] = None) -> Dict[str, dict]:
    """Runs the comparison on each sample, prints the section, writes it to ``--report``.

    Returns:
        sample path as shown (relative to the repository) -> its figures, in the
        order given.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", action="append", dest="samples", metavar="PATH",
                        help="judged sample (YAML); repeat for several, each reported on "
                             "its own (default: "
                             + " and ".join(_shown(p) for p in DEFAULT_SAMPLES) + ")")
    parser.add_argument("--report", help="markdown file whose grounding section to rewrite")
    args = parser.parse_args(argv)
    samples = args.samples or [str(p) for p in DEFAULT_SAMPLES]
    results: Dict[str, dict] = {}
    for sample in samples:
        shown = _shown(Path(sample))
        if shown in results:
            raise SystemExit(f"{shown} is given twice.")
        results[shown] = evaluate(read_sample(Path(sample)))
    text = report(results)
    print(text)
    if args.report:
        write_section(Path(args.report), MARK, text)
    return results


if __name__ == "__main__":
    main()
