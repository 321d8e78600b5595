"""``python -m components.feedback``: the feedback loop's one command-line entry point.

    export     tracker store -> exports/<id>/{generated.jsonl, stories.yml}  (PII redacted)
    review     exports -> review.csv with empty corrected_reply and article columns
    dataset    exports + corrections -> train / heldout / negatives JSONL, retrieval labels
    finetune   current generator + dataset -> candidate checkpoint
    evaluate   candidate vs current on held-out pairs -> report.md, plots, decision.json
    promote    make the candidate current (only if the report says it is better)
    rollback   make the previous generator current again
    status     versions, the current one, and the promotion history
    analytics  conversations, generated share, ratings by version, fallback messages

Every command prints what it wrote. Errors are one line naming the problem
(exit 1), or the store (exit 2); nothing is half-written.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

DEFAULT_STORE_ENV = "TRACKER_STORE_URL"
DEFAULT_STORE = "sqlite:///var/tracker.db"


def _store_url(value: Optional[str]) -> str:
    import os

    return value or os.environ.get(DEFAULT_STORE_ENV) or DEFAULT_STORE


def _since(value: Optional[str]) -> Optional[float]:
    """``--since``: seconds since epoch or an ISO 8601 date/time (UTC if no zone)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since {value!r} is neither seconds since epoch nor an ISO date "
            f"such as 2026-11-01 or 2026-11-01T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def cmd_export(args) -> None:
    from components.feedback.export import export_dataset

    result = export_dataset(_store_url(args.store), args.out, since=args.since,
                            incremental=not args.full, stories=not args.no_stories)
    for line in result.warnings:
        print(f"warning: {line}")
    if result.folder is None:
        print("Nothing exported.")
        return
    print(f"Exported {result.generated} generated turns ({result.rated} rated) and "
          f"{result.stories} scripted sessions as test stories from {result.conversations} "
          f"conversations to {result.folder}/")


def cmd_review(args) -> None:
    from components.feedback.review import write_review_file

    n = write_review_file(args.exports, args.out)
    print(f"Wrote {n} turns to {args.out}: fill in `corrected_reply` for the bad ones "
          f"(not-helpful turns come first) and, where the help center has the answer, "
          f"`article` (its slug), then run `dataset`.")


def cmd_dataset(args) -> None:
    from components.feedback.review import DEFAULT_KNOWLEDGE, build_dataset

    # Article slugs are checked against the help center: --knowledge, or data/knowledge when
    # run from the project root; elsewhere without --knowledge only their form is checked.
    knowledge = args.knowledge or (DEFAULT_KNOWLEDGE if Path(DEFAULT_KNOWLEDGE).is_dir() else None)
    manifest = build_dataset(args.exports, args.out, args.corrections, args.heldout,
                             knowledge=knowledge)
    if manifest["unknown_corrections"]:
        print(f"warning: {len(manifest['unknown_corrections'])} correction(s) name reply ids "
              f"that are in no export and were ignored: {manifest['unknown_corrections'][:5]}")
    print(f"Dataset {args.out}/: {manifest['train']} train, {manifest['heldout']} held-out pairs "
          f"({manifest['corrections_used']} from corrections), {manifest['negatives']} negatives.")
    if manifest["article_labels"]:
        misses = manifest["retrieval_misses"]
        print(f"Retrieval labels: {manifest['article_labels']} turn(s) name the article that "
              f"should have answered ({misses['wrong_article']} cited another article, "
              f"{misses['no_article']} cited none), in {args.out}/retrieval_labels.jsonl.")


def cmd_finetune(args) -> None:
    from components.feedback.finetune import LoraSettings, finetune, resolve_base
    from components.feedback.versions import GeneratorVersions

    versions = GeneratorVersions(args.versions)
    base = resolve_base(versions, args.base, args.archive)
    overrides = {k: v for k, v in {"epochs": args.epochs, "learning_rate": args.learning_rate,
                                   "seed": args.seed, "max_steps": args.max_steps,
                                   "batch_size": args.batch_size}.items() if v is not None}
    replay = None if args.no_replay else args.replay
    lora = LoraSettings(r=args.lora_r, alpha=2 * args.lora_r) if args.lora else None
    meta = finetune(base, args.dataset, args.out, overrides, replay_corpus=replay,
                    repeats=args.repeats, lora=lora)
    print(json.dumps({k: meta[k] for k in ("version", "base_version", "train_examples",
                                            "val_examples", "epochs", "steps", "val_perplexity",
                                            "train_seconds")}, indent=2))
    print(f"Candidate written to {args.out}/; next: evaluate it.")


def cmd_evaluate(args) -> None:
    from components.feedback.evaluate import evaluate_candidate
    from components.feedback.finetune import resolve_base
    from components.feedback.versions import GeneratorVersions

    current = resolve_base(GeneratorVersions(args.versions), args.current, args.archive)
    decision = evaluate_candidate(current, Path(args.candidate), Path(args.heldout),
                                  Path(args.out), store_url=args.store)
    verdict = "PROMOTE" if decision["promote"] else "KEEP CURRENT"
    print(f"{verdict}: {decision['candidate_version']} vs {decision['current_version']}")
    for reason in decision["reasons"]:
        print(f"  - {reason}")
    print(f"Report: {Path(args.out) / 'report.md'}")


def cmd_promote(args) -> None:
    from components.feedback.versions import GeneratorVersions, VersionError
    from components.generator.generator import Generator

    decision = json.loads(Path(args.report).read_text(encoding="utf-8"))
    candidate = Generator.load(args.candidate)
    if decision.get("candidate_version") != candidate.model_version:
        raise VersionError(f"{args.report} evaluated {decision.get('candidate_version')}, not "
                           f"{candidate.model_version}; evaluate this candidate first.")
    if not decision.get("promote") and not args.force:
        reasons = "; ".join(decision.get("reasons", []))
        raise VersionError(f"The report does not recommend {candidate.model_version}: {reasons}. "
                           f"Nothing changed (use --force to promote anyway).")
    entry = GeneratorVersions(args.versions).promote(
        args.candidate, reason="; ".join(decision.get("reasons", [])),
        baseline=decision.get("current_version"))
    print(f"Promoted {entry['version']} (previous: {entry['previous']}).")
    print("Run `make train` to pack it into the model; a running server loads the new model "
          "on restart or through PUT /model (see README).")


def cmd_rollback(args) -> None:
    from components.feedback.versions import GeneratorVersions

    entry = GeneratorVersions(args.versions).rollback()
    print(f"Rolled back to {entry['version']} (was {entry['previous']}). Run `make train` to "
          f"pack it into the model.")


def cmd_status(args) -> None:
    from components.feedback.versions import GeneratorVersions

    versions = GeneratorVersions(args.versions)
    print(f"current: {versions.current_version() or 'none promoted (the trained model’s own)'}")
    for entry in versions.history():
        print(f"  {entry['at']}  {entry['action']:<8} {entry['version']}  "
              f"(previous: {entry['previous']})")


def cmd_analytics(args) -> None:
    from components.feedback import analytics

    summary = analytics.summarise(_store_url(args.store))
    print(analytics.format_table(summary))
    analytics.plot(summary, Path(args.plot))
    print(f"Plot: {args.plot}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per step of the loop."""
    from components.feedback.finetune import LoraSettings  # light: no torch at import

    parser = argparse.ArgumentParser(prog="python -m components.feedback",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    store_help = (f"SQLAlchemy URL of the tracker store "
                  f"(default: ${DEFAULT_STORE_ENV} or {DEFAULT_STORE})")
    versions_help = "folder of generator versions (default: models/generators)"

    p = sub.add_parser("export", help="tracker store -> redacted JSONL and test stories")
    p.add_argument("--store", help=store_help)
    p.add_argument("--out", default="exports", help="exports folder (default: exports)")
    p.add_argument("--since", type=_since,
                   help="export turns after this time (epoch s or ISO date); "
                                    "default: after the last export")
    p.add_argument("--full", action="store_true", help="ignore the last export, export everything")
    p.add_argument("--no-stories", action="store_true", help="skip the test stories")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("review", help="exports -> a CSV to correct")
    p.add_argument("--exports", default="exports")
    p.add_argument("--out", default="review.csv")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("dataset", help="exports + corrections -> training pairs")
    p.add_argument("--exports", default="exports")
    p.add_argument("--corrections", default=None, help="review.csv (or JSONL) with corrected_reply")
    p.add_argument("--out", default="feedback/dataset")
    p.add_argument("--heldout", type=float, default=0.2, help="held-out share (default 0.2)")
    p.add_argument("--knowledge", default=None,
                   help="help-center folder the `article` slugs must exist in "
                        "(default: data/knowledge if it exists)")
    p.set_defaults(func=cmd_dataset)

    p = sub.add_parser("finetune", help="fine-tune the current generator on the dataset")
    p.add_argument("--dataset", default="feedback/dataset")
    p.add_argument("--out", default="feedback/candidate")
    p.add_argument("--base", default=None, help="checkpoint to start from (default: the current "
                                                "generator, or the one in --archive)")
    p.add_argument("--archive", default="models/kestrel.tar.gz")
    p.add_argument("--versions", default="models/generators", help=versions_help)
    p.add_argument("--replay", default="data/generator",
                   help="original corpus mixed in against forgetting (default data/generator)")
    p.add_argument("--no-replay", action="store_true", help="train on the feedback pairs only")
    p.add_argument("--repeats", type=int, default=4,
                   help="with replay: each feedback pair is seen this many times per epoch")
    p.add_argument("--lora", action="store_true",
                   help="train a LoRA adapter (peft) instead of every weight: for checkpoints "
                        "too big to fine-tune fully on a CPU; give a lower --learning-rate "
                        "than the tiny built-in model's, e.g. 2e-4")
    rank = LoraSettings.r  # the dataclass default
    p.add_argument("--lora-r", type=int, default=rank,
                   help=f"the adapter's rank (default {rank}; alpha is twice it)")
    for name, kind in (("--epochs", int), ("--learning-rate", float), ("--seed", int),
                       ("--max-steps", int), ("--batch-size", int)):
        p.add_argument(name, type=kind, default=None)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("evaluate", help="candidate vs current -> report and decision")
    p.add_argument("--candidate", default="feedback/candidate")
    p.add_argument("--heldout", default="feedback/dataset/heldout.jsonl")
    p.add_argument("--out", default="feedback/report")
    p.add_argument("--current", default=None, help="checkpoint to compare with (default: current)")
    p.add_argument("--archive", default="models/kestrel.tar.gz")
    p.add_argument("--versions", default="models/generators", help=versions_help)
    p.add_argument("--store", default=None, help="tracker store for the rating trend (optional)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("promote", help="make the evaluated candidate current")
    p.add_argument("--candidate", default="feedback/candidate")
    p.add_argument("--report", default="feedback/report/decision.json")
    p.add_argument("--versions", default="models/generators", help=versions_help)
    p.add_argument("--force", action="store_true", help="promote even if the report says no")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", help="make the previous generator current")
    p.add_argument("--versions", default="models/generators", help=versions_help)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("status", help="generator versions and history")
    p.add_argument("--versions", default="models/generators", help=versions_help)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("analytics", help="summary table and plot of the tracker store")
    p.add_argument("--store", help=store_help)
    p.add_argument("--plot", default="feedback/analytics.png")
    p.set_defaults(func=cmd_analytics)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs one sub-command; returns the exit code (0 ok, 1 bad input, 2 store)."""
    from components.feedback.finetune import FinetuneError
    from components.feedback.review import CorrectionsError
    from components.feedback.store import StoreError
    from components.feedback.versions import VersionError
    from components.generator.generator import GeneratorLoadError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.command == "finetune" else logging.WARNING,
                        format="%(message)s")
    try:
        args.func(args)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (CorrectionsError, FinetuneError, VersionError, GeneratorLoadError,
            FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
