import json
import sqlite3

import pytest
from rasa.shared.core.events import (ActionExecuted, BotUttered, SessionStarted, SlotSet,
                                     UserUttered)

from components.feedback import analytics
from components.feedback.store import StoreError
from tests.components.feedback.conftest import DAY, T0, generation, rating


def user(text, intent, t):
    return UserUttered(text, intent={"name": intent, "confidence": 0.9}, timestamp=t)


def bot(text, t, gen=None):
    return BotUttered(text, metadata={"generation": gen} if gen else {}, timestamp=t)


def rate(reply_id, value, t):
    return [user(f'/rate_reply{{"reply_id": "{reply_id}"}}', "rate_reply", t),
            SlotSet("reply_rating", rating(reply_id, value, rated_at=t), timestamp=t + 0.1),
            bot("Thanks for the feedback!", t + 0.2)]


FALLBACK = "I'm not sure I can answer that one."

CONVERSATIONS = {
    "alice": [
        SessionStarted(timestamp=T0), ActionExecuted("action_listen", timestamp=T0 + 1),
        user("Do you ship to Canada?", "shipping", T0 + 2),
        ActionExecuted("utter_shipping", timestamp=T0 + 3),
        bot("Yes, we ship to the US and Canada.", T0 + 4),
        user("Can I pay with crypto?", "nlu_fallback", T0 + 5),
        ActionExecuted("utter_gpt_reply", timestamp=T0 + 6),
        bot("We accept cards and PayPal.", T0 + 7, generation("r1", "v1")),
        *rate("r1", "helpful", T0 + 8),
        SessionStarted(timestamp=T0 + DAY),
        user("  Can I pay with CRYPTO?  ", "product_question", T0 + DAY + 1),
        bot(FALLBACK, T0 + DAY + 2, generation("r2", "v2", generated=False, fallback="blocked")),
        *rate("r2", "not_helpful", T0 + DAY + 3),
    ],
    "bob": [
        user("can i pay with crypto?", "nlu_fallback", T0 + 10),
        bot("No, only cards.", T0 + 11, generation("r3", "v2")),
        *rate("r3", "not_helpful", T0 + 12),
        *rate("r3", "helpful", T0 + 13),  # changed their mind: the latest rating counts
        user("hello", "greet", T0 + 14),
        bot("Hi!", T0 + 15),
    ],
    "carol": [
        user("asdfgh", "nlu_fallback", T0 + 20),
        bot(FALLBACK, T0 + 21, generation("r4", "v1", generated=False, fallback="empty")),
        user("Where is my refund?", "refund_status", T0 + 22),
        # No generator loaded: NLG writes no reply_id, only why it fell back.
        bot(FALLBACK, T0 + 23, {"generated": False, "fallback": "no_generator"}),
        SlotSet("reply_rating", rating("r-unknown", "helpful"), timestamp=T0 + 24),
    ],
    "dave": [user("hi", "greet", T0 + 30), bot("Hello! How can I help?", T0 + 31)],
}


@pytest.fixture
def summary(make_store):
    return analytics.summarise(make_store(CONVERSATIONS))


def test_counts_conversations_sessions_and_turns(summary):
    assert summary["conversations"] == 4
    assert summary["sessions"] == 5  # alice has two
    assert summary["scripted_sessions"] == 1  # dave's
    assert summary["user_turns"] == 8
    assert summary["button_payloads"] == 4
    assert summary["bot_turns"] == 12
    assert summary["first_event"] == "2024-05-01T12:00:00+00:00"
    assert summary["last_event"] == "2024-05-02T12:00:03+00:00"


def test_generated_turns_and_fallbacks_by_reason(summary):
    assert summary["generated_turns"] == 5
    assert summary["generated_share"] == pytest.approx(5 / 12)
    assert summary["fallback_turns"] == 3
    assert summary["fallback_reasons"] == {"blocked": 1, "empty": 1, "no_generator": 1}


def test_ratings_per_model_version_use_the_latest_rating(summary):
    assert summary["ratings"] == {
        "v1": {"rated": 1, "helpful": 1, "not_helpful": 0, "helpful_rate": 1.0},
        "v2": {"rated": 2, "helpful": 1, "not_helpful": 1, "helpful_rate": 0.5},
    }
    assert summary["orphan_ratings"] == 1


def test_top_fallback_messages_are_normalised_and_ranked(summary):
    assert summary["top_fallback_messages"] == [
        {"text": "can i pay with crypto?", "count": 3},
        {"text": "asdfgh", "count": 1},
        {"text": "where is my refund?", "count": 1},
    ]


def test_a_message_nlu_did_not_know_but_an_article_answered_is_no_gap():
    def reply(mode, sources=()):
        return {"event": "bot", "text": "x", "metadata": {"generation": {
            "generated": mode == "generated", "fallback": None, "mode": mode,
            "reply_id": "r", "sources": list(sources)}}}

    def asked(text, intent="nlu_fallback"):
        return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}

    article = [{"id": "damaged-or-wet-box#0", "slug": "damaged-or-wet-box"}]
    session = [asked("the box arrived wet"), reply("extractive", article),
               asked("is it wet in seattle"), reply("generated"),  # no article: a gap
               asked("wet box again"), reply("generated", article),
               asked("tell me a joke", "chitchat"), reply("retrieved"),
               asked("hello?")]  # nothing answered it yet
    assert analytics.fallback_messages(session) == ["is it wet in seattle", "tell me a joke",
                                                    "hello?"]


def test_a_follow_up_that_found_no_article_is_listed_as_searched():
    canned = {"event": "bot", "text": "x", "metadata": {"generation": {
        "generated": False, "fallback": "unsupported", "mode": "fallback",
        "query": "How much is shipping and to Mexico?"}}}
    session = [{"event": "user", "text": "and to Mexico?",
                "parse_data": {"intent": {"name": "policy_question"}}}, canned]
    assert analytics.fallback_messages(session) == ["how much is shipping and to mexico?"]


def test_a_follow_up_whose_answer_only_repeated_the_last_reply_is_a_gap():
    def reply(**extra):
        return {"event": "bot", "text": "x", "metadata": {"generation": {
            "generated": False, "fallback": None, "mode": "extractive",
            "sources": [{"id": "bamboo-cutting-board-care#0"}], **extra}}}

    def asked(text):
        return {"event": "user", "text": text,
                "parse_data": {"intent": {"name": "policy_question"}}}

    session = [asked("how do i look after the bamboo board"), reply(),
               asked("can i use it for raw meat?"),
               reply(repeated=True, query="how do i look after the bamboo board can i use it "
                                          "for raw meat?")]
    assert analytics.fallback_messages(session) == [
        "how do i look after the bamboo board can i use it for raw meat?"]


def test_only_ten_fallback_messages_are_listed(make_store):
    events = []
    for i in range(12):
        events += [user(f"question {i:02d}", "nlu_fallback", T0 + 2 * i),
                   bot("ok", T0 + 2 * i + 1)]
    top = analytics.summarise(make_store({"x": events}))["top_fallback_messages"]
    assert [m["text"] for m in top] == [f"question {i:02d}" for i in range(10)]


def test_summary_is_json_serialisable(summary):
    assert json.loads(json.dumps(summary)) == summary


def test_unusable_rows_become_warnings(make_store):
    url = make_store(CONVERSATIONS)
    with sqlite3.connect(url[len("sqlite:///"):]) as db:
        db.execute("INSERT INTO events (sender_id, type_name, timestamp, data) "
                   "VALUES ('eve', 'user', ?, '{not json')", (T0,))
        db.execute("INSERT INTO events (sender_id, type_name, timestamp, data) "
                   "VALUES ('eve', 'flow_started', ?, ?)",
                   (T0, json.dumps({"event": "flow_started", "flow_id": "x"})))
    summary = analytics.summarise(url)
    assert summary["conversations"] == 4  # eve has no usable event
    assert len(summary["warnings"]) == 2
    assert "malformed" in summary["warnings"][0] and "flow_started" in summary["warnings"][1]
    assert "flow_started" in analytics.format_table(summary)


def test_empty_store_is_an_error(make_store):
    with pytest.raises(StoreError, match="is empty; talk to the bot first"):
        analytics.summarise(make_store({}))


def test_missing_store_is_an_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        analytics.summarise(f"sqlite:///{tmp_path / 'nope.db'}")


def test_format_table_shows_every_section(summary):
    text = analytics.format_table(summary)
    for expected in ("conversations", "41.7% of bot turns", "blocked", "no_generator",
                     "v2", "50.0%", "can i pay with crypto?"):
        assert expected in text, expected
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["v1"] == ["1", "1", "0", "100.0%"]


def test_plot_writes_a_png(summary, tmp_path):
    import matplotlib.image

    out = analytics.plot(summary, tmp_path / "figs" / "summary.png")
    height, width = matplotlib.image.imread(out).shape[:2]
    assert (width, height) == (1210, 440)  # 11 x 4 in at 110 dpi


def test_plot_without_ratings_or_bot_turns(make_store, tmp_path):
    summary = analytics.summarise(make_store({"x": [user("hi", "greet", T0)]}))
    assert summary["bot_turns"] == 0 and summary["generated_share"] is None
    assert analytics.plot(summary, tmp_path / "s.png").stat().st_size > 0
    assert "(no ratings)" in analytics.format_table(summary)
