"""Where fresh customer messages go in the trained project: a scripted flow or the generator.

    python bench/nlu_heldout.py --model models/kestrel.tar.gz
                                [--nlu bench/data/nlu_heldout.yml] [--report docs/benchmarks.md]

Banking77 (bench/nlu_banking77.py) measures the pipeline on someone else's
intents; this measures the shipped model on its own. bench/data/nlu_heldout.yml
holds customer messages written for this check and never trained on: paraphrases
of the scripted intents, and out-of-scope questions the store has no flow for.
Each is parsed once with the archive (``Agent.parse_message``), and its route is
read from DIET's ranking and the gate's similarity with Rasa's fallback rule
(``nlu_banking77.falls_back``), at the thresholds config.yml ships now:

- with the gate: FallbackClassifier and NearestExampleFallback;
- without the gate: the FallbackClassifier alone, i.e. the same model with the
  gate removed;
- and with the gate's threshold moved over ``GATE_THRESHOLDS``, to choose it.

A turn goes to the generator when its intent is one of the GPTPolicy's
``open_intents`` (config.yml), otherwise to a scripted flow. Reported per
pipeline variant: scripted messages routed right (correct intent, scripted),
scripted messages sent to the generator, and out-of-scope messages sent to the
generator; and every message whose route the gate changed. Writes the
``<!-- nlu-heldout -->`` section of ``--report``.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Sequence

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.nlu_banking77 import (FALLBACK, GATE, GATE_THRESHOLDS, falls_back,  # noqa: E402
                                 parse_all)
from bench.report import machine, write_section  # noqa: E402

MARK = "<!-- nlu-heldout -->"
DEFAULT_NLU = ROOT / "bench" / "data" / "nlu_heldout.yml"
OUT_OF_SCOPE = "out_of_scope"


def read_messages(path: Path) -> List[tuple]:
    """``(text, intent)`` of every example in a Rasa YAML NLU file (no entity markup)."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [(m.get("text"), m.get("intent")) for m in data.intent_examples]


def shipped_settings(config_path: Path) -> dict:
    """What config.yml ships: fallback threshold and ambiguity, the gate, the open intents."""
    config = yaml.safe_load(config_path.read_text())
    fallback = next(c for c in config["pipeline"] if c["name"] == "FallbackClassifier")
    policy = next(p for p in config["policies"] if p["name"].endswith("GPTPolicy"))
    gate = next((c for c in config["pipeline"] if c["name"] == GATE), None)
    return {"threshold": float(fallback.get("threshold", 0.3)),
            "ambiguity": float(fallback.get("ambiguity_threshold", 0.1)),
            "gate": gate and {"threshold": float(gate.get("threshold", 0.5)),
                              "exempt": sorted(gate.get("exempt_intents") or [])},
            "open_intents": sorted(set(policy.get("open_intents") or [FALLBACK]))}


def route(intent: str, open_intents: Sequence[str]) -> str:
    """``"generator"`` for an open intent (nlu_fallback included), else ``"scripted"``."""
    return "generator" if intent in open_intents else "scripted"


def _counts(messages: Sequence[tuple], finals: Sequence[str], open_intents) -> Dict[str, int]:
    """Scripted messages routed right / sent to the generator, OOS sent to the generator."""
    c = {"scripted_right": 0, "scripted_to_generator": 0, "oos_to_generator": 0}
    for (_, expected), intent in zip(messages, finals):
        goes = route(intent, open_intents)
        if expected == OUT_OF_SCOPE:
            c["oos_to_generator"] += goes == "generator"
        else:
            c["scripted_right"] += goes == "scripted" and intent == expected
            c["scripted_to_generator"] += goes == "generator"
    return c


def score(messages: Sequence[tuple], rows: Sequence[dict], settings: dict) -> dict:
    """Routes with and without the gate, over gate thresholds, and what the gate changed.

    Args:
        messages: ``(text, expected intent)``; ``out_of_scope`` marks a message
            that should reach the generator, any other intent a scripted one.
        rows: ``parse_all`` output for the same messages (DIET's ranking and
            the gate's similarity ``sim``).
        settings: ``shipped_settings``.

    Raises:
        ValueError: if there are no scripted or no out-of-scope messages.
    """
    n_scripted = sum(intent != OUT_OF_SCOPE for _, intent in messages)
    n_oos = len(messages) - n_scripted
    if not n_scripted or not n_oos:
        raise ValueError("the held-out set needs scripted and out-of-scope messages")
    t, amb, gate = settings["threshold"], settings["ambiguity"], settings["gate"]

    def finals(g) -> List[str]:
        return [FALLBACK if falls_back(r, t, amb, g) else r["intent"] for r in rows]

    with_gate, without = finals(gate), finals(None)
    open_intents = settings["open_intents"]
    changed = [{"text": text, "expected": expected, "diet": row["intent"], "sim": row.get("sim"),
                "with": w, "without": wo}
               for (text, expected), row, w, wo in zip(messages, rows, with_gate, without)
               if route(w, open_intents) != route(wo, open_intents)]
    sweep = {} if gate is None else {
        str(s): _counts(messages, finals({**gate, "threshold": s}), open_intents)
        for s in GATE_THRESHOLDS}
    return {"counts": {"with gate": _counts(messages, with_gate, open_intents),
                       "without gate": _counts(messages, without, open_intents)},
            "sweep": sweep, "n_scripted": n_scripted, "n_oos": n_oos, "changed": changed}


def report(result: dict) -> str:
    """The Markdown section (fenced by MARK) for docs/benchmarks.md."""
    scored, settings = result["scored"], result["settings"]
    ns, no = scored["n_scripted"], scored["n_oos"]

    def pct(k: int, n: int) -> str:
        return f"{k}/{n} ({100 * k / n:.0f}%)"

    rows = "\n".join(
        f"| {variant} | {pct(c['scripted_right'], ns)} | {pct(c['scripted_to_generator'], ns)} "
        f"| {pct(c['oos_to_generator'], no)} |" for variant, c in scored["counts"].items())
    changed = "\n".join(
        f"| {c['text']} | {c['expected']} | {c['diet']} | "
        f"{'' if c['sim'] is None else format(c['sim'], '.2f')} | {c['without']} -> {c['with']} |"
        for c in scored["changed"]) or "| (none) | | | | |"
    gate = settings["gate"]
    gate_text = (f"the nearest-example gate at {gate['threshold']}" if gate
                 else "no nearest-example gate")
    sweep = "\n".join(
        f"| {s}{' (shipped)' if gate and float(s) == gate['threshold'] else ''} "
        f"| {pct(c['scripted_right'], ns)} | {pct(c['scripted_to_generator'], ns)} "
        f"| {pct(c['oos_to_generator'], no)} |" for s, c in scored["sweep"].items())
    return f"""{MARK}
## The project's own intents, on messages it never saw

Command: `{result["command"]}` ({result["date"]}; {result["machine"]}).
{ns} paraphrases of the scripted intents and {no} out-of-scope questions, written for
this check (bench/data/nlu_heldout.yml; `rasa train` never reads it), parsed once by
the trained archive; shipped: FallbackClassifier at {settings["threshold"]} and
{gate_text}. "Without gate" reads the same parse through the FallbackClassifier
rule alone; the routes come from DIET's ranking and the gate's similarity with
Rasa's fallback rule, so the archive's own thresholds do not matter. A turn reaches the generator when its intent is one of the GPT policy's
open intents ({", ".join(settings["open_intents"])}).

| variant | scripted messages routed right | scripted messages sent to the generator | out-of-scope messages sent to the generator |
|---|---|---|---|
{rows}

Messages whose route the gate changed (similarity: cosine to the nearest training
example of DIET's intent):

| message | expected | DIET's intent | similarity | without gate -> with gate |
|---|---|---|---|---|
{changed}

The gate's threshold moved, FallbackClassifier as shipped:

| gate threshold | scripted messages routed right | scripted messages sent to the generator | out-of-scope messages sent to the generator |
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
    settings = shipped_settings(args.config)
    rows = parse_all(args.model, [text for text, _ in messages])
    result = {"scored": score(messages, rows, settings), "settings": settings,
              "date": datetime.now().strftime("%Y-%m-%d"), "machine": machine(),
              "command": " ".join(["python bench/nlu_heldout.py"] + sys.argv[1:])}
    section = report(result)
    print(section)
    if args.report:
        write_section(args.report, MARK, section)
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
