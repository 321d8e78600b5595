"""components/channels/slack_channel.py without a server: mrkdwn, request checks, configuration.

The replies go to ``fake_slack`` (conftest.py), which records each chat.postMessage
as Slack would receive it; no Rasa server or model is needed.
"""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from hypothesis import given, strategies as st

from components.channels.slack_channel import (MrkdwnSlackBot, SlackInput, request_error,
                                               to_mrkdwn)
from components.generator.answers import AnswerConfig, citation
from components.generator.knowledge import Passage
from components.generator.retrieval import Hit

CREDENTIALS = {"slack_token": "xoxb-1", "slack_signing_secret": "s3cret", "slack_channel": "C1"}


def form(payload) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


@pytest.mark.parametrize("text, expected", [
    ("Your order ships **today**.", "Your order ships *today*."),
    ("See [our returns page](https://kestrel.example/returns).",
     "See <https://kestrel.example/returns|our returns page>."),
    ("2 < 3 & 5 > 4", "2 &lt; 3 &amp; 5 &gt; 4"),
    ("<!channel> ping <@U123>", "&lt;!channel&gt; ping &lt;@U123&gt;"),  # no mass mentions
    ("plain text", "plain text"),
])
def test_to_mrkdwn(text, expected):
    assert to_mrkdwn(text) == expected


@given(st.text())
def test_to_mrkdwn_never_leaves_slack_markup_from_the_text(text):
    out = to_mrkdwn(text.replace("](", ""))  # no Markdown links: nothing may become markup
    assert "<" not in out and ">" not in out
    assert out.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0


@pytest.mark.parametrize("content_type, body, status", [
    ("text/plain", b"hi", 415),
    ("application/json", b"[]", 400),
    ("application/json", b'{"event": []}', 400),
    ("application/json", b"\xff", 400),
    ("application/x-www-form-urlencoded", b"a=b", 400),
    ("application/x-www-form-urlencoded", form([]), 400),
    ("application/x-www-form-urlencoded", form({"actions": []}), 400),
    ("application/x-www-form-urlencoded", form({"actions": [{"type": "button"}]}), 400),
    ("application/x-www-form-urlencoded",
     form({"actions": [{"type": "button"}], "user": {"id": "U1"}, "channel": "C1"}), 400),
])
def test_request_error_refuses(content_type, body, status):
    problem = request_error(content_type, body)
    assert problem is not None and problem[0] == status


@pytest.mark.parametrize("content_type, body", [
    ("application/json", b'{"type": "url_verification", "challenge": "x"}'),
    ("application/json; charset=utf-8", b'{"event": {"type": "message"}}'),
    ("application/x-www-form-urlencoded",
     form({"actions": [{"type": "button", "value": "/greet"}], "user": {"id": "U1"},
           "channel": {"id": "D1"}})),
])
def test_request_error_accepts(content_type, body):
    assert request_error(content_type, body) is None


def test_from_credentials_reads_the_extra_keys():
    channel = SlackInput.from_credentials({**CREDENTIALS, "api_url": "http://127.0.0.1:1/api/",
                                           "max_body_bytes": 10, "use_threads": True})
    assert channel.configured and channel.use_threads and channel.max_body_bytes == 10
    bot = channel.get_output_channel("D1", "123.4")
    assert bot.client.base_url == "http://127.0.0.1:1/api/" and bot.thread_id == "123.4"


@pytest.mark.parametrize("bad", [0, -5, "1mb", True])
def test_from_credentials_rejects_a_bad_max_body(bad):
    with pytest.raises(ValueError, match="max_body_bytes"):
        SlackInput.from_credentials({**CREDENTIALS, "max_body_bytes": bad})


def test_an_empty_signing_secret_turns_the_channel_off_instead_of_failing():
    channel = SlackInput.from_credentials({**CREDENTIALS, "slack_signing_secret": ""})
    assert not channel.configured


ANSWER = "Gift cards are digital & sent by email, within 15 minutes."
BUTTONS = [{"title": "Helpful", "payload": '/rate_reply{"rating": "helpful"}'},
           {"title": "Not helpful", "payload": '/rate_reply{"rating": "not_helpful"}'}]


def cited(answer: str, title: str = "Buying a Kestrel gift card") -> str:
    """``answer`` with the citation line the NLG appends (answers.citation)."""
    hit = Hit(Passage("buying-gift-cards#0", "buying-gift-cards", title, "", answer), 0.1, 0.7, 3.0)
    return f"{answer}\n{citation(hit, AnswerConfig(help_center_url='http://localhost:8080/help'))}"


async def posted(fake_slack, send, *args):
    """The chat.postMessage calls that ``send(*args)`` of a bot in thread 123.4 made."""
    bot = MrkdwnSlackBot("xoxb-1", "C1", "123.4", api_url=fake_slack["url"])
    before = len(fake_slack["calls"])
    await getattr(bot, send)("U1", *args)
    calls = fake_slack["calls"][before:]
    assert all(c["method"] == "chat.postMessage" and c["args"]["channel"] == "C1"
               and c["args"]["thread_ts"] == "123.4" for c in calls)
    return [c["args"] for c in calls]


async def test_a_cited_reply_shows_its_source_as_a_link_in_a_context_block(fake_slack):
    [message] = await posted(fake_slack, "send_text_message", cited(ANSWER))
    section, context = message["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": to_mrkdwn(ANSWER)}}
    assert context == {"type": "context", "elements": [{
        "type": "mrkdwn",
        "text": "Source: <http://localhost:8080/help/buying-gift-cards|Buying a Kestrel gift card>"}]}
    assert message["text"] == to_mrkdwn(cited(ANSWER))  # the plain fallback: the whole reply


async def test_a_cited_reply_keeps_its_rating_buttons_under_the_source(fake_slack):
    [message] = await posted(fake_slack, "send_text_with_buttons", cited(ANSWER), BUTTONS)
    section, context, actions = message["blocks"]
    assert section["text"]["text"] == to_mrkdwn(ANSWER)
    assert context["elements"][0]["text"].startswith("Source: <http://localhost:8080/help/")
    assert [(b["action_id"], b["text"]["text"], b["value"]) for b in actions["elements"]] == [
        ("button-0", "Helpful", BUTTONS[0]["payload"]),
        ("button-1", "Not helpful", BUTTONS[1]["payload"])]
    assert message["text"] == to_mrkdwn(cited(ANSWER))


async def test_a_title_cannot_break_out_of_the_slack_link(fake_slack):
    [message] = await posted(fake_slack, "send_text_message",
                             cited(ANSWER, "Returns & <!channel> | exchanges (2 weeks)"))
    assert message["blocks"][1]["elements"][0]["text"] == (
        "Source: <http://localhost:8080/help/buying-gift-cards|"
        "Returns &amp; &lt;!channel&gt; / exchanges (2 weeks)>")


async def test_replies_without_a_citation_are_sent_as_before(fake_slack):
    texts = await posted(fake_slack, "send_text_message", "Hi **there**.\n\nHow can I help?")
    assert [(m["text"], m.get("blocks")) for m in texts] == [
        ("Hi *there*.", None), ("How can I help?", None)]  # one message per paragraph, as Rasa's
    [message] = await posted(fake_slack, "send_text_with_buttons", ANSWER, BUTTONS)
    section, actions = message["blocks"]
    assert section["text"]["text"] == message["text"] == to_mrkdwn(ANSWER)
    assert actions["type"] == "actions"
