"""components/console/db.py on SQLite: optimistic locking of reviews, the corrections file."""
from __future__ import annotations

import json

import pytest

from components.console.db import ACCEPTED, CORRECTED, ConsoleDB, ReviewConflictError


@pytest.fixture
def db(tmp_path):
    database = ConsoleDB(f"sqlite:///{tmp_path / 'sub' / 'console.db'}")
    yield database
    database.engine.dispose()


def test_a_save_needs_the_revision_it_saw(db):
    first = db.save_review("r1", CORRECTED, "  First text. ", "gift-cards", "rita", 0)
    assert (first.revision, first.corrected_reply) == (1, "First text.")
    with pytest.raises(ReviewConflictError) as stale:
        db.save_review("r1", ACCEPTED, "", "", "lena", 0)
    assert stale.value.current["reviewer"] == "rita" and stale.value.current["revision"] == 1
    with pytest.raises(ReviewConflictError):
        db.save_review("r1", ACCEPTED, "", "", "lena", 5)
    second = db.save_review("r1", ACCEPTED, "ignored for an accept", "", "lena", 1)
    assert (second.revision, second.corrected_reply, second.verdict) == (2, "", ACCEPTED)
    assert db.review("r1") == second


@pytest.mark.parametrize("verdict, text, message", [
    ("maybe", "x", "is not one of"), (CORRECTED, "  ", "needs the corrected reply"),
])
def test_bad_reviews_are_refused(db, verdict, text, message):
    with pytest.raises(ValueError, match=message):
        db.save_review("r1", verdict, text, "", "rita", 0)
    assert db.reviews() == {}


def test_the_corrections_file_is_jsonl_the_loop_reads(db, tmp_path):
    from components.feedback.review import load_article_labels, load_corrections

    db.save_review("b2", ACCEPTED, "", "card-refund-timing", "rita", 0)
    db.save_review("a1", CORRECTED, "Fixed «reply».", "", "rita", 0)
    path = tmp_path / "feedback" / "corrections.jsonl"
    assert db.write_corrections(path) == 2
    assert [json.loads(line)["reply_id"] for line in path.read_text().splitlines()] == ["a1", "b2"]
    assert load_corrections(path) == {"a1": "Fixed «reply».", "b2": ""}
    assert load_article_labels(path) == {"b2": "card-refund-timing"}
    assert not list(path.parent.glob(".*"))  # no temporary file left behind


def test_the_audit_log_and_jobs(db, tmp_path):
    db.log("lena", "lead", "promote", "job 1", "")
    db.log("rita", "reviewer", "login")
    assert [r["action"] for r in db.audit_log()] == ["login", "promote"]
    job = db.add_job("dataset", "rita", str(tmp_path / "x.log"))
    db.update_job(job, status="succeeded", returncode=0)
    assert db.job(job)["status"] == "succeeded" and db.jobs()[0]["id"] == job
    assert db.job(job + 1) is None
