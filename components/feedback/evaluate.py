"""Comparing a candidate generator with the current one on held-out pairs.

``evaluate_candidate`` scores both checkpoints on the same held-out pairs
(JSONL, one ``{"reply_id", "context", "reply", "source", "model_version"}``
object per line), applies the promotion rule below and writes ``report.md``,
``metrics.png``, ``rating_trend.png`` and ``decision.json`` into one folder,
atomically. Per generator:

- perplexity of the reference replies: exp(mean negative log-likelihood per
  reply token, EOS included), prompts built as in training (``train.encode``);
- greedy replies (repetition penalty 1.3, at most ``max_new_tokens`` tokens and
  2 s each), post-processed by ``components.generator.guardrails.postprocess`` as the bot
  does before sending them;
- relevance: mean cosine similarity of the post-processed replies to the
  references (``relevance.relevance``, all-MiniLM-L6-v2);
- guardrail pass rate: share of replies sent as generated; a reply that is
  empty or blocked after post-processing, or hit the 2 s budget, gets the
  canned fallback (``FALLBACK_TEXT``), as in the bot, and that fallback text is
  what relevance scores;
- median and 95th-percentile latency of decoding one reply, ms (after one
  untimed warm-up reply per model).

With a tracker store URL, the report also shows the users' ratings per day
(UTC) and model version.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from components.feedback import report
from components.feedback.report import fmt_metric
from components.generator.prompt import ROLES, Turn

# --- Promotion rule: the candidate replaces the current generator only if ALL hold ---
# Perplexity of the reference replies has to be strictly lower (the candidate
# models what agents and helpful replies say better).
PERPLEXITY_MUST_IMPROVE = True
# Relevance (cosine similarity, -1..1) may drop by at most this much.
RELEVANCE_TOLERANCE = 0.01
# Guardrail pass rate (share 0..1) may drop by at most this much (2 points).
GUARDRAIL_PASS_TOLERANCE = 0.02
# Median latency may grow to at most this multiple of the current median.
LATENCY_MAX_FACTOR = 1.5

# Decoding used for the comparison: greedy, as the bot decodes by default.
REPETITION_PENALTY = 1.3
MAX_TIME_S = 2.0  # s per reply, as endpoints.yml `nlg.decoding.max_time_s`
PROMPT_TURNS = 6  # conversation turns in each prompt, as endpoints.yml `nlg.max_turns`
PERPLEXITY_BATCH = 8  # examples per forward pass when scoring the references
N_EXAMPLES = 3  # held-out conversations shown in the report
# Sent when a reply fails the guardrails: the text of `utter_gpt_reply` in domain.yml.
FALLBACK_TEXT = ("I'm not sure I can answer that one. I can help with orders, returns, "
                 "refunds, shipping and accounts — or connect you with a person.")

REQUIRED_KEYS = ("reply_id", "context", "reply", "source", "model_version")
METRICS = (  # key, label, higher is better
    ("perplexity", "perplexity", False),
    ("relevance", "relevance (cosine)", True),
    ("guardrail_pass_rate", "guardrail pass rate", True),
    ("latency_median_ms", "median latency (ms)", False),
)


class EvaluationError(ValueError):
    """The evaluation inputs are unusable; the message names the item and the fix."""


@dataclass(frozen=True)
class HeldoutPair:
    """One held-out conversation and the reply it should have got."""

    reply_id: str
    context: List[Turn]  # oldest first, ends with a user turn
    reply: str  # reference reply
    source: str  # "correction" or "helpful"
    model_version: Optional[str]  # the generator whose reply was rated or corrected


def load_heldout(path: Path) -> List[HeldoutPair]:
    """Reads the held-out JSONL file; blank lines are skipped.

    Raises:
        EvaluationError: if the file is missing or has no pairs, or a line is
            not a JSON object with the keys ``REQUIRED_KEYS``, a context of
            ``{"role", "text"}`` turns ending with a user turn and a non-empty
            reply (the message gives the line number).
    """
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"The held-out file '{path}' does not exist; point `heldout` at "
                              f"the JSONL file of held-out pairs.")
    pairs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                pairs.append(_parse_pair(line, number, path))
    if not pairs:
        raise EvaluationError(f"The held-out file '{path}' is empty; it needs at least one "
                              f"JSON line {{\"reply_id\", \"context\", \"reply\", ...}}.")
    return pairs


def _parse_pair(line: str, number: int, path: Path) -> HeldoutPair:
    where = f"Line {number} of '{path}'"
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise EvaluationError(f"{where} is not JSON ({e}); each line has to be one "
                              f"JSON object.") from e
    if not isinstance(obj, dict):
        raise EvaluationError(f"{where} is a JSON {type(obj).__name__}, not an object.")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise EvaluationError(f"{where} lacks the key(s) {missing}; every line needs "
                              f"{list(REQUIRED_KEYS)}.")
    context = obj["context"]
    if not isinstance(context, list) or not context:
        raise EvaluationError(f"{where}: `context` has to be a non-empty list of "
                              f"{{\"role\", \"text\"}} turns.")
    turns = []
    for i, turn in enumerate(context):
        if (not isinstance(turn, dict) or turn.get("role") not in ROLES
                or not isinstance(turn.get("text"), str)):
            raise EvaluationError(f"{where}: context turn {i} is {turn!r}; it has to be "
                                  f"{{\"role\": \"user\"|\"assistant\", \"text\": str}}.")
        turns.append(Turn(turn["role"], turn["text"]))
    if turns[-1].role != "user":
        raise EvaluationError(f"{where}: the context ends with an assistant turn; it has to "
                              f"end with the user turn that the reply answers.")
    if not isinstance(obj["reply"], str) or not obj["reply"].strip():
        raise EvaluationError(f"{where}: `reply` has to be a non-empty string.")
    return HeldoutPair(str(obj["reply_id"]), turns, obj["reply"], str(obj["source"]),
                       obj["model_version"])


# --------------------------------------------------------------------------- scoring

def perplexity(generator, checkpoint: Path, pairs: Sequence[HeldoutPair]) -> Tuple[float, int]:
    """Perplexity of the reference replies under ``generator`` and their token count.

    Examples are encoded with ``train.encode`` (prompt cut from the left, loss
    on reply tokens and EOS only) at the checkpoint's training ``max_seq_len``
    (``generator_meta.json``; TrainConfig's default for other checkpoints),
    capped at the model's context window. Perplexity is exp(mean NLL per
    reply token, nats); ``math.inf`` when that overflows.
    """
    from components.generator.config import TrainConfig
    from components.generator.generator import read_meta
    from components.generator.train import encode, evaluate_loss

    trained = read_meta(checkpoint).get("train_config") or {}
    seq_len = min(int(trained.get("max_seq_len", TrainConfig.max_seq_len)),
                  generator.context_tokens)
    cfg = TrainConfig(max_seq_len=seq_len, n_positions=generator.context_tokens,
                      max_turns=PROMPT_TURNS, system_prompt=generator.system_prompt)
    data = encode(generator.tokenizer, [(p.context, p.reply) for p in pairs], cfg)
    nll = evaluate_loss(generator.model, data, PERPLEXITY_BATCH, generator.tokenizer.pad_token_id)
    tokens = sum(sum(1 for t in labels[1:] if t != -100) for _, labels in data)
    return (math.exp(nll) if nll < 700 else math.inf), tokens


def score_generator(generator, checkpoint: Path, pairs: Sequence[HeldoutPair],
                    max_new_tokens: int, progress: bool = True, label: str = ""
                    ) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """All metrics of one generator, and its reply to each pair.

    Returns:
        (metrics, replies): metrics holds ``perplexity``, ``reference_tokens``,
        ``relevance``, ``guardrail_pass_rate``, ``latency_median_ms``,
        ``latency_p95_ms`` and ``fallbacks`` (reason -> count); each reply is
        ``{"raw", "text", "fallback", "latency_ms", "relevance"}``.

    Raises:
        EvaluationError: if ``pairs`` is empty or ``max_new_tokens`` leaves no
            room for a prompt in the generator's context window.
    """
    import numpy as np
    from tqdm.auto import tqdm

    from components.feedback.relevance import relevance
    from components.generator.config import GenerationConfig
    from components.generator.guardrails import GuardrailConfig, postprocess

    if not pairs:
        raise EvaluationError("score_generator() needs at least one held-out pair.")
    if max_new_tokens >= generator.context_tokens:
        raise EvaluationError(f"max_new_tokens={max_new_tokens} does not fit the "
                              f"{generator.context_tokens}-token context of "
                              f"{generator.model_version}; lower max_new_tokens.")
    ppl, ref_tokens = perplexity(generator, checkpoint, pairs)
    decoding = GenerationConfig(do_sample=False, repetition_penalty=REPETITION_PENALTY,
                                max_new_tokens=max_new_tokens, max_time_s=MAX_TIME_S)
    guardrails = GuardrailConfig()
    # One untimed reply first, so that one-off set-up costs are not counted as latency.
    generator.generate(pairs[0].context, decoding, PROMPT_TURNS)
    replies = []
    for pair in tqdm(pairs, desc=f"{label or generator.model_version} replies", unit="reply",
                     disable=not progress):
        generation = generator.generate(pair.context, decoding, PROMPT_TURNS)
        result = postprocess(generation.text, guardrails, FALLBACK_TEXT,
                             timed_out=generation.hit_time_budget)
        replies.append({"raw": generation.text, "text": result.text,
                        "fallback": result.fallback, "latency_ms": generation.latency_ms})
    scores = relevance([r["text"] for r in replies], [p.reply for p in pairs])
    for reply, score in zip(replies, scores):
        reply["relevance"] = float(score)
    latencies = np.array([r["latency_ms"] for r in replies], dtype=float)
    metrics = {
        "perplexity": ppl,
        "reference_tokens": ref_tokens,
        "relevance": float(np.mean(scores)),
        "guardrail_pass_rate": sum(r["fallback"] is None for r in replies) / len(replies),
        "latency_median_ms": float(np.median(latencies)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),  # linear interpolation
        "fallbacks": dict(Counter(r["fallback"] for r in replies if r["fallback"])),
    }
    return metrics, replies


# --------------------------------------------------------------------------- decision

def decide(current: Dict[str, float], candidate: Dict[str, float]) -> Tuple[bool, List[str]]:
    """The promotion rule (constants at the top of this module) and one reason per test.

    Each reason states the change and its verdict, e.g.
    ``"perplexity 41.2 -> 35.0 (better)"``. Returns (promote, reasons).
    """
    checks = check_rule(current, candidate)
    return all(ok for ok, _ in checks), [reason for _, reason in checks]


def check_rule(current: Dict[str, float], candidate: Dict[str, float]) -> List[Tuple[bool, str]]:
    """(passed, reason) for each of the four tests: perplexity, relevance, guardrails, latency."""
    checks = []

    ppl_a, ppl_b = current["perplexity"], candidate["perplexity"]
    checks.append((ppl_b < ppl_a or not PERPLEXITY_MUST_IMPROVE,
                   f"perplexity {fmt_metric('perplexity', ppl_a)} -> {fmt_metric('perplexity', ppl_b)} "
                   f"({'better' if ppl_b < ppl_a else 'not better: it has to be lower'})"))

    rel_a, rel_b = current["relevance"], candidate["relevance"]
    passed = rel_b >= rel_a - RELEVANCE_TOLERANCE
    verdict = ("better" if rel_b > rel_a else "same" if rel_b == rel_a else
               f"worse, within the {RELEVANCE_TOLERANCE:g} tolerance" if passed else
               f"worse by more than {RELEVANCE_TOLERANCE:g}")
    checks.append((passed, f"relevance {rel_a:.3f} -> {rel_b:.3f} ({verdict})"))

    pass_a, pass_b = current["guardrail_pass_rate"], candidate["guardrail_pass_rate"]
    passed = pass_b >= pass_a - GUARDRAIL_PASS_TOLERANCE
    points = GUARDRAIL_PASS_TOLERANCE * 100
    verdict = ("better" if pass_b > pass_a else "same" if pass_b == pass_a else
               f"worse, within the {points:g}-point tolerance" if passed else
               f"worse by more than {points:g} points")
    checks.append((passed, f"guardrail pass rate {pass_a:.1%} -> {pass_b:.1%} ({verdict})"))

    lat_a, lat_b = current["latency_median_ms"], candidate["latency_median_ms"]
    passed = lat_b <= LATENCY_MAX_FACTOR * lat_a
    verdict = ("faster" if lat_b < lat_a else
               f"slower, within {LATENCY_MAX_FACTOR:g}x the current" if passed else
               f"slower than {LATENCY_MAX_FACTOR:g}x the current")
    checks.append((passed, f"median latency {lat_a:.0f} ms -> {lat_b:.0f} ms ({verdict})"))
    return checks


# --------------------------------------------------------------------------- ratings

def rating_trend(store_url: str) -> Tuple[List[Dict[str, Any]], List[str]]:
    """Share of rated generated turns rated helpful, per day (UTC) and model version.

    The day is that of the rated reply (its bot event's timestamp); the
    latest rating of a reply counts; replies without a model version are
    grouped as ``"unknown"``.

    Returns:
        (rows, warnings): rows sorted by day then version, each
        ``{"day": "YYYY-MM-DD", "model_version", "rated", "helpful",
        "not_helpful", "helpful_share"}``; warnings are the store's
        ``ReadReport.warnings()``.

    Raises:
        store.StoreError: if the tracker store cannot be read.
    """
    from components.feedback.conversations import parse_conversation
    from components.feedback.store import ReadReport, TrackerStoreReader

    report = ReadReport()
    counts: Dict[Tuple[str, str], Counter] = defaultdict(Counter)
    for sender, events in TrackerStoreReader(store_url).conversations(report=report):
        for turn in parse_conversation(sender, events).generated:
            if turn.rating is None:
                continue
            day = datetime.fromtimestamp(turn.timestamp, timezone.utc).date().isoformat()
            counts[(day, turn.model_version or "unknown")][turn.rating] += 1
    rows = []
    for (day, version), c in sorted(counts.items()):
        rated = c["helpful"] + c["not_helpful"]
        rows.append({"day": day, "model_version": version, "rated": rated,
                     "helpful": c["helpful"], "not_helpful": c["not_helpful"],
                     "helpful_share": c["helpful"] / rated})
    return rows, report.warnings()


def _jsonable(metrics: Dict[str, Any]) -> Dict[str, Any]:
    """Non-finite floats become None, so decision.json stays strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in metrics.items()}


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    """Moves ``tmp`` to ``out_dir``, replacing an existing folder only once ``tmp`` is complete."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}-old-{uuid.uuid4().hex[:8]}")
        out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except OSError:
        if old is not None:
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _example_indices(n: int, k: int = N_EXAMPLES) -> List[int]:
    """Up to ``k`` indices spread evenly over ``range(n)``, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


# --------------------------------------------------------------------------- entry point

def evaluate_candidate(current: Path, candidate: Path, heldout: Path, out_dir: Path,
                       store_url: Optional[str] = None, max_new_tokens: int = 48,
                       progress: bool = True) -> Dict[str, Any]:
    """Scores ``candidate`` against ``current`` and writes the report folder ``out_dir``.

    ``out_dir`` receives ``report.md``, ``metrics.png``, ``rating_trend.png``
    and ``decision.json``; it is written in a temporary sibling folder and
    renamed into place, replacing an existing ``out_dir`` only on success.

    Returns:
        The decision: ``{"promote": bool, "reasons": [str], "current_version",
        "candidate_version", "metrics": {"current": {...}, "candidate": {...}},
        "heldout": str, "n_heldout": int, "created_at": ISO 8601 UTC}``; metric
        values are as in ``score_generator`` (an infinite perplexity is None).

    Raises:
        EvaluationError: for a missing or empty held-out file, a bad line in
            it, an ``out_dir`` that is a file, or a ``max_new_tokens`` too
            large for a model.
        GeneratorLoadError: if a checkpoint cannot be loaded.
        store.StoreError: if ``store_url`` is given and cannot be read.
    """
    from components.generator.generator import Generator

    current, candidate = Path(current), Path(candidate)
    heldout, out_dir = Path(heldout), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EvaluationError(f"out_dir '{out_dir}' is a file; give a folder path "
                              f"(it is created, or replaced if it exists).")
    pairs = load_heldout(heldout)
    trend, warnings = rating_trend(store_url) if store_url else (None, [])
    generators = {"current": Generator.load(current), "candidate": Generator.load(candidate)}
    paths = {"current": current, "candidate": candidate}
    raw, replies = {}, {}
    for name, generator in generators.items():
        raw[name], replies[name] = score_generator(generator, paths[name], pairs, max_new_tokens,
                                                   progress, label=name)
    promote, reasons = decide(raw["current"], raw["candidate"])
    decision = {
        "promote": promote,
        "reasons": reasons,
        "current_version": generators["current"].model_version,
        "candidate_version": generators["candidate"].model_version,
        "metrics": {name: _jsonable(m) for name, m in raw.items()},
        "heldout": str(heldout),
        "n_heldout": len(pairs),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    examples = [(pairs[i], replies["current"][i], replies["candidate"][i])
                for i in _example_indices(len(pairs))]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        report.write_report(tmp / "report.md", decision, raw, trend, warnings, examples,
                            check_rule(raw["current"], raw["candidate"]), METRICS)
        report.plot_metrics(tmp / "metrics.png", raw,
                            (decision["current_version"], decision["candidate_version"]),
                            METRICS)
        report.plot_trend(tmp / "rating_trend.png", trend)
        (tmp / "decision.json").write_text(json.dumps(decision, indent=2), encoding="utf-8")
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return decision
