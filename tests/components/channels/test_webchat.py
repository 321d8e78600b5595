"""The web chat page in a real browser: Debian's headless Chromium driven by playwright-core.

tests/components/channels/webchat_driver.mjs opens webchat/index.html against the real
`rasa run` of ``channel_server`` (socket.io channel from credentials.yml),
sends a scripted message and an open-ended one, clicks "Helpful" under the
generated reply, reloads the page, and says something again. Here we check
what the page showed and what the tracker store holds. The screenshots are
saved in test-artifacts/ (README's picture is one of them). These tests are
slow: the server runs the trained model.

The same drive against ``fake_rasa``, a socket.io server that speaks the
protocol of Rasa's channel and answers from a script, checks the page alone in
seconds: a reply cited from the help center (text written by
``answers.citation``) shows its source as a link.

Needs /usr/bin/chromium (Debian's chromium; CHROMIUM_PATH overrides) and
webchat/node_modules (`make webchat`); scripts/install_test_tools.sh installs both.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import socketio

from components.channels.socketio_channel import HISTORY_EVENT, SessionTokens, transcript
from components.generator.answers import AnswerConfig, citation, split_citation
from components.generator.knowledge import Passage
from components.generator.retrieval import Hit
from tests.components.channels.helpers import stored_events
from tests.e2e_fixtures import ROOT, responses

ARTIFACTS = ROOT / "test-artifacts"
SCRIPTED, OPEN_ENDED = "hello there", "do you sell gift cards?"


def drive(page_url: str, out_dir: Path) -> dict:
    """Runs webchat_driver.mjs on ``page_url``; what the page showed at each step."""
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(chromium).exists() or not shutil.which("node"):
        pytest.fail(f"{chromium} or node is missing: run scripts/install_test_tools.sh "
                    f"(Debian's chromium and chromium-driver, and webchat's npm packages).")
    proc = subprocess.run(["node", str(ROOT / "tests/components/channels/webchat_driver.mjs"),
                           page_url, str(out_dir), SCRIPTED, OPEN_ENDED],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"browser driver failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def shown(text: str) -> str:
    """A bot message's text as the page shows it: a citation's link is its title."""
    body, cited = split_citation(text)
    return f"{body}\nSource: {cited.title}" if cited else text


@pytest.fixture(scope="module")
def browser_run(channel_server, webchat_page):
    return drive(f"{webchat_page}?server={channel_server['url']}", ARTIFACTS)


@pytest.mark.slow
def test_scripted_and_generated_replies_show_in_the_page(browser_run):
    assert browser_run["scriptedReply"][0] in responses("utter_greet")
    generated = browser_run["generatedReply"]
    assert len(generated) == 1 and generated[0].strip()
    assert generated[0] not in responses("utter_gpt_reply"), "got the canned fallback"
    assert browser_run["buttons"] == ["Helpful", "Not helpful"]
    assert browser_run["afterRating"][0] in responses("utter_rating_thanks")
    assert (ARTIFACTS / "webchat.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_rating_click_is_in_the_tracker_store(browser_run, channel_server):
    events = stored_events(channel_server["tracker"], browser_run["sessionId"])
    bots = [e["data"] for e in events if e["type"] == "bot"]
    generated = [b for b in bots if shown(b["text"]) == browser_run["generatedReply"][0]]
    assert generated, "the generated reply is not stored"
    reply_id = generated[-1]["metadata"]["generation"]["reply_id"]
    # A reply cited from the help center links its article, as the metadata records it.
    _, cited = split_citation(generated[-1]["text"])
    assert [(a["href"], a["text"]) for a in browser_run["generatedLinks"]] == (
        [(cited.url, cited.title)] if cited else [])
    if cited:
        assert cited.url == generated[-1]["metadata"]["generation"]["sources"][0]["url"]
    ratings = [e["data"]["value"] for e in events
               if e["type"] == "slot" and e["data"]["name"] == "reply_rating"]
    assert [(r["reply_id"], r["rating"]) for r in ratings] == [(reply_id, "helpful")]
    user = [e["data"] for e in events if e["type"] == "user"]
    assert all(u["input_channel"] == "socketio" for u in user)


@pytest.mark.slow
def test_a_reload_restores_the_conversation_from_the_tracker_store(browser_run, channel_server):
    assert browser_run["transport"] == "websocket"
    assert set(browser_run["stored"]) == {"sessionId", "sessionToken"}  # no transcript
    assert browser_run["restoredSessionId"] == browser_run["sessionId"]
    assert browser_run["restored"] == browser_run["transcript"]
    assert browser_run["afterReload"][0] in responses("utter_greet")
    # The turn after the reload went into the same stored conversation.
    texts = [e["data"].get("text") for e in stored_events(channel_server["tracker"],
                                                          browser_run["sessionId"])
             if e["type"] == "user"]
    assert texts.count(SCRIPTED) == 2 and OPEN_ENDED in texts


# --- The page alone, against a scripted socket.io server -----------------------------

HELP = "http://localhost:8080/help"
GIFT_CARDS = Hit(Passage("buying-gift-cards#0", "buying-gift-cards",
                         "Buying a Kestrel gift card (digital)", "", "Gift cards are digital."),
                 0.03, 0.71, 5.2)
# As GenerativeNLG writes an extractive answer: the passage's sentences, then the citation.
# The <b> must show as text.
CITED = ("Kestrel gift cards are <b>digital</b> & sent by email.\n"
         + citation(GIFT_CARDS, AnswerConfig(help_center_url=HELP)))
RATING = {"title": "Helpful", "payload": '/rate_reply{"rating": "helpful"}'}
SCRIPT = {  # the user's message -> the bot_uttered events, as Rasa's SocketIOOutput sends them
    SCRIPTED: [{"text": "Hi! How can I help?\nSource: Not a link (javascript:alert(1))"}],
    OPEN_ENDED: [{"text": CITED, "quick_replies": [
        {"content_type": "text", **RATING},
        {"content_type": "text", "title": "Not helpful",
         "payload": '/rate_reply{"rating": "not_helpful"}'}]}],
    RATING["payload"]: [{"text": "Thanks for the feedback!"}],
}


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *_) -> None:
        pass


@pytest.fixture(scope="module")
def fake_rasa():
    """A socket.io server with the session protocol of our channel, replying from SCRIPT.

    Sessions resume with their token (``SessionTokens``), and the history is the
    conversation's events through ``transcript``, as components/channels/socketio_channel.py
    sends them.
    """
    sio = socketio.Server(async_mode="threading", cors_allowed_origins="*")
    tokens = SessionTokens(b"fake-rasa-secret")
    received, events = [], {}  # session id -> Rasa event dicts

    @sio.on("session_request")
    def session_request(sid, data):
        asked = (data or {}).get("session_id")
        resumed = asked in events and tokens.check(asked, (data or {}).get("session_token"))
        session_id = asked if resumed else uuid.uuid4().hex
        events.setdefault(session_id, [])
        sio.enter_room(sid, session_id)
        sio.emit("session_confirm", session_id, to=sid)
        sio.emit(HISTORY_EVENT, {"session_id": session_id, "session_token": tokens.issue(session_id),
                                 "messages": asyncio.run(transcript(events[session_id]))}, to=sid)

    @sio.on("user_uttered")
    def user_uttered(sid, data):
        received.append(data["message"])
        events[data["session_id"]].append({"event": "user", "text": data["message"]})
        for message in SCRIPT.get(data["message"], [{"text": "?"}]):
            buttons = [{"title": b["title"], "payload": b["payload"]}
                       for b in message.get("quick_replies", [])]
            events[data["session_id"]].append({"event": "bot", "text": message["text"],
                                               "data": {"buttons": buttons}})
            sio.emit("bot_uttered", message, room=data["session_id"])

    httpd = make_server("127.0.0.1", 0, socketio.WSGIApp(sio),
                        server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{httpd.server_port}", "received": received}
    httpd.shutdown()


@pytest.fixture(scope="module")
def page_run(fake_rasa, webchat_page, tmp_path_factory):
    return drive(f"{webchat_page}?server={fake_rasa['url']}", tmp_path_factory.mktemp("webchat"))


def test_a_cited_reply_shows_its_source_as_a_link(page_run):
    body, cited = split_citation(CITED)
    assert page_run["generatedReply"] == [f"{body}\nSource: {cited.title}"]
    assert page_run["generatedLinks"] == [{
        "href": f"{HELP}/buying-gift-cards", "text": "Buying a Kestrel gift card (digital)",
        "target": "_blank", "rel": "noopener noreferrer",
        "line": "Source: Buying a Kestrel gift card (digital)"}]
    assert page_run["buttons"] == ["Helpful", "Not helpful"]


def test_only_an_http_citation_becomes_a_link(page_run):
    assert page_run["scriptedReply"] == [SCRIPT[SCRIPTED][0]["text"]]  # shown as it came
    assert page_run["scriptedLinks"] == []


def test_the_rating_button_and_the_reload_still_work(page_run, fake_rasa):
    assert page_run["afterRating"] == ["Thanks for the feedback!"]
    assert fake_rasa["received"][:3] == [SCRIPTED, OPEN_ENDED, RATING["payload"]]
    assert page_run["restoredSessionId"] == page_run["sessionId"]
    assert page_run["restored"] == page_run["transcript"]  # the rating shows as its title
    assert page_run["restoredLinks"] == page_run["generatedLinks"]  # rebuilt from the history


def test_the_browser_keeps_only_the_session(page_run):
    # (This wsgiref server has no websocket upgrade: the page stays on long-polling here,
    # its fallback; the websocket is checked against the real server above.)
    assert page_run["transport"] == "polling"
    assert page_run["stored"] == {"sessionId": page_run["sessionId"],
                                  "sessionToken": SessionTokens(b"fake-rasa-secret").issue(
                                      page_run["sessionId"])}


def test_another_device_gets_the_transcript_only_with_the_token(page_run):
    assert page_run["otherDevice"]["sessionId"] == page_run["sessionId"]
    assert page_run["otherDevice"]["messages"] == page_run["transcript"] + [
        SCRIPTED, SCRIPT[SCRIPTED][0]["text"]]  # and the turn after the reload
    assert page_run["forged"]["messages"] == []
    assert page_run["forged"]["sessionId"] != page_run["sessionId"]


@pytest.mark.slow
def test_another_device_needs_the_token_to_see_the_transcript(browser_run):
    assert browser_run["otherDevice"]["sessionId"] == browser_run["sessionId"]
    assert browser_run["otherDevice"]["messages"][:len(browser_run["transcript"])] == (
        browser_run["transcript"])
    assert browser_run["forged"]["messages"] == []
    assert browser_run["forged"]["sessionId"] != browser_run["sessionId"]
