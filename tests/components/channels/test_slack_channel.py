"""components/channels/slack_channel.py without a server: mrkdwn, request checks, configuration."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from hypothesis import given, strategies as st

from components.channels.slack_channel import SlackInput, request_error, to_mrkdwn

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
