"""The console's own database: reviews of generated replies, the audit log, jobs.

SQLAlchemy Core over ``CONSOLE_DB_URL`` (SQLite by default, PostgreSQL in
production); the tracker store is never written. Tables:

- ``reviews``: one row per reviewed reply (reply_id), the latest verdict
  (``accepted`` or ``corrected``), the corrected text, the help article that
  should have answered, who and when, and a ``revision`` counter. A save names
  the revision its form was rendered with; if another reviewer saved in
  between, the save is refused with ``ReviewConflictError`` (optimistic locking),
  so a second reviewer never overwrites the first unawares.
- ``audit``: who did what and when: logins, reveals, reviews, jobs.
- ``jobs``: the feedback loop's steps started from the console, with their
  status and log file.

After every review the table is written out as the loop's corrections file
(JSONL, atomically), which ``python -m components.feedback dataset
--corrections`` reads unchanged.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import sqlalchemy as sa

from components.generator.atomic import atomic_write_text

ACCEPTED, CORRECTED = "accepted", "corrected"
VERDICTS = (ACCEPTED, CORRECTED)
RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"

metadata = sa.MetaData()
reviews = sa.Table(
    "reviews", metadata,
    sa.Column("reply_id", sa.String(64), primary_key=True),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("corrected_reply", sa.Text, nullable=False, default=""),
    sa.Column("article", sa.String(200), nullable=False, default=""),
    sa.Column("reviewer", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),  # s since epoch
    sa.Column("revision", sa.Integer, nullable=False),  # 1 for the first save
)
audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),  # s since epoch
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(200), nullable=False, default=""),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)
jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("returncode", sa.Integer),
    sa.Column("pid", sa.Integer),
    sa.Column("log_path", sa.Text, nullable=False),
)


class ReviewConflictError(Exception):
    """Another reviewer saved the reply since the form was rendered.

    ``current`` is their review (a dict of the ``reviews`` row).
    """

    def __init__(self, current: Dict[str, Any]) -> None:
        super().__init__(f"reply {current['reply_id']} was reviewed by {current['reviewer']} "
                         f"(revision {current['revision']}) in the meantime")
        self.current = current


@dataclass(frozen=True)
class Review:
    reply_id: str
    verdict: str  # ACCEPTED or CORRECTED
    corrected_reply: str  # "" when accepted
    article: str  # help-center slug, "" for none
    reviewer: str
    updated_at: float  # s since epoch
    revision: int


class ConsoleDB:
    """The console's tables at ``url``; created on first use."""

    def __init__(self, url: str) -> None:
        """Connects and creates the tables if missing.

        Raises:
            sqlalchemy.exc.OperationalError: if the database cannot be reached.
        """
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(parsed, pool_pre_ping=True)
        metadata.create_all(self.engine)

    # --- reviews -------------------------------------------------------------
    def reviews(self) -> Dict[str, Review]:
        """reply_id -> its review."""
        with self.engine.connect() as conn:
            return {r.reply_id: Review(**r._mapping) for r in conn.execute(sa.select(reviews))}

    def review(self, reply_id: str) -> Optional[Review]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(reviews).where(reviews.c.reply_id == reply_id)).first()
        return Review(**row._mapping) if row else None

    def save_review(self, reply_id: str, verdict: str, corrected_reply: str, article: str,
                    reviewer: str, seen_revision: int) -> Review:
        """Saves a review if the reply's revision is still ``seen_revision`` (0: none yet).

        Raises:
            ValueError: for an unknown verdict, or ``corrected`` without text.
            ReviewConflictError: if the stored revision differs (another reviewer saved).
        """
        if verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r} is not one of {list(VERDICTS)}")
        text = corrected_reply.strip() if verdict == CORRECTED else ""
        if verdict == CORRECTED and not text:
            raise ValueError("A correction needs the corrected reply's text.")
        values = {"verdict": verdict, "corrected_reply": text, "article": article.strip(),
                  "reviewer": reviewer, "updated_at": time.time(), "revision": seen_revision + 1}
        if seen_revision == 0:
            try:
                with self.engine.begin() as conn:
                    conn.execute(reviews.insert().values(reply_id=reply_id, **values))
            except sa.exc.IntegrityError:  # another reviewer inserted it first
                with self.engine.connect() as conn:
                    self._conflict(conn, reply_id)
        else:
            with self.engine.begin() as conn:
                done = conn.execute(reviews.update().where(
                    (reviews.c.reply_id == reply_id) & (reviews.c.revision == seen_revision)
                ).values(**values)).rowcount
                if done != 1:
                    self._conflict(conn, reply_id)
        return Review(reply_id=reply_id, **values)

    @staticmethod
    def _conflict(conn, reply_id: str) -> None:
        row = conn.execute(sa.select(reviews).where(reviews.c.reply_id == reply_id)).first()
        raise ReviewConflictError(dict(row._mapping) if row else
                             {"reply_id": reply_id, "reviewer": "nobody", "revision": 0})

    def write_corrections(self, path: Path) -> int:
        """Writes every review as the loop's corrections file (JSONL, atomically).

        Each line is ``{"reply_id", "corrected_reply", "article"}``: an accepted
        reply has an empty ``corrected_reply`` (no training pair of its own) and
        keeps the article the reviewer named. Returns the number of lines.
        """
        rows = sorted(self.reviews().values(), key=lambda r: r.reply_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(json.dumps(
            {"reply_id": r.reply_id, "corrected_reply": r.corrected_reply,
             "article": r.article}, ensure_ascii=False) + "\n" for r in rows))
        return len(rows)

    # --- audit log -----------------------------------------------------------
    def log(self, user: str, role: str, action: str, target: str = "", detail: str = "") -> None:
        """Appends one line to the audit log."""
        with self.engine.begin() as conn:
            conn.execute(audit.insert().values(at=time.time(), user=user, role=role,
                                               action=action, target=target, detail=detail))

    def audit_log(self, limit: int = 500) -> List[Dict[str, Any]]:
        """The latest ``limit`` audit lines, newest first."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(audit).order_by(audit.c.id.desc()).limit(limit))]

    # --- jobs ----------------------------------------------------------------
    def add_job(self, kind: str, user: str, log_path: str) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(jobs.insert().values(
                kind=kind, user=user, status=RUNNING, started_at=time.time(),
                log_path=log_path)).inserted_primary_key[0])

    def update_job(self, job_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))

    def job(self, job_id: int) -> Optional[Dict[str, Any]]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return dict(row._mapping) if row else None

    def jobs(self, limit: int = 50) -> List[Dict[str, Any]]:
        """The latest ``limit`` jobs, newest first."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit))]
