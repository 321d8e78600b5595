"""The same console over the real PostgreSQL server: the tracker store and its own database."""
from __future__ import annotations

import re
import threading

import pytest

from components.console.db import ConsoleDB, ReviewConflictError
from tests.components.console.conftest import conversations, login, make_console, token
from tests.components.feedback.helpers import save_conversations
from tests.conftest import new_postgres_database


@pytest.fixture
def pg_console(tmp_path, postgres, users_env):
    with new_postgres_database(postgres) as store, new_postgres_database(postgres) as own:
        save_conversations(store, conversations())
        app, config = make_console(tmp_path, store, users_env, db_url=own)
        yield app, config
        app.extensions["kestrel_console"]["db"].engine.dispose()
        index = app.extensions["kestrel_console"]["index"]
        if index._reader is not None:
            index._reader.engine.dispose()


def test_list_view_review_and_conflict_on_postgresql(pg_console):
    app, config = pg_console
    first, second = app.test_client(), app.test_client()
    login(first, "rita")
    login(second, "lena")
    html = first.get("/conversations?generated=1").get_data(as_text=True)
    assert 'id="total">3 conversations' in html
    assert set(re.findall(r'href="/conversations/([a-z]+-\d)"', html)) == {"dave-4", "carol-3"}
    view = first.get("/conversations/alice-1").get_data(as_text=True)
    assert "mode: extractive" in view and "[email]" in view
    saved = first.post("/review/a1a1a1a1a1a1a1a1", data={
        "verdict": "corrected", "corrected_reply": "Right answer.", "revision": 0,
        "csrf_token": token(first, "/review")})
    assert saved.status_code == 302
    late = second.post("/review/a1a1a1a1a1a1a1a1", data={
        "verdict": "accepted", "revision": 0, "csrf_token": token(second, "/review")})
    assert late.status_code == 409
    assert '"a1a1a1a1a1a1a1a1", "corrected_reply": "Right answer."' in \
        config.path(config.corrections).read_text()


def test_concurrent_saves_of_one_revision_keep_exactly_one(postgres):
    with new_postgres_database(postgres) as url:
        db = ConsoleDB(url)
        outcomes, barrier = [], threading.Barrier(8)

        def save(n):
            barrier.wait()
            try:
                db.save_review("r1", "corrected", f"text {n}", "", f"user{n}", 0)
                outcomes.append("saved")
            except ReviewConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=save, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict"] * 7 + ["saved"]
        review = db.reviews()["r1"]
        assert review.revision == 1 and review.corrected_reply == f"text {review.reviewer[4:]}"
        db.engine.dispose()
