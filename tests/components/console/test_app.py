"""The console over HTTP (Flask's test client): sessions, roles, CSRF, pages, reviews."""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from tests.components.console.conftest import (
    EMAIL, XSS_TEXT, login, make_console, sqlite_store, token,
)

ANONYMOUS_OK = {"login"}


def routes(app):
    """(rule, method, sample URL) of every route, with sample values for its arguments."""
    samples = {"sender_id": "alice-1", "reply_id": "a1a1a1a1a1a1a1a1", "kind": "dataset",
               "job_id": "1", "name": "metrics.png"}
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ANONYMOUS_OK:
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = re.sub(rf"<(?:[a-z]+:)?{arg}>", samples[arg], url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


def test_every_route_but_login_needs_a_session(app):
    client = app.test_client()
    checked = 0
    for endpoint, method, url in routes(app):
        data = {"csrf_token": token(client)} if method == "POST" else None
        response = client.open(url, method=method, data=data)
        assert response.status_code == 302, (endpoint, method, response.status_code)
        assert response.headers["Location"].startswith("/login"), endpoint
        checked += 1
    assert checked >= 15


def test_every_post_needs_its_csrf_token(app):
    client = app.test_client()
    login(client, "lena")
    posts = [(e, url) for e, method, url in routes(app) if method == "POST"]
    assert {e for e, _ in posts} >= {"logout", "reveal", "save_review", "start_job"}
    for endpoint, url in posts:
        response = client.post(url, data={"verdict": "accepted"})
        assert response.status_code == 400, endpoint
        assert "security token" in response.get_data(as_text=True).lower() \
            or "csrf" in response.get_data(as_text=True).lower()
    assert client.post("/login", data={"name": "lena", "password": "x"}).status_code == 400


def test_login_sets_a_guarded_cookie_and_is_audited(app):
    client = app.test_client()
    bad = client.post("/login", data={"name": "lena", "password": "wrong-password",
                                      "csrf_token": token(client)})
    assert bad.status_code == 401 and "wrong password" in bad.get_data(as_text=True)
    response = login(client, "lena")
    assert response.status_code == 302 and response.headers["Location"] == "/conversations"
    cookie = next(c for c in response.headers.get_all("Set-Cookie")
                  if c.startswith("kestrel_console="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Cache-Control"] == "no-store"
    log = app.extensions["kestrel_console"]["db"].audit_log()
    assert [(r["user"], r["action"]) for r in log] == [("lena", "login")]


def test_login_never_redirects_off_site(app):
    client = app.test_client()
    response = client.post("/login?next=//evil.example/x",
                           data={"name": "rita", "password": "reviewer-pass-1",
                                 "csrf_token": token(client)})
    assert response.headers["Location"] == "/conversations"


@pytest.mark.parametrize("query, expected", [
    ("", {"alice-1", "bob-2", "carol-3", "dave-4"}),
    ("generated=1", {"alice-1", "carol-3", "dave-4"}),
    ("rating=not_helpful", {"alice-1"}),
    ("rating=helpful", {"dave-4"}),
    ("rating=unrated", {"carol-3"}),
    ("fell_back=1", {"carol-3"}),
    ("handed_off=1", {"bob-2"}),
    ("since=2026-05-29&until=2026-05-30", {"bob-2", "carol-3"}),
    ("q=REFUNDS", {"dave-4"}),
    ("q=" + EMAIL, set()),  # the index holds masked text only
])
def test_the_list_filters(app, query, expected):
    client = app.test_client()
    login(client, "rita")
    shown = set()
    for page in (1, 2):  # the fixture's page size is 2
        html = client.get(f"/conversations?{query}&page={page}").get_data(as_text=True)
        shown |= set(re.findall(r'href="/conversations/([a-z]+-\d)"', html))
    assert shown == expected
    total = re.search(r'id="total">(\d+)', html).group(1)
    assert int(total) == len(expected)


def test_a_bad_date_is_ignored_with_a_message(app):
    client = app.test_client()
    login(client, "rita")
    html = client.get("/conversations?since=yesterday").get_data(as_text=True)
    assert "&#39;yesterday&#39; is not a date; use YYYY-MM-DD" in html
    assert 'id="total">4 conversations' in html


def test_the_conversation_view_shows_why_each_reply_was_sent(app):
    client = app.test_client()
    login(client, "rita")
    html = client.get("/conversations/alice-1").get_data(as_text=True)
    for shown in ("intent <span class=\"tag\">policy_question</span> 0.93",
                  "utter_gpt_reply by policy_2_GPTPolicy (0.88)", "mode: extractive",
                  "model kestrel-gpt-v1", "41 ms", "guardrails: cut_to_sentences",
                  "Gift cards (gift-cards) 0.71", "grounded", "not helpful"):
        assert shown in html, shown
    assert EMAIL not in html and "[email]" in html


def test_a_lead_reveals_pii_and_it_is_logged_a_reviewer_cannot(app):
    reviewer, lead = app.test_client(), app.test_client()
    login(reviewer, "rita")
    refused = reviewer.post("/conversations/alice-1/reveal",
                            data={"csrf_token": token(reviewer, "/conversations")})
    assert refused.status_code == 403 and "may not reveal" in refused.get_data(as_text=True)
    assert 'id="reveal"' not in reviewer.get("/conversations/alice-1").get_data(as_text=True)
    login(lead, "lena")
    html = lead.post("/conversations/alice-1/reveal",
                     data={"csrf_token": token(lead, "/conversations/alice-1")}
                     ).get_data(as_text=True)
    assert EMAIL in html and 'id="revealed"' in html
    assert EMAIL not in lead.get("/conversations/alice-1").get_data(as_text=True)
    log = app.extensions["kestrel_console"]["db"].audit_log()
    assert ("lena", "reveal", "alice-1") in [(r["user"], r["action"], r["target"]) for r in log]


def test_a_customer_message_with_html_is_shown_as_text(app):
    client = app.test_client()
    login(client, "rita")
    for page in ("/conversations/carol-3", "/review", "/conversations?q=script"):
        html = client.get(page).get_data(as_text=True)
        assert "<script>window" not in html and "<img src=x" not in html, page
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;&lt;img src=x onerror=" in html, page
    response = client.get("/conversations/carol-3")
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'self'
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_review_queue_puts_not_helpful_first_and_leaves_out_helpful(app):
    client = app.test_client()
    login(client, "rita")
    html = client.get("/review").get_data(as_text=True)
    assert re.findall(r'id="r-([0-9a-f]{16})"', html) == ["a1a1a1a1a1a1a1a1", "c3c3c3c3c3c3c3c3"]
    assert XSS_TEXT not in html


def review(client, reply_id, verdict, text="", article="", revision=0, page="/review"):
    return client.post(f"/review/{reply_id}", data={
        "verdict": verdict, "corrected_reply": text, "article": article,
        "revision": revision, "next": page, "csrf_token": token(client, page)})


def test_a_correction_is_stored_written_for_the_loop_and_audited(console):
    from components.feedback.review import load_article_labels, load_corrections

    app, config = console
    client = app.test_client()
    login(client, "rita")
    fixed = "We sell gift cards of 25, 50 and 100 dollars; they never expire."
    response = review(client, "a1a1a1a1a1a1a1a1", "corrected", fixed, "buying-gift-cards")
    assert response.status_code == 302 and response.headers["Location"] == "/review"
    corrections = config.path(config.corrections)
    assert load_corrections(corrections) == {"a1a1a1a1a1a1a1a1": fixed}
    assert load_article_labels(corrections) == {"a1a1a1a1a1a1a1a1": "buying-gift-cards"}
    html = client.get("/review").get_data(as_text=True)
    assert 'id="r-a1a1a1a1a1a1a1a1"' not in html and 'id="total">1 reply' in html
    log = app.extensions["kestrel_console"]["db"].audit_log()
    assert (log[0]["user"], log[0]["action"], log[0]["target"]) == \
        ("rita", "review:corrected", "a1a1a1a1a1a1a1a1")
    view = client.get("/conversations/alice-1").get_data(as_text=True)
    assert "corrected by rita" in view and fixed in view


def test_bad_review_input_is_refused_with_a_message(app):
    client = app.test_client()
    login(client, "rita")
    empty = review(client, "a1a1a1a1a1a1a1a1", "corrected", "   ")
    assert empty.status_code == 400 and "Write the corrected reply" in empty.get_data(as_text=True)
    slug = review(client, "a1a1a1a1a1a1a1a1", "accepted", article="no-such-article")
    assert slug.status_code == 400 and "not a help-center article" in slug.get_data(as_text=True)
    gone = review(client, "ffffffffffffffff", "accepted")
    assert gone.status_code == 404 and "no longer exists" in gone.get_data(as_text=True)
    assert app.extensions["kestrel_console"]["db"].reviews() == {}


def test_two_reviewers_on_one_reply_the_second_is_told_and_keeps_their_text(app):
    first, second = app.test_client(), app.test_client()
    login(first, "rita")
    login(second, "lena")
    assert review(first, "c3c3c3c3c3c3c3c3", "corrected", "Rita's answer.").status_code == 302
    late = review(second, "c3c3c3c3c3c3c3c3", "corrected", "Lena's answer.", revision=0)
    html = late.get_data(as_text=True)
    assert late.status_code == 409 and "rita reviewed this reply while you were writing" in html
    assert "Rita&#39;s answer." in html and "Lena&#39;s answer.</textarea>" in html
    assert 'name="revision" value="1"' in html
    db = app.extensions["kestrel_console"]["db"]
    assert db.reviews()["c3c3c3c3c3c3c3c3"].corrected_reply == "Rita's answer."
    again = review(second, "c3c3c3c3c3c3c3c3", "corrected", "Lena's answer.", revision=1)
    assert again.status_code == 302
    assert db.reviews()["c3c3c3c3c3c3c3c3"].corrected_reply == "Lena's answer."


def test_a_reviewer_cannot_promote_or_roll_back(app):
    client = app.test_client()
    login(client, "rita")
    html = client.get("/models").get_data(as_text=True)
    assert re.search(r'id="job-promote" disabled', html)
    assert re.search(r'id="job-dataset"', client.get("/dataset").get_data(as_text=True))
    for kind, permission in (("promote", "promote"), ("force_promote", "promote"),
                             ("rollback", "rollback"), ("finetune", "finetune"),
                             ("evaluate", "evaluate")):
        response = client.post(f"/jobs/{kind}", data={"csrf_token": token(client, "/models")})
        assert response.status_code == 403, kind
        assert f"may not {permission};" in response.get_data(as_text=True)
    assert app.extensions["kestrel_console"]["db"].jobs() == []


def test_the_models_page_offers_promote_anyway_only_after_a_refusal(console):
    app, config = console
    client = app.test_client()
    login(client, "lena")
    assert 'id="job-force_promote"' not in client.get("/models").get_data(as_text=True)
    report = config.path("feedback/report")
    report.mkdir(parents=True)
    (report / "decision.json").write_text(json.dumps({
        "promote": False, "reasons": ["relevance 0.301 -> 0.110 (worse by more than 0.01)"],
        "candidate_version": "kestrel-gpt-new", "current_version": "kestrel-gpt-old"}))
    html = client.get("/models").get_data(as_text=True)
    assert "not recommended" in html and "relevance 0.301 -&gt; 0.110" in html
    assert re.search(r'id="job-force_promote" >Promote anyway', html)


def test_the_audit_log_is_for_leads(app):
    reviewer, lead = app.test_client(), app.test_client()
    login(reviewer, "rita")
    assert reviewer.get("/audit").status_code == 403
    login(lead, "lena")
    html = lead.get("/audit").get_data(as_text=True)
    assert "<td>rita</td><td>reviewer</td><td>login</td>" in html


def test_analytics_shows_the_figures_the_plot_and_the_knowledge_gaps(app):
    client = app.test_client()
    login(client, "rita")
    html = client.get("/analytics").get_data(as_text=True)
    assert re.search(r"<th>conversations</th><td>4</td>", html)
    assert "kestrel-gpt-v1</td><td>2</td><td>1</td><td>1</td>" in html
    gaps = html.split('id="gaps"')[1]
    assert "&lt;script&gt;window.__xss" in gaps  # the fallback message, as text
    png = client.get("/analytics/plot.png")
    assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_store_that_is_down_gives_a_page_that_says_so(tmp_path, users_env):
    app, _ = make_console(tmp_path, f"sqlite:///{tmp_path / 'missing.db'}", users_env)
    client = app.test_client()
    login(client, "rita")
    for page in ("/conversations", "/conversations/alice-1", "/review", "/analytics"):
        response = client.get(page)
        assert response.status_code == 503, page
        assert "does not exist" in response.get_data(as_text=True)
    assert client.get("/models").status_code == 200  # pages without the store still work


def test_malformed_events_are_skipped_with_a_note(tmp_path, users_env):
    url = sqlite_store(tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) "
                             "VALUES ('alice-1', 'user', 1.0, '{not json')"))
    engine.dispose()
    app, _ = make_console(tmp_path / "c", url, users_env)
    client = app.test_client()
    login(client, "rita")
    for page in ("/conversations", "/conversations/alice-1"):
        html = client.get(page).get_data(as_text=True)
        assert "skipped 1 malformed row(s)" in html, page
    assert 'id="total">4 conversations' in client.get("/conversations").get_data(as_text=True)


def test_an_unknown_conversation_or_job_is_a_404_page(app):
    client = app.test_client()
    login(client, "rita")
    response = client.get("/conversations/nobody")
    assert response.status_code == 404 and "No conversation" in response.get_data(as_text=True)
    assert client.get("/jobs/99").status_code == 404
    assert client.get("/models/report/../../etc/passwd").status_code == 404


def test_the_corrections_file_is_what_the_dataset_step_reads(console, tmp_path):
    from components.feedback.export import export_dataset
    from components.feedback.review import build_dataset

    app, config = console
    client = app.test_client()
    login(client, "rita")
    review(client, "a1a1a1a1a1a1a1a1", "corrected", "Gift cards come in 25, 50 and 100 dollars.")
    review(client, "c3c3c3c3c3c3c3c3", "accepted")
    exports = tmp_path / "exports"
    export_dataset(config.store_url, exports, stories=False)
    manifest = build_dataset(exports, tmp_path / "ds", config.path(config.corrections))
    assert manifest["corrections_used"] == 1
    lines = [json.loads(x) for x in config.path(config.corrections).read_text().splitlines()]
    assert [(x["reply_id"], bool(x["corrected_reply"])) for x in lines] == \
        [("a1a1a1a1a1a1a1a1", True), ("c3c3c3c3c3c3c3c3", False)]
