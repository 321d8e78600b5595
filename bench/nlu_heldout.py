"""Where fresh customer messages go in the trained project: a scripted flow, or the generator.

    python bench/nlu_heldout.py --model models/kestrel.tar.gz
                                [--nlu bench/data/nlu_heldout.yml] [--report docs/benchmarks.md]

Banking77 (bench/nlu_banking77.py) measures the pipeline on someone else's
intents; this measures the shipped model on its own. bench/data/nlu_heldout.yml
holds customer messages written for this check and never trained on: paraphrases
of every scripted intent, questions about the store's policies (``policy_question``:
the help center should answer them, never a form), and out-of-scope questions.
Each is parsed once with the archive (``Agent.parse_message``, the whole NLU
pipeline, SafetyClassifier included).

A turn goes to the generator when its intent is one of the GPTPolicy's
``open_intents`` (config.yml), otherwise to a scripted flow. Reported, against
issue 15's targets:

- scripted paraphrases routed to the right intent (target >= 95%);
- out-of-scope questions reaching the generator (target >= 90%);
- policy questions reaching the help center, i.e. the generator (target >= 90%);
- every message routed wrong, with the classifier's scores and thresholds;
- the same counts with the out-of-scope rule moved over its quantile q: the
  thresholds at each q are recomputed from the held-out scores that
  ``rasa train`` stored in the archive (components/nlu/sentence_intent_classifier.py),
  so the sweep needs no retraining. The shipped q is the calibrated one.

Writes the ``<!-- nlu-heldout -->`` section of ``--report``.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.nlu_banking77 import FALLBACK, parse_all, read_rules  # noqa: E402
from bench.report import machine, publish  # noqa: E402

MARK = "<!-- nlu-heldout -->"
DEFAULT_NLU = ROOT / "bench" / "data" / "nlu_heldout.yml"
OUT_OF_SCOPE = "out_of_scope"
POLICY = "policy_question"
SWEEP = tuple(round(0.05 * i, 2) for i in range(11))  # q 0 .. 0.5


def read_messages(path: Path) -> List[tuple]:
    """``(text, intent)`` of every example in a Rasa YAML NLU file (no entity markup)."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [(m.get("text"), m.get("intent")) for m in data.intent_examples]


def open_intents(config_path: Path) -> List[str]:
    """The GPT policy's ``open_intents`` in config.yml, nlu_fallback always among them."""
    config = yaml.safe_load(config_path.read_text())
    policy = next(p for p in config["policies"] if p["name"].endswith("GPTPolicy"))
    return sorted(set(policy.get("open_intents") or []) | {FALLBACK})


def kind(expected: str) -> str:
    """``"out_of_scope"``, ``"policy"`` or ``"scripted"``: which target a message counts for."""
    return {OUT_OF_SCOPE: "out_of_scope", POLICY: "policy"}.get(expected, "scripted")


def final_at(row: dict, rule: Optional[dict]) -> str:
    """The intent ``row`` ends with when the out-of-scope rule is ``rule``.

    ``row["final"]`` is what the archive said; with ``rule`` (``{"score"}``, the
    fused in-scope score's threshold) the classifier's own intent and score in
    ``row["oos"]`` are re-decided. An intent a later component set (the
    SafetyClassifier's) stays.
    """
    record = row.get("oos")
    if rule is None or not record or row["final"] not in (FALLBACK, record["intent"]):
        return row["final"]
    return FALLBACK if record["score"] < rule["score"] else record["intent"]


def counts(messages: Sequence[tuple], finals: Sequence[str], open_: Sequence[str]) -> Dict:
    """``{kind: [right, total]}``: scripted = right intent; the others = reached the generator."""
    result = {"scripted": [0, 0], "out_of_scope": [0, 0], "policy": [0, 0]}
    for (_, expected), final in zip(messages, finals):
        k = kind(expected)
        result[k][1] += 1
        result[k][0] += (final == expected) if k == "scripted" else (final in open_)
    return result


def score(messages: Sequence[tuple], rows: Sequence[dict], open_: Sequence[str],
          rules: Optional[Dict[str, dict]] = None) -> dict:
    """Counts as shipped, the messages routed wrong, and the sweep over ``rules``.

    Args:
        messages: ``(text, expected intent)``.
        rows: ``parse_all`` output for the same messages.
        open_: the GPT policy's open intents.
        rules: ``{q: {"score"}}`` thresholds per quantile.

    Raises:
        ValueError: if there are no scripted or no out-of-scope messages.
    """
    kinds = [kind(expected) for _, expected in messages]
    if "scripted" not in kinds or "out_of_scope" not in kinds:
        raise ValueError("the held-out set needs scripted and out-of-scope messages")
    finals = [row["final"] for row in rows]
    wrong = [{"text": text, "expected": expected, "got": final, "oos": row.get("oos")}
             for (text, expected), row, final in zip(messages, rows, finals)
             if not ((final == expected) if kind(expected) == "scripted" else final in open_)]
    sweep = {q: counts(messages, [final_at(r, rule) for r in rows], open_)
             for q, rule in (rules or {}).items()}
    return {"counts": counts(messages, finals, open_), "wrong": wrong, "sweep": sweep}


def _pct(pair) -> str:
    right, total = pair
    return f"{right}/{total} ({100 * right / total:.0f}%)" if total else "-"


def report(result: dict) -> str:
    """The Markdown section (fenced by MARK) for docs/benchmarks.md."""
    scored, shipped = result["scored"], result.get("shipped_q")
    c = scored["counts"]
    wrong = "\n".join(
        f"| {w['text']} | {w['expected']} | {w['got']} | "
        + (f"{w['oos']['confidence']:.2f} / {w['oos']['similarity']:.2f} / "
           f"{w['oos']['score']:.2f}" if w["oos"] else "")
        + " |" for w in scored["wrong"]) or "| (none) | | | |"
    sweep = "\n".join(
        f"| {q}{' (shipped)' if shipped is not None and float(q) == shipped else ''} "
        f"| {_pct(v['scripted'])} | {_pct(v['out_of_scope'])} | {_pct(v['policy'])} |"
        for q, v in scored["sweep"].items()) or "| (no held-out scores in the archive) | | | |"
    return f"""{MARK}
## The project's own intents, on messages it never saw

Command: `{result["command"]}` ({result["date"]}; {result["machine"]}).
{sum(v[1] for v in c.values())} messages written for this check and never trained on
(bench/data/nlu_heldout.yml), parsed once by the trained archive. A turn reaches
the generator when its intent is one of the GPT policy's open intents
({", ".join(result["open_intents"])}).

| figure | shipped | target |
|---|---|---|
| scripted paraphrases routed to the right intent | {_pct(c["scripted"])} | >= 95% |
| out-of-scope questions reaching the generator | {_pct(c["out_of_scope"])} | >= 90% |
| policy questions reaching the help center (not a form) | {_pct(c["policy"])} | >= 90% |

Messages routed wrong (confidence / similarity / score: the classifier's max-softmax
probability and cosine to the nearest training example of its intent; the shipped
thresholds are {result["thresholds"]}):

| message | expected | got | confidence / similarity / score |
|---|---|---|---|
{wrong}

The out-of-scope rule moved over its quantile q (thresholds recomputed from the
held-out scores stored in the archive; 0 = never falls back):

| q | scripted routed right | out-of-scope to the generator | policy questions to the help center |
|---|---|---|---|
{sweep}
{MARK}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="trained archive (.tar.gz)")
    parser.add_argument("--nlu", type=Path, default=DEFAULT_NLU, help="held-out NLU file")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args()
    if not args.model.is_file():
        parser.error(f"no model archive at {args.model}: run `make train` first")
    messages = read_messages(args.nlu)
    rows = parse_all(args.model, [text for text, _ in messages])
    rules, shipped = read_rules(args.model, SWEEP)
    open_ = open_intents(args.config)
    thresholds = next((f"in-scope score {r['oos']['threshold']}" for r in rows
                       if r.get("oos")),
                      "not recorded")
    result = {"scored": score(messages, rows, open_, rules), "open_intents": open_,
              "shipped_q": shipped, "thresholds": thresholds,
              "date": datetime.now().strftime("%Y-%m-%d"), "machine": machine(),
              "command": " ".join(["python bench/nlu_heldout.py"] + sys.argv[1:])}
    section = report(result)
    publish(section, MARK, args.report)


if __name__ == "__main__":
    main()
