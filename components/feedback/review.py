"""Review: a CSV a person corrects, and the training pairs built from it.

    python -m components.feedback review  --exports exports --out review.csv
    (edit the corrected_reply and article columns in any spreadsheet)
    python -m components.feedback dataset --exports exports --corrections review.csv --out ds

The corrections file has the columns ``reply_id`` and ``corrected_reply``
(required) and ``article`` (optional; files written before it still load): the
slug of the help-center article that should have answered the question
(``data/knowledge/<slug>.md``), empty when none applies. ``load_corrections``
reads the corrected replies, ``load_article_labels`` the articles.

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

Files in the dataset folder: ``train.jsonl``, ``heldout.jsonl`` and
``negatives.jsonl`` (one ``{"reply_id", "context", "model_version", "reply",
"source"}`` per line, plus ``"article": slug`` when the reviewer named one),
``manifest.json`` (counts and inputs), and ``retrieval_labels.jsonl``: one line
per exported turn whose ``article`` the reviewer filled in, whether or not it
became a pair::

    {"reply_id": str, "question": str, "slug": str, "cited": [slug, ...]}

``question`` is the (redacted) user message the turn answered, ``slug`` the
article that should have answered it, ``cited`` the articles the reply cited
([] for a generated or fallback reply). The help-center team can score
retrieval on it (is ``slug`` among the top passages for ``question``?) or use
it to tune ``nlg.answers.min_similarity``. The manifest counts the labels
(``article_labels``) and the turns where retrieval missed the named article
(``retrieval_misses``: ``wrong_article`` when the reply cited others,
``no_article`` when it cited none).
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from components.feedback.export import load_records
from components.generator.answers import EXTRACTIVE, strip_citation
from components.generator.atomic import atomic_dir, atomic_write_text
from components.generator.knowledge import SLUG, article_files

REVIEW_COLUMNS = ("reply_id", "model_version", "rating", "context", "reply", "corrected_reply",
                  "article")
REQUIRED_COLUMNS = ("reply_id", "corrected_reply")
ARTICLE_COLUMN = "article"  # optional: files written before it load without labels
PAIR_FILES = ("train.jsonl", "heldout.jsonl", "negatives.jsonl")
LABELS_FILE = "retrieval_labels.jsonl"
DEFAULT_KNOWLEDGE = "data/knowledge"


class CorrectionsError(ValueError):
    """The corrections file cannot be used; the message names the file and the problem."""


def render_context(context: Iterable[Dict[str, str]]) -> str:
    """Context turns as "user: ..." / "assistant: ..." lines, for a reviewer to read."""
    return "\n".join(f"{t['role']}: {t['text']}" for t in context)


def write_review_file(exports: Union[str, Path], out_csv: Union[str, Path]) -> int:
    """Writes every exported turn as a CSV row to correct; returns the row count.

    Turns rated not helpful come first, then unrated ones, then helpful ones.
    A ``corrected_reply`` or ``article`` already in ``out_csv`` is kept, so the
    file can be refreshed after a new export without losing a reviewer's work
    (articles are kept as typed; ``dataset`` checks them).
    """
    records = load_records(exports)
    kept, articles = {}, {}
    if Path(out_csv).is_file():
        kept = {k: v for k, v in load_corrections(out_csv).items() if v}
        articles = {str(row.get("reply_id") or "").strip(): str(row.get(ARTICLE_COLUMN) or "")
                    for _, row in _read_rows(Path(out_csv))[0] if row.get(ARTICLE_COLUMN)}
    order = {"not_helpful": 0, None: 1, "helpful": 2}
    records.sort(key=lambda r: (order.get(r["rating"], 1), r["timestamp"]))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=REVIEW_COLUMNS)
    writer.writeheader()
    for r in records:
        # `article` starts empty rather than prefilled with the cited slug: a prefilled cell
        # cannot be told apart from a reviewer's confirmation, so every row nobody looked at
        # would become a label that agrees with the current retrieval. Empty, the reviewer types
        # a slug only where it matters (wrong or missing article, or a citation they confirm);
        # the cited slug is at the end of the reply's "Source: ..." line, to copy from.
        writer.writerow({"reply_id": r["reply_id"], "model_version": r["model_version"] or "",
                         "rating": r["rating"] or "", "context": render_context(r["context"]),
                         "reply": r["reply"], "corrected_reply": kept.get(r["reply_id"], ""),
                         ARTICLE_COLUMN: articles.get(r["reply_id"], "")})
    atomic_write_text(out_csv, buffer.getvalue())
    return len(records)


def _read_rows(path: Path) -> Tuple[List[Tuple[str, Dict[str, Any]]], set]:
    """(where, row) pairs of a corrections file and its columns; checks the required ones.

    ``where`` is "row N" for a CSV (the spreadsheet's row, the header being row 1)
    and "line N" for JSONL.
    """
    if not path.is_file():
        raise CorrectionsError(f"Corrections file '{path}' does not exist.")
    rows: List[Tuple[str, Dict[str, Any]]] = []
    try:
        if path.suffix == ".jsonl":
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if line.strip():
                        row = json.loads(line)
                        if not isinstance(row, dict):
                            raise CorrectionsError(f"{path}, line {number}: not a JSON object.")
                        rows.append((f"line {number}", row))
            columns = set().union(*(r.keys() for _, r in rows)) if rows else set()
        else:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                columns = set(reader.fieldnames or ())
                rows = [(f"row {number}", row) for number, row in enumerate(reader, 2)]
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise CorrectionsError(f"Corrections file '{path}' cannot be read: {e}.") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CorrectionsError(
            f"Corrections file '{path}' lacks the column(s) {missing} (it has "
            f"{sorted(columns) or 'none'}). Start from `python -m components.feedback review`, "
            f"which writes all of {list(REVIEW_COLUMNS)}.")
    return rows, columns


def load_corrections(path: Union[str, Path]) -> Dict[str, str]:
    """reply_id -> corrected reply ("" when the reviewer left it empty).

    Accepts CSV (header row) or JSONL (one object per line). The optional
    ``article`` column is read by ``load_article_labels``.

    Raises:
        CorrectionsError: if the file is missing, is neither CSV nor JSONL, lacks
            the ``reply_id`` or ``corrected_reply`` column, or names a reply_id twice
            with different corrections.
    """
    path = Path(path)
    rows, _ = _read_rows(path)
    corrections: Dict[str, str] = {}
    for _, row in rows:
        reply_id = str(row.get("reply_id") or "").strip()
        text = str(row.get("corrected_reply") or "").strip()
        if not reply_id:
            continue
        if corrections.get(reply_id) and text and corrections[reply_id] != text:
            raise CorrectionsError(f"Corrections file '{path}' corrects reply {reply_id} twice "
                                   f"with different text; keep one row.")
        corrections[reply_id] = text or corrections.get(reply_id, "")
    return corrections


def knowledge_slugs(folder: Union[str, Path]) -> List[str]:
    """The slugs of a help-center folder: its article file names without ``.md``.

    Raises:
        CorrectionsError: if the folder does not exist.
    """
    if not Path(folder).is_dir():
        raise CorrectionsError(f"Help-center folder '{folder}' does not exist; pass the folder "
                               f"of <slug>.md articles with --knowledge (default "
                               f"{DEFAULT_KNOWLEDGE}).")
    return sorted({p.stem for p in article_files(Path(folder))})


def load_article_labels(path: Union[str, Path],
                        knowledge: Optional[Union[str, Path]] = None) -> Dict[str, str]:
    """reply_id -> slug of the article that should have answered, for rows that name one.

    Reads the optional ``article`` column of a corrections file (CSV or JSONL);
    a file without it gives ``{}``. With ``knowledge`` (the help-center folder),
    a slug with no ``<knowledge>/<slug>.md`` is refused too.

    Raises:
        CorrectionsError: as ``load_corrections``, or naming the file, the row and the
            fix if an article is not a lowercase-hyphenated slug, names no article in
            ``knowledge``, or one reply_id is given two different articles.
    """
    path = Path(path)
    rows, columns = _read_rows(path)
    if ARTICLE_COLUMN not in columns:
        return {}
    slugs = set(knowledge_slugs(knowledge)) if knowledge is not None else None
    labels: Dict[str, str] = {}
    for where, row in rows:
        reply_id = str(row.get("reply_id") or "").strip()
        slug = str(row.get(ARTICLE_COLUMN) or "").strip()
        if not reply_id or not slug:
            continue
        if not SLUG.match(slug):
            raise CorrectionsError(
                f"Corrections file '{path}', {where} (reply {reply_id}): article {slug!r} is "
                f"not a help-center slug. Write the slug, lowercase words joined by hyphens "
                f"such as card-refund-timing (the name of {DEFAULT_KNOWLEDGE}/<slug>.md without "
                f".md, or the end of the reply's Source link), or leave the cell empty.")
        if slugs is not None and slug not in slugs:
            close = difflib.get_close_matches(slug, sorted(slugs), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise CorrectionsError(
                f"Corrections file '{path}', {where} (reply {reply_id}): article {slug!r} is "
                f"not in the help center {knowledge}.{hint} The valid slugs are the article "
                f"file names there without .md (`ls {knowledge}`); leave the cell empty if no "
                f"article applies.")
        if labels.get(reply_id, slug) != slug:
            raise CorrectionsError(f"Corrections file '{path}', {where}: reply {reply_id} is "
                                   f"given two articles ({labels[reply_id]}, {slug}); keep one.")
        labels[reply_id] = slug
    return labels


def _question(context: List[Dict[str, str]]) -> str:
    """The user message a turn answered: the context's last user turn."""
    return next((t["text"] for t in reversed(context) if t.get("role") == "user"), "")


def _heldout(reply_id: str, fraction: float) -> bool:
    bucket = int(hashlib.sha256(reply_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < fraction


def build_dataset(exports: Union[str, Path], out_dir: Union[str, Path],
                  corrections: Optional[Union[str, Path]] = None,
                  heldout_fraction: float = 0.2,
                  knowledge: Optional[Union[str, Path]] = None) -> Dict[str, Any]:
    """Writes train/heldout pairs, negatives and retrieval labels (see module docstring).

    ``knowledge``: the help-center folder the ``article`` slugs are checked
    against (None: only their form is checked). Returns the manifest.

    Raises:
        CorrectionsError: on a bad corrections file or article (nothing is written).
        FileNotFoundError: if there is no export.
        ValueError: if no turn is corrected or rated helpful, so there is nothing to train on.
    """
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction has to be in (0, 1), got {heldout_fraction!r}.")
    records = load_records(exports)
    fixes = load_corrections(corrections) if corrections else {}
    articles = load_article_labels(corrections, knowledge) if corrections else {}
    known = {r["reply_id"] for r in records}
    unknown = sorted(set(fixes) - known)
    split: Dict[str, List[Dict[str, Any]]] = {name: [] for name in PAIR_FILES}
    labels: List[Dict[str, Any]] = []
    misses = {"wrong_article": 0, "no_article": 0}
    for r in records:
        pair = {"reply_id": r["reply_id"], "context": r["context"],
                "model_version": r["model_version"]}
        if articles.get(r["reply_id"]):
            slug = articles[r["reply_id"]]
            cited = list(dict.fromkeys(s["slug"] for s in r.get("sources") or ()
                                       if s.get("slug")))
            labels.append({"reply_id": r["reply_id"], "question": _question(r["context"]),
                           "slug": slug, "cited": cited})
            if slug not in cited:
                misses["wrong_article" if cited else "no_article"] += 1
            pair["article"] = slug
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
        for name, rows in [*split.items(), (LABELS_FILE, labels)]:
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
            "article_labels": len(labels), "retrieval_misses": misses,
            "knowledge": str(knowledge) if knowledge is not None else None,
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
