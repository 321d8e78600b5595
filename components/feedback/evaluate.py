"""Comparing a candidate generator with the current one on held-out pairs.

``evaluate_candidate`` scores both checkpoints on the same held-out pairs
(JSONL, one ``{"reply_id", "context", "reply", "source", "model_version"}``
object per line), applies the promotion rule below and writes ``report.md``,
``metrics.png``, ``rating_trend.png`` and ``decision.json`` into one folder,
atomically. Per generator:

- perplexity of the reference replies: exp(mean negative log-likelihood per
  reply token, EOS included), prompts built as in training (``train.encode``);
- greedy replies decoded with the bot's settings (endpoints.yml
  ``nlg.decoding``: repetition penalty, at most ``max_new_tokens`` tokens and
  ``max_time_s`` each), post-processed by ``components.generator.guardrails.postprocess``
  as the bot does before sending them;
- relevance: mean cosine similarity of the post-processed replies to the
  references (``relevance.relevance``, all-MiniLM-L6-v2);
- guardrail pass rate: share of replies sent as generated; a reply that is
  empty or blocked after post-processing, or hit the time budget, gets the
  canned fallback (``fallback_text``: the bot's own text in domain.yml), as in
  the bot, and that fallback text is what relevance scores;
- median and 95th-percentile latency of decoding one reply, ms (after one
  untimed warm-up reply per model).

With a tracker store URL, the report also shows the users' ratings per day
(UTC) and model version.

The decoding settings and the canned text are read from the bot's own files,
domain.yml and endpoints.yml in the working directory (the project folder, for
the CLI) unless other paths are given, so the evaluation cannot drift from
what the bot sends.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from components.feedback import report
from components.feedback.report import fmt_metric
from components.generator.atomic import atomic_dir
from components.generator.config import GenerationConfig
from components.generator.prompt import ROLES, Turn
from shared_names import GPT_RESPONSE

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

# The bot's files: decoding from endpoints.yml `nlg.decoding` (always greedy here,
# so both generators are compared on the same deterministic replies), the canned
# fallback from domain.yml. Relative to the working directory.
DOMAIN_PATH = Path("domain.yml")
ENDPOINTS_PATH = Path("endpoints.yml")
PERPLEXITY_BATCH = 8  # examples per forward pass when scoring the references
N_EXAMPLES = 3  # held-out conversations shown in the report

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


# --------------------------------------------------------------------------- the bot's settings

def fallback_text(domain_path: Union[str, Path] = DOMAIN_PATH) -> str:
    """The canned reply the bot sends when a generated one fails.

    It is the (first) text of ``shared_names.GPT_RESPONSE`` in the domain file.

    Raises:
        EvaluationError: if the file is missing or not YAML, or the response has no text.
    """
    import yaml

    path = Path(domain_path)
    if not path.is_file():
        raise EvaluationError(f"No domain file at '{path}'; run from the project folder or "
                              f"give the path of domain.yml (domain_path).")
    try:
        domain = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise EvaluationError(f"'{path}' is not valid YAML: {e}") from e
    responses = domain.get("responses") if isinstance(domain, dict) else None
    for variation in (responses or {}).get(GPT_RESPONSE) or []:
        if isinstance(variation, dict) and variation.get("text"):
            return variation["text"]
    raise EvaluationError(f"'{path}' has no text for the response '{GPT_RESPONSE}'; the "
                          f"bot sends that text when a generated reply fails, so add it "
                          f"under `responses:`.")


def bot_settings(endpoints_path: Union[str, Path] = ENDPOINTS_PATH):
    """The bot's ``nlg`` settings (``components.nlg.config.NLGConfig``) from endpoints.yml.

    Raises:
        EvaluationError: if the file is missing or its ``nlg`` section is invalid.
    """
    # Lazily: components.nlg loads Rasa, which the rest of this module does not need.
    from components.nlg.config import NLGConfigError, read_nlg_config

    try:
        return read_nlg_config(endpoints_path)
    except (FileNotFoundError, NLGConfigError) as e:
        raise EvaluationError(f"The bot's settings could not be read: {e}") from e


def bot_decoding(max_new_tokens: Optional[int] = None,
                 endpoints_path: Union[str, Path] = ENDPOINTS_PATH) -> GenerationConfig:
    """The bot's decoding settings (endpoints.yml ``nlg.decoding``), made greedy.

    Args:
        max_new_tokens: tokens per reply, at most; None keeps the file's value.
        endpoints_path: the endpoints file to read.

    Raises:
        EvaluationError: if the file is missing or its ``nlg`` section is
            invalid, or ``max_new_tokens`` is not valid with its settings.
    """
    decoding = bot_settings(endpoints_path).decoding
    changes: Dict[str, Any] = {"do_sample": False}
    if max_new_tokens is not None:
        changes["max_new_tokens"] = max_new_tokens
    try:
        return dataclasses.replace(decoding, **changes)
    except ValueError as e:
        raise EvaluationError(f"max_new_tokens={max_new_tokens} does not go with "
                              f"'{endpoints_path}': {e}") from e


# --------------------------------------------------------------------------- scoring

def perplexity(generator, checkpoint: Path, pairs: Sequence[HeldoutPair],
               max_turns: Optional[int] = None) -> Tuple[float, int]:
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
                      max_turns=max_turns or bot_settings().max_turns,
                      system_prompt=generator.system_prompt)
    data = encode(generator.tokenizer, [(p.context, p.reply) for p in pairs], cfg)
    nll = evaluate_loss(generator.model, data, PERPLEXITY_BATCH, generator.tokenizer.pad_token_id)
    tokens = sum(sum(1 for t in labels[1:] if t != -100) for _, labels in data)
    return (math.exp(nll) if nll < 700 else math.inf), tokens


def score_generator(generator, checkpoint: Path, pairs: Sequence[HeldoutPair],
                    max_new_tokens: int, progress: bool = True, label: str = "", *,
                    domain_path: Union[str, Path] = DOMAIN_PATH,
                    endpoints_path: Union[str, Path] = ENDPOINTS_PATH,
                    ) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """All metrics of one generator, and its reply to each pair.

    Replies are decoded greedily with ``bot_decoding(max_new_tokens,
    endpoints_path)``; a reply that fails the guardrails is replaced by
    ``fallback_text(domain_path)``.

    Returns:
        (metrics, replies): metrics holds ``perplexity``, ``reference_tokens``,
        ``relevance``, ``guardrail_pass_rate``, ``latency_median_ms``,
        ``latency_p95_ms`` and ``fallbacks`` (reason -> count); each reply is
        ``{"raw", "text", "fallback", "latency_ms", "relevance"}``.

    Raises:
        EvaluationError: if ``pairs`` is empty, ``max_new_tokens`` leaves no
            room for a prompt in the generator's context window, or the domain
            or endpoints file cannot give the bot's settings.
    """
    import numpy as np
    from tqdm.auto import tqdm

    from components.feedback.relevance import relevance
    from components.generator.guardrails import postprocess

    if not pairs:
        raise EvaluationError("score_generator() needs at least one held-out pair.")
    if max_new_tokens >= generator.context_tokens:
        raise EvaluationError(f"max_new_tokens={max_new_tokens} does not fit the "
                              f"{generator.context_tokens}-token context of "
                              f"{generator.model_version}; lower max_new_tokens.")
    decoding = bot_decoding(max_new_tokens, endpoints_path)
    settings = bot_settings(endpoints_path)  # the bot's prompt turns and guardrails
    turns = settings.max_turns
    canned = fallback_text(domain_path)
    ppl, ref_tokens = perplexity(generator, checkpoint, pairs, turns)
    # One untimed reply first, so that one-off set-up costs are not counted as latency.
    generator.generate(pairs[0].context, decoding, turns)
    replies = []
    for pair in tqdm(pairs, desc=f"{label or generator.model_version} replies", unit="reply",
                     disable=not progress):
        generation = generator.generate(pair.context, decoding, turns)
        result = postprocess(generation.text, settings.guardrails, canned,
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
                   f"perplexity {fmt_metric('perplexity', ppl_a)} -> "
                   f"{fmt_metric('perplexity', ppl_b)} "
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


def _example_indices(n: int, k: int = N_EXAMPLES) -> List[int]:
    """Up to ``k`` indices spread evenly over ``range(n)``, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


# --------------------------------------------------------------------------- entry point

def evaluate_candidate(current: Path, candidate: Path, heldout: Path, out_dir: Path,
                       store_url: Optional[str] = None, max_new_tokens: Optional[int] = None,
                       progress: bool = True, *,
                       domain_path: Union[str, Path] = DOMAIN_PATH,
                       endpoints_path: Union[str, Path] = ENDPOINTS_PATH) -> Dict[str, Any]:
    """Scores ``candidate`` against ``current`` and writes the report folder ``out_dir``.

    Replies are decoded as the bot decodes them (``endpoints_path``'s
    ``nlg.decoding``, greedy; ``max_new_tokens`` tokens at most, None: the
    file's value, 48 in the project) and fall back to the bot's canned text
    (``domain_path``).

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
            it, an ``out_dir`` that is a file, a ``max_new_tokens`` too
            large for a model, or a domain or endpoints file that cannot give
            the bot's settings.
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
    # Before any model is loaded: a missing or bad file fails at once.
    max_new_tokens = bot_decoding(max_new_tokens, endpoints_path).max_new_tokens
    fallback_text(domain_path)
    trend, warnings = rating_trend(store_url) if store_url else (None, [])
    generators = {"current": Generator.load(current), "candidate": Generator.load(candidate)}
    paths = {"current": current, "candidate": candidate}
    raw, replies = {}, {}
    for name, generator in generators.items():
        raw[name], replies[name] = score_generator(generator, paths[name], pairs, max_new_tokens,
                                                   progress, label=name,
                                                   domain_path=domain_path,
                                                   endpoints_path=endpoints_path)
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
    with atomic_dir(out_dir, replace=True) as tmp:
        report.write_report(tmp / "report.md", decision, raw, trend, warnings, examples,
                            check_rule(raw["current"], raw["candidate"]), METRICS)
        report.plot_metrics(tmp / "metrics.png", raw,
                            (decision["current_version"], decision["candidate_version"]),
                            METRICS)
        report.plot_trend(tmp / "rating_trend.png", trend)
        (tmp / "decision.json").write_text(json.dumps(decision, indent=2), encoding="utf-8")
    return decision
