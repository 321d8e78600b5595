"""The Slack channel end to end: signed Events API requests in, Web API calls out.

Slack cannot be reached from here, so the tests play Slack on both sides:
requests signed with the signing secret the way Slack signs them
(https://api.slack.com/authentication/verifying-requests-from-slack) go to the
real `rasa run` at /webhooks/slack/webhook, and the channel's Web API client
posts to ``fake_slack``, which records each chat.postMessage.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from components.generator.answers import split_citation
from tests.components.channels.conftest import SLACK_CHANNEL, SLACK_SECRET, SLACK_TOKEN
from tests.components.channels.helpers import stored_events, wait_for
from tests.e2e_fixtures import rasa_server, responses

pytestmark = pytest.mark.slow

PATH = "/webhooks/slack/webhook"
DM = "D0CUSTOMER"



def post(server, body: bytes, content_type="application/json", *, secret=SLACK_SECRET,
         timestamp=None, headers=None):
    """POSTs ``body`` signed as Slack signs it (v0 HMAC-SHA256 of v0:timestamp:body)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body,
                                 hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    conn.request("POST", PATH, body=body, headers={
        "Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature, **(headers or {})})
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def message_event(user: str, text: str, *, channel=DM, event_type="message") -> dict:
    ts = f"{time.time():.6f}"
    return {"token": "unused", "team_id": "T0KESTREL", "api_app_id": "A0KESTREL",
            "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:10]}",
            "event_time": int(time.time()), "authorizations": [{"user_id": "U0BOT"}],
            "event": {"type": event_type, "user": user, "text": text, "ts": ts,
                      "channel": channel, "channel_type": "im" if channel == DM else "channel",
                      "event_ts": ts}}


def say(server, fake_slack, user: str, text: str, **kwargs):
    """Sends a DM event; returns (the event, the chat.postMessage calls it caused)."""
    event = message_event(user, text, **kwargs)
    before = len(fake_slack["calls"])
    status, _, body = post(server, json.dumps(event).encode())
    assert status == 200, body
    wait_for(lambda: fake_slack["calls"][before:], what=f"a Slack reply to {text!r}")
    time.sleep(1.0)  # a turn can post several messages
    return event, fake_slack["calls"][before:]


def new_user() -> str:
    return f"U{uuid.uuid4().hex[:9].upper()}"


def test_url_verification_challenge(channel_server):
    status, _, body = post(channel_server, json.dumps(
        {"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    ).encode())
    assert status == 200 and json.loads(body) == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"


def test_scripted_reply_is_posted_in_the_thread(channel_server, fake_slack):
    event, calls = say(channel_server, fake_slack, new_user(), "hello there")
    [call] = calls
    assert call["method"] == "chat.postMessage"
    assert call["auth"] == f"Bearer {SLACK_TOKEN}"
    assert call["args"]["channel"] == DM
    assert call["args"]["thread_ts"] == event["event"]["ts"]  # use_threads: true
    assert call["args"]["text"] in responses("utter_greet")


def test_generated_reply_uses_block_kit_and_its_rating_button_works(channel_server, fake_slack):
    user = new_user()
    say(channel_server, fake_slack, user, "hello there")
    event, calls = say(channel_server, fake_slack, user, "do you sell gift cards?")
    [call] = calls
    section, *context, actions = call["args"]["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    body, source = split_citation(call["args"]["text"])
    assert section["text"]["text"] == body and body.strip()
    # An answer from the help center names its article under the answer, as a link.
    assert [c["elements"][0]["text"] for c in context] == (
        [f"Source: <{source.url}|{source.title}>"] if source else [])
    assert call["args"]["thread_ts"] == event["event"]["ts"]
    buttons = {b["text"]["text"]: b["value"] for b in actions["elements"]}
    assert set(buttons) == {"Helpful", "Not helpful"}

    # The customer presses "Not helpful": Slack posts the interactive payload as a form.
    payload = {"type": "block_actions", "user": {"id": user, "name": "customer"},
               "channel": {"id": DM}, "message": {"ts": "1.0", "thread_ts": event["event"]["ts"]},
               "actions": [{"type": "button", "action_id": "button-1",
                            "value": buttons["Not helpful"], "action_ts": f"{time.time():.6f}"}]}
    before = len(fake_slack["calls"])
    status, _, _ = post(channel_server, urlencode({"payload": json.dumps(payload)}).encode(),
                        "application/x-www-form-urlencoded")
    assert status == 200
    [thanks] = wait_for(lambda: fake_slack["calls"][before:], what="the rating's thanks")
    assert thanks["args"]["text"] in responses("utter_rating_thanks")
    assert thanks["args"]["thread_ts"] == event["event"]["ts"]

    events = stored_events(channel_server["tracker"], user)
    reply_id = [e for e in events if e["type"] == "bot"][-2]["data"]["metadata"][
        "generation"]["reply_id"]
    ratings = [e["data"]["value"] for e in events
               if e["type"] == "slot" and e["data"]["name"] == "reply_rating"]
    assert [(r["reply_id"], r["rating"]) for r in ratings] == [(reply_id, "not_helpful")]
    assert {e["data"]["input_channel"] for e in events if e["type"] == "user"} == {"slack"}


def test_channel_messages_are_answered_in_the_configured_channel(channel_server, fake_slack):
    _, [call] = say(channel_server, fake_slack, new_user(), "hi", channel=SLACK_CHANNEL)
    assert call["args"]["channel"] == SLACK_CHANNEL


@pytest.fixture(scope="module")
def keeper(channel_server, fake_slack):
    """A conversation already stored; the bad requests below must not touch it."""
    user = new_user()
    say(channel_server, fake_slack, user, "hello there")
    return user, stored_events(channel_server["tracker"], user)


def unchanged(channel_server, keeper) -> bool:
    user, events = keeper
    return stored_events(channel_server["tracker"], user) == events


def test_bad_signature_and_stale_timestamp_are_rejected(channel_server, fake_slack, keeper):
    user, _ = keeper
    body = json.dumps(message_event(user, "forged")).encode()
    assert post(channel_server, body, secret="not-the-secret")[0] == 400
    stale = int(time.time()) - 6 * 60  # Slack: reject requests older than 5 minutes
    assert post(channel_server, body, timestamp=stale)[0] == 400
    time.sleep(1.0)
    assert unchanged(channel_server, keeper)


def test_retries_for_timeouts_are_acknowledged_not_processed(channel_server, fake_slack, keeper):
    user, _ = keeper
    before = len(fake_slack["calls"])
    status, headers, _ = post(channel_server, json.dumps(message_event(user, "hello")).encode(),
                              headers={"X-Slack-Retry-Num": "1",
                                       "X-Slack-Retry-Reason": "http_timeout"})
    assert status == 201 and headers.get("X-Slack-No-Retry") == "1"
    time.sleep(1.0)
    assert len(fake_slack["calls"]) == before
    assert unchanged(channel_server, keeper)


# Slack's retry reasons (https://api.slack.com/apis/connections/events-api#retries).
RETRY_REASONS = ["http_timeout", "too_many_redirects", "connection_failed", "ssl_error",
                 "http_error", "unknown_error"]


def user_texts(tracker: str, user: str) -> list:
    return [e["data"].get("text") for e in stored_events(tracker, user) if e["type"] == "user"]


@pytest.mark.parametrize("reason", RETRY_REASONS)
def test_a_retry_of_a_handled_event_is_acknowledged_not_handled_again(channel_server,
                                                                       fake_slack, reason):
    user = new_user()
    event, calls = say(channel_server, fake_slack, user, "hello there")
    before = len(fake_slack["calls"])
    status, headers, _ = post(channel_server, json.dumps(event).encode(),
                              headers={"X-Slack-Retry-Num": "1",
                                       "X-Slack-Retry-Reason": reason})
    assert status == 200 and headers.get("X-Slack-No-Retry") == "1"
    time.sleep(1.5)
    assert len(fake_slack["calls"]) == before  # no second answer
    assert user_texts(channel_server["tracker"], user) == ["hello there"]


@pytest.fixture(scope="module")
def second_replica(trained_model, action_server, channel_server, tmp_path_factory):
    """Another `rasa run` with the same Slack app, tracker store and Redis (a scale-out replica)."""
    env = {**channel_server["env"], "TRACKER_STORE_URL": channel_server["tracker"]}
    with rasa_server(trained_model, action_server["url"], tmp_path_factory.mktemp("replica"),
                     env=env, credentials=channel_server["credentials"],
                     name="replica") as running:
        yield running


def test_one_event_delivered_to_two_replicas_at_once_is_handled_once(channel_server,
                                                                     second_replica, fake_slack):
    _, once = say(channel_server, fake_slack, new_user(), "hello there")  # one delivery's posts
    user = new_user()
    body = json.dumps(message_event(user, "hello there")).encode()
    before = len(fake_slack["calls"])
    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(lambda server: post(server, body)[0],
                                 [channel_server, second_replica]))
    assert sorted(statuses) == [200, 200]
    wait_for(lambda: fake_slack["calls"][before:], what="the Slack reply")
    time.sleep(2.0)  # a second answer would arrive by now
    assert len(fake_slack["calls"]) - before == len(once)
    assert user_texts(channel_server["tracker"], user) == ["hello there"]


@pytest.mark.parametrize("event_type", ["reaction_added", "app_home_opened", "made_up_event"])
def test_unknown_event_types_are_acknowledged_and_ignored(channel_server, fake_slack, keeper,
                                                          event_type):
    user, _ = keeper
    before = len(fake_slack["calls"])
    event = message_event(user, "hello", event_type=event_type)
    assert post(channel_server, json.dumps(event).encode())[0] == 200
    time.sleep(1.0)
    assert len(fake_slack["calls"]) == before
    assert unchanged(channel_server, keeper)


@pytest.mark.parametrize("body, content_type, expected", [
    (b"[1, 2, 3]", "application/json", 400),
    (b'{"event": "not an object"}', "application/json", 400),
    (b"{not json", "application/json", 400),
    (b"\xff\xfe\x00bad utf-8", "application/json", 400),
    (b"text=hello", "application/x-www-form-urlencoded", 400),               # no payload
    (b"payload=%7Bnot+json", "application/x-www-form-urlencoded", 400),
    (urlencode({"payload": json.dumps({"actions": [{"type": "button", "value": "/greet"}]})})
     .encode(), "application/x-www-form-urlencoded", 400),                   # no user.id
    (b"hello", "text/plain", 415),
    (b"<xml/>", "application/xml", 415),
    (json.dumps({"event": {"text": "x" * (1 << 20)}}).encode(), "application/json", 413),
])
def test_malformed_requests_get_a_4xx(channel_server, keeper, body, content_type, expected):
    status, _, data = post(channel_server, body, content_type)
    assert status == expected, data[:300]
    assert unchanged(channel_server, keeper)
