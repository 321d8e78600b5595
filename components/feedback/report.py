"""The evaluation report: ``report.md`` and its two PNG plots (matplotlib, Agg backend).

Pure formatting of numbers ``evaluate.py`` computed; nothing here scores a model.
"""
from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

Metric = Tuple[str, str, bool]  # (key, label, higher is better)


def fmt_metric(key: str, value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "inf" if value == math.inf else "n/a"
    if key == "guardrail_pass_rate":
        return f"{value:.1%}"
    if key == "relevance":
        return f"{value:.3f}"
    if key.startswith("latency"):
        return f"{value:.0f}"
    return f"{value:.1f}"


def _delta(key: str, a: float, b: float) -> str:
    if not (math.isfinite(a) and math.isfinite(b)):
        return "n/a"
    if key == "guardrail_pass_rate":
        return f"{(b - a) * 100:+.1f} pts"
    if key == "relevance":
        return f"{b - a:+.3f}"
    return f"{b - a:+.1f}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(empty)"


def write_report(path: Path, decision: Dict[str, Any], raw: Dict[str, Dict[str, Any]],
                 trend: Optional[List[Dict[str, Any]]], warnings: Sequence[str],
                 examples: Sequence[Tuple[Any, Dict, Dict]],
                 checks: Sequence[Tuple[bool, str]], metrics: Sequence[Metric]) -> None:
    """Writes ``report.md``; ``trend`` is None when no tracker store was given.

    ``examples``: (held-out pair, current reply, candidate reply) triples;
    ``checks``: (passed, reason) per rule of the promotion decision.
    """
    from tabulate import tabulate

    current, candidate = raw["current"], raw["candidate"]
    rows = [[label, fmt_metric(k, current[k]), fmt_metric(k, candidate[k]),
             _delta(k, current[k], candidate[k]),
             "higher" if up else "lower"] for k, label, up in metrics]
    rows.append(["p95 latency (ms)", fmt_metric("latency_p95_ms", current["latency_p95_ms"]),
                 fmt_metric("latency_p95_ms", candidate["latency_p95_ms"]),
                 _delta("latency_p95_ms", current["latency_p95_ms"], candidate["latency_p95_ms"]),
                 "lower"])
    verdict = "PROMOTE the candidate" if decision["promote"] else "KEEP the current generator"
    out = [
        "# Generator evaluation",
        "",
        f"- current: `{decision['current_version']}`",
        f"- candidate: `{decision['candidate_version']}`",
        f"- held-out pairs: {decision['n_heldout']} from `{decision['heldout']}`",
        f"- created: {decision['created_at']}",
        "",
        "## Metrics",
        "",
        tabulate(rows, headers=["metric", "current", "candidate", "delta", "better"],
                 tablefmt="github"),
        "",
        "![metrics](metrics.png)",
        "",
        f"## Decision: {verdict}",
        "",
        "The candidate is promoted only if every test passes:",
        "",
    ]
    out += [f"- {'pass' if ok else 'FAIL'}: {reason}"
            for ok, reason in checks]
    out += ["", "## Rating trend", ""]
    if trend is None:
        out.append("No tracker store was given, so there are no ratings to show.")
    elif not trend:
        out.append("The tracker store holds no rated generated replies yet.")
    else:
        out.append(tabulate(
            [[r["day"], r["model_version"], r["rated"], r["helpful"], f"{r['helpful_share']:.0%}"]
             for r in trend],
            headers=["day (UTC)", "model version", "rated", "helpful", "helpful share"],
            tablefmt="github"))
    out += ["", "![rating trend](rating_trend.png)", ""]
    out += [f"> warning: {w}" for w in warnings]
    out += ["## Examples", ""]
    for i, (pair, a, b) in enumerate(examples, start=1):
        out += [f"### {i}. `{pair.reply_id}` ({pair.source})", ""]
        out += [f"> **{t.role}:** {_one_line(t.text)}  " for t in pair.context]
        out += ["",
                f"- current: {_one_line(a['text'])}" + (f" *(fallback: {a['fallback']})*"
                                                       if a["fallback"] else ""),
                f"- candidate: {_one_line(b['text'])}" + (f" *(fallback: {b['fallback']})*"
                                                         if b["fallback"] else ""),
                f"- reference: {_one_line(pair.reply)}", ""]
    path.write_text("\n".join(out), encoding="utf-8")


def plot_metrics(path: Path, raw: Dict[str, Dict[str, Any]], versions: Tuple[str, str],
                 metrics: Sequence[Metric]) -> None:
    """One bar chart per metric, side by side, current vs candidate."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(metrics))
    names = [f"current\n{_short(versions[0])}", f"candidate\n{_short(versions[1])}"]
    for ax, (key, label, up) in zip(axes, metrics):
        values = [raw["current"][key], raw["candidate"][key]]
        shown = [v if math.isfinite(v) else 0.0 for v in values]
        bars = ax.bar(names, shown, color=["#8c8c8c", "#2b7bb9"])
        for bar, v in zip(bars, values):
            ax.annotate(fmt_metric(key, v), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=9)
        ax.set_title(f"{label}\n({'higher' if up else 'lower'} is better)", fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _short(version: str, width: int = 24) -> str:
    return version if len(version) <= width else version[: width - 1] + "…"


def plot_trend(path: Path, trend: Optional[List[Dict[str, Any]]]) -> None:
    """Helpful share per day (date axis), one line per model version, each point labelled
    with its number of ratings; a note instead when there are no ratings."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    if not trend:
        ax.text(0.5, 0.5, "No tracker store given" if trend is None else "No ratings yet",
                ha="center", va="center", fontsize=14, transform=ax.transAxes)
        ax.set_axis_off()
    else:
        for version in sorted({r["model_version"] for r in trend}):
            mine = [r for r in trend if r["model_version"] == version]
            x = [date.fromisoformat(r["day"]) for r in mine]
            ax.plot(x, [r["helpful_share"] for r in mine], marker="o", label=_short(version, 40))
            for xi, r in zip(x, mine):
                ax.annotate(f"n={r['rated']}", (xi, r["helpful_share"]), fontsize=7,
                            textcoords="offset points", xytext=(0, 5), ha="center")
        fig.autofmt_xdate()
        ax.set_ylim(-0.05, 1.1)
        ax.set_ylabel("share rated helpful")
        ax.set_xlabel("day (UTC)")
        ax.legend(fontsize=8)
    ax.set_title("User ratings of generated replies")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
