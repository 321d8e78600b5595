"""Review: a CSV a person corrects, and the training pairs built from it.

    python -m components.feedback review  --exports exports --out review.csv
    (edit the corrected_reply column in any spreadsheet)
    python -m components.feedback dataset --exports exports --corrections review.csv --out ds

Which exported turns become what:

====================================  ====================================
turn                                  goes to
====================================  ====================================
a non-empty ``corrected_reply``       a training pair with that reply
rated helpful, generated or from the  a training pair with the sent reply
help center (extractive)              (its citation line left out)
rated not helpful, not corrected      ``negatives.jsonl``, never trained on
unrated or canned fallback            left out
====================================  ====================================

Only corrected pairs can be held out: a helpful-rated reference is the current
generator's own greedy output, which the current generator reproduces
exactly, so scoring on it would always favour the model being replaced. The
corrected pairs are split into ``train.jsonl`` and ``heldout.jsonl`` by a hash
of their reply_id, so a turn stays on the same side when the dataset is
rebuilt with more data, and the evaluation never sees a training pair.
With fewer than two corrections, all pairs are split that way and the manifest says
the held-out set is biased towards the current generator.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from components.feedback.export import load_records
from components.generator.answers import EXTRACTIVE, strip_citation
from components.generator.atomic import atomic_dir, atomic_write_text

REVIEW_COLUMNS = ("reply_id", "model_version", "rating", "context", "reply", "corrected_reply")
REQUIRED_COLUMNS = ("reply_id", "corrected_reply")
PAIR_FILES = ("train.jsonl", "heldout.jsonl", "negatives.jsonl")


class CorrectionsError(ValueError):
    """The corrections file cannot be used; the message names the file and the problem."""


def render_context(context: Iterable[Dict[str, str]]) -> str:
    """Context turns as "user: ..." / "assistant: ..." lines, for a reviewer to read."""
    return "\n".join(f"{t['role']}: {t['text']}" for t in context)


def write_review_file(exports: Union[str, Path], out_csv: Union[str, Path]) -> int:
    """Writes every exported turn as a CSV row to correct; returns the row count.

    Turns rated not helpful come first, then unrated ones, then helpful ones.
    A ``corrected_reply`` already in ``out_csv`` is kept, so the file can be
    refreshed after a new export without losing a reviewer's work.
    """
    records = load_records(exports)
    kept = {}
    if Path(out_csv).is_file():
        kept = {k: v for k, v in load_corrections(out_csv).items() if v}
    order = {"not_helpful": 0, None: 1, "helpful": 2}
    records.sort(key=lambda r: (order.get(r["rating"], 1), r["timestamp"]))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=REVIEW_COLUMNS)
    writer.writeheader()
    for r in records:
        writer.writerow({"reply_id": r["reply_id"], "model_version": r["model_version"] or "",
                         "rating": r["rating"] or "", "context": render_context(r["context"]),
                         "reply": r["reply"], "corrected_reply": kept.get(r["reply_id"], "")})
    atomic_write_text(out_csv, buffer.getvalue())
    return len(records)


def load_corrections(path: Union[str, Path]) -> Dict[str, str]:
    """reply_id -> corrected reply ("" when the reviewer left it empty).

    Accepts CSV (header row) or JSONL (one object per line).

    Raises:
        CorrectionsError: if the file is missing, is neither CSV nor JSONL, lacks
            the ``reply_id`` or ``corrected_reply`` column, or names a reply_id twice
            with different corrections.
    """
    path = Path(path)
    if not path.is_file():
        raise CorrectionsError(f"Corrections file '{path}' does not exist.")
    rows: List[Dict[str, Any]] = []
    try:
        if path.suffix == ".jsonl":
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if line.strip():
                        row = json.loads(line)
                        if not isinstance(row, dict):
                            raise CorrectionsError(f"{path}, line {number}: not a JSON object.")
                        rows.append(row)
            columns = set().union(*(r.keys() for r in rows)) if rows else set()
        else:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                columns = set(reader.fieldnames or ())
                rows = list(reader)
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise CorrectionsError(f"Corrections file '{path}' cannot be read: {e}.") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CorrectionsError(
            f"Corrections file '{path}' lacks the column(s) {missing} (it has "
            f"{sorted(columns) or 'none'}). Start from `python -m components.feedback review`, "
            f"which writes all of {list(REVIEW_COLUMNS)}.")
    corrections: Dict[str, str] = {}
    for row in rows:
        reply_id = str(row.get("reply_id") or "").strip()
        text = str(row.get("corrected_reply") or "").strip()
        if not reply_id:
            continue
        if corrections.get(reply_id) and text and corrections[reply_id] != text:
            raise CorrectionsError(f"Corrections file '{path}' corrects reply {reply_id} twice "
                                   f"with different text; keep one row.")
        corrections[reply_id] = text or corrections.get(reply_id, "")
    return corrections


def _heldout(reply_id: str, fraction: float) -> bool:
    bucket = int(hashlib.sha256(reply_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < fraction


def build_dataset(exports: Union[str, Path], out_dir: Union[str, Path],
                  corrections: Optional[Union[str, Path]] = None,
                  heldout_fraction: float = 0.2) -> Dict[str, Any]:
    """Writes train/heldout pairs and negatives (see module docstring); returns the manifest.

    Raises:
        CorrectionsError: on a bad corrections file (nothing is written).
        FileNotFoundError: if there is no export.
        ValueError: if no turn is corrected or rated helpful, so there is nothing to train on.
    """
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction has to be in (0, 1), got {heldout_fraction!r}.")
    records = load_records(exports)
    fixes = load_corrections(corrections) if corrections else {}
    known = {r["reply_id"] for r in records}
    unknown = sorted(set(fixes) - known)
    split: Dict[str, List[Dict[str, Any]]] = {name: [] for name in PAIR_FILES}
    for r in records:
        pair = {"reply_id": r["reply_id"], "context": r["context"],
                "model_version": r["model_version"]}
        if fixes.get(r["reply_id"]):
            pair.update(reply=fixes[r["reply_id"]], source="correction")
        elif r["rating"] == "helpful" and (r["generated"] or r.get("mode") == EXTRACTIVE):
            pair.update(reply=strip_citation(r["reply"]), source="helpful")
        elif r["rating"] == "not_helpful":
            split["negatives.jsonl"].append({**pair, "reply": r["reply"], "source": "not_helpful"})
            continue
        else:
            continue
        split["train.jsonl"].append(pair)
    pairs = split["train.jsonl"]
    if not pairs:
        raise ValueError("No exported turn is corrected or rated helpful, so there is nothing to "
                         "train on. Fill in corrected_reply in the review file.")
    corrected = [p for p in pairs if p["source"] == "correction"]
    human = len(corrected) >= 2  # one to train on, one to hold out, at least
    pool = corrected if human else list(pairs)
    for pair in pool:
        if _heldout(pair["reply_id"], heldout_fraction):
            pairs.remove(pair)
            split["heldout.jsonl"].append(pair)
    if not split["heldout.jsonl"] and len(pool) > 1:
        split["heldout.jsonl"].append(pool[-1])
        pairs.remove(pool[-1])
    if not pairs:
        pairs.append(split["heldout.jsonl"].pop())
    pairs = split["train.jsonl"] + split["heldout.jsonl"]

    with atomic_dir(out_dir, replace=True) as tmp:
        for name, rows in split.items():
            with open(tmp / name, "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        manifest = {
            "exports": str(exports), "corrections": str(corrections) if corrections else None,
            "corrections_sha256": (hashlib.sha256(Path(corrections).read_bytes()).hexdigest()
                                   if corrections else None),
            "records": len(records), "train": len(split["train.jsonl"]),
            "heldout": len(split["heldout.jsonl"]), "negatives": len(split["negatives.jsonl"]),
            "corrections_used": sum(1 for p in pairs if p["source"] == "correction"),
            "unknown_corrections": unknown, "heldout_fraction": heldout_fraction,
            "heldout_source": "correction" if human else "helpful (biased towards the "
                              "current generator: correct some replies for a fair test)",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def read_pairs(path: Union[str, Path]) -> List[Dict[str, Any]]:
    """The pairs of a dataset JSONL file.

    Raises:
        ValueError: naming the line, if a line is not JSON or lacks context/reply.
    """
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                pair = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {number}: not JSON ({e}).") from e
            if not isinstance(pair, dict) or not {"context", "reply"} <= set(pair):
                raise ValueError(f"{path}, line {number}: expected keys `context` and `reply`.")
            pairs.append(pair)
    return pairs
