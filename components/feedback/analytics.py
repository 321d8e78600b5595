"""What the tracker store says about the bot: traffic, generated replies, ratings.

``summarise(url)`` reads the whole store once (``store.TrackerStoreReader``,
read-only) and counts:

- conversations (senders), sessions (cut at ``session_started``/``restart``),
  user turns (typed messages; button payloads such as ``/rate_reply{...}``
  are counted apart) and bot turns;
- generated turns: bot events carrying ``metadata.generation`` (written by
  ``components.nlg.generative_nlg.GenerativeNLG``), their share of bot turns, and those that
  sent the canned fallback (``GenerationRecord.answered`` False: neither generated
  nor answered from the help center) by reason;
- ratings per model version (``conversations.parse_conversation``: the latest
  rating of a reply counts);
- the knowledge gaps: the most frequent user messages that no article answered:
  the reply was the canned fallback (no help-center article was relevant and the
  generator's text was refused or failed) or a written chit-chat reply (mode
  "retrieved"), or NLU gave them the intent ``nlu_fallback`` and no article
  answered them either. A follow-up is listed as it was searched, with the
  messages before it (``GenerationRecord.query``).

``format_table`` renders the summary as text tables, ``plot`` as a PNG.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from components.feedback import conversations as conv
from components.feedback import store as store_lib
from components.generator.answers import EXTRACTIVE, GENERATED, RETRIEVED
from shared_names import HELPFUL, NOT_HELPFUL, GenerationRecord

TOP_FALLBACK_MESSAGES = 10
NLU_FALLBACK_INTENT = "nlu_fallback"

Event = Dict[str, Any]


def _generation(event: Event) -> Optional[GenerationRecord]:
    """``metadata.generation`` of a bot event, or None."""
    return GenerationRecord.from_metadata(event.get("metadata"))


def _intent(event: Event) -> Optional[str]:
    intent = (event.get("parse_data") or {}).get("intent") or {}
    return intent.get("name") if isinstance(intent, dict) else None


def _is_payload(text: str) -> bool:
    return text.startswith("/")


def _from_article(generation: Optional[GenerationRecord]) -> bool:
    """True for a reply that answered from a help-center article (extractive, or generated
    from passages)."""
    if generation is None:
        return False
    cited = any(isinstance(s, dict) and s.get("slug") for s in generation.sources or ())
    return generation.mode == EXTRACTIVE or (generation.mode == GENERATED and cited)


def fallback_messages(session: Sequence[Event]) -> List[str]:
    """User messages of one session that no article answered, lower-cased and stripped.

    A message counts when the first bot event after it (before the next user
    message) is a generated turn that is not an answer (``generated`` False and
    no help-center answer) or a written chit-chat reply; and when its intent is
    ``nlu_fallback``, unless that bot event answered from a help-center article;
    and when a follow-up's answer only repeated the last reply (``repeated``).
    Button payloads (``/...``) are skipped.
    """
    found: List[str] = []
    pending: Optional[str] = None  # text of the last user message not yet answered
    unknown = False  # that message's intent was nlu_fallback
    for event in session:
        kind = event["event"]
        if kind == "user":
            if pending is not None and unknown:
                found.append(pending.strip().lower())  # nothing answered it
            text = event.get("text")
            pending, unknown = None, False
            if not isinstance(text, str) or _is_payload(text):
                continue
            pending, unknown = text, _intent(event) == NLU_FALLBACK_INTENT
        elif kind == "bot" and pending is not None:
            generation = _generation(event)
            if unknown:
                gap = not _from_article(generation)
            else:
                # A written chit-chat reply is no answer from an article either.
                gap = generation is not None and (not generation.answered
                                                  or generation.mode == RETRIEVED)
            # A follow-up whose answer only repeated the last reply: the article says no more.
            gap = gap or bool(generation is not None and generation.repeated)
            if gap:  # a follow-up ("and express?") as searched, with the messages before it
                found.append(((generation.query if generation else None) or pending)
                             .strip().lower())
            pending, unknown = None, False
    if pending is not None and unknown:
        found.append(pending.strip().lower())
    return found


def _iso(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), timezone.utc).isoformat(timespec="seconds")


def summarise(store_url: str) -> Dict[str, Any]:
    """Counts over every conversation in the tracker store at ``store_url``.

    Returns:
        ``{"store": redacted URL, "events": rows read, "first_event",
        "last_event": ISO 8601 UTC or None, "conversations", "sessions",
        "scripted_sessions" (sessions in which a rule, story or form ran an action),
        "user_turns", "button_payloads", "bot_turns", "generated_turns",
        "generated_share" (of bot turns, 0..1, None without bot turns),
        "fallback_turns", "fallback_reasons": {reason: n},
        "ratings": {model_version: {"rated", "helpful", "not_helpful",
        "helpful_rate"}}, "orphan_ratings", "top_fallback_messages":
        [{"text", "count"}] (at most 10, most frequent first),
        "warnings": [str]}``.

    Raises:
        store.StoreError: if the store cannot be read or has no events.
    """
    reader = store_lib.TrackerStoreReader(store_url)
    stats = reader.stats()
    if not stats["events"]:
        raise store_lib.StoreError(
            f"The tracker store {store_lib.redact_url(store_url)} is empty; talk to the bot "
            f"first (make chat), or point --store at the database the server writes.")
    report = store_lib.ReadReport()
    counts: Counter = Counter()
    reasons: Counter = Counter()
    failed: Counter = Counter()
    ratings: Dict[str, Counter] = defaultdict(Counter)
    for sender, events in reader.conversations(report=report):
        counts["conversations"] += 1
        sessions = conv.split_sessions(events)
        counts["sessions"] += len(sessions)
        counts["scripted_sessions"] += sum(conv.has_scripted_turn(s) for s in sessions)
        for event in events:
            if event["event"] == "user":
                payload = isinstance(event.get("text"), str) and _is_payload(event["text"])
                counts["button_payloads" if payload else "user_turns"] += 1
            elif event["event"] == "bot":
                counts["bot_turns"] += 1
                generation = _generation(event)
                if generation is not None:
                    counts["generated_turns"] += 1
                    if not generation.answered:
                        counts["fallback_turns"] += 1
                        reasons[str(generation.fallback or "unknown")] += 1
        for session in sessions:
            failed.update(fallback_messages(session))
        parsed = conv.parse_conversation(sender, events)
        counts["orphan_ratings"] += len(parsed.orphan_ratings)
        for turn in parsed.generated:
            if turn.rating is not None:
                ratings[turn.model_version or "unknown"][turn.rating] += 1
    by_version = {}
    for version, c in sorted(ratings.items()):
        rated = c[HELPFUL] + c[NOT_HELPFUL]
        by_version[version] = {"rated": rated, "helpful": c[HELPFUL],
                               "not_helpful": c[NOT_HELPFUL],
                               "helpful_rate": c[HELPFUL] / rated if rated else None}
    top = sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FALLBACK_MESSAGES]
    bot = counts["bot_turns"]
    return {
        "store": store_lib.redact_url(store_url),
        "events": report.rows,
        "first_event": _iso(stats["first"]),
        "last_event": _iso(stats["last"]),
        **{k: counts[k] for k in ("conversations", "sessions", "scripted_sessions",
                                  "user_turns", "button_payloads", "bot_turns",
                                  "generated_turns")},
        "generated_share": counts["generated_turns"] / bot if bot else None,
        "fallback_turns": counts["fallback_turns"],
        "fallback_reasons": dict(reasons.most_common()),
        "ratings": by_version,
        "orphan_ratings": counts["orphan_ratings"],
        "top_fallback_messages": [{"text": t, "count": n} for t, n in top],
        "warnings": report.warnings(),
    }


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def format_table(summary: Dict[str, Any]) -> str:
    """The summary as plain-text tables (``tabulate``), one section per kind of count."""
    from tabulate import tabulate

    s = summary
    overview = [
        ["store", s["store"]],
        ["period (UTC)", f"{s['first_event'] or '?'} .. {s['last_event'] or '?'}"],
        ["events", s["events"]],
        ["conversations", s["conversations"]],
        ["sessions", s["sessions"]],
        ["scripted sessions", s["scripted_sessions"]],
        ["user turns", s["user_turns"]],
        ["button payloads", s["button_payloads"]],
        ["bot turns", s["bot_turns"]],
        ["generated turns", f"{s['generated_turns']} ({_pct(s['generated_share'])} of bot turns)"],
        ["fallback generated turns", s["fallback_turns"]],
        ["ratings of unknown replies", s["orphan_ratings"]],
    ]
    parts = ["Tracker store summary", tabulate(overview, tablefmt="simple")]
    parts += ["", "Fallbacks by reason"]
    parts.append(tabulate(sorted(s["fallback_reasons"].items(), key=lambda kv: -kv[1]),
                          headers=["reason", "turns"], tablefmt="simple")
                 if s["fallback_reasons"] else "(none)")
    parts += ["", "Ratings by model version"]
    parts.append(tabulate(
        [[v, r["rated"], r["helpful"], r["not_helpful"], _pct(r["helpful_rate"])]
         for v, r in s["ratings"].items()],
        headers=["model version", "rated", "helpful", "not helpful", "helpful rate"],
        tablefmt="simple") if s["ratings"] else "(no ratings)")
    parts += ["", f"Knowledge gaps: the top {TOP_FALLBACK_MESSAGES} user messages that ended "
                  f"in a fallback (no article answered them)"]
    parts.append(tabulate([[m["count"], m["text"]] for m in s["top_fallback_messages"]],
                          headers=["count", "message"], tablefmt="simple")
                 if s["top_fallback_messages"] else "(none)")
    if s["warnings"]:
        parts += ["", "Warnings"] + [f"- {w}" for w in s["warnings"]]
    return "\n".join(parts) + "\n"


def plot(summary: Dict[str, Any], out_png: Path) -> Path:
    """Writes a PNG: bot turns generated vs scripted, and helpful rate per model version.

    The left panel splits bot turns into generated replies sent as generated,
    generated turns that sent the fallback, and scripted (domain) responses;
    the right one shows the helpful rate per model version with its count.
    Returns ``out_png``; its folder is created if missing.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})

    bot = summary["bot_turns"]
    generated_ok = summary["generated_turns"] - summary["fallback_turns"]
    parts = [("generated", generated_ok, "#2b7bb9"),
             ("generated → fallback", summary["fallback_turns"], "#e08b2c"),
             ("scripted", bot - summary["generated_turns"], "#8c8c8c")]
    bottom = 0.0
    for label, n, color in parts:
        share = n / bot if bot else 0.0
        left.bar(["bot turns"], [share], bottom=bottom, color=color, label=f"{label} ({n})")
        bottom += share
    left.set_ylim(0, 1)
    left.set_ylabel("share of bot turns")
    left.set_title(f"Generated vs scripted (n={bot})")
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08))

    ratings = summary["ratings"]
    if ratings:
        versions = list(ratings)
        rates = [ratings[v]["helpful_rate"] or 0.0 for v in versions]
        bars = right.bar(range(len(versions)), rates, color="#2b7bb9")
        for bar, v in zip(bars, versions):
            right.annotate(f"{ratings[v]['helpful_rate']:.0%} of {ratings[v]['rated']}",
                           (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                           ha="center", va="bottom", fontsize=8)
        right.set_xticks(range(len(versions)))
        right.set_xticklabels([v if len(v) <= 28 else v[:27] + "…" for v in versions],
                              rotation=20, ha="right", fontsize=8)
        right.set_ylim(0, 1.1)
        right.set_ylabel("share rated helpful")
    else:
        right.text(0.5, 0.5, "No ratings yet", ha="center", va="center", fontsize=14,
                   transform=right.transAxes)
        right.set_axis_off()
    right.set_title("Helpful rate per model version")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    return out_png
