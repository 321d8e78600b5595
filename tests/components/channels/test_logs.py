"""What a customer types never reaches the server's log (issue: logs mask PII).

The channel server runs at INFO, as `make serve` does. Customers give an
email, a phone number and a card number over REST and Slack, including in a
request that fails; none of them may appear in the log afterwards.
"""
from __future__ import annotations

import http.client
import json

import pytest

from tests.components.channels.test_slack import new_user, say

pytestmark = pytest.mark.slow

SECRETS = ["olivia.marsh@example.net", "+1 415 555 0199", "4111 1111 1111 1111"]


def rest(server, body: dict) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    conn.request("POST", "/webhooks/rest/webhook", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    return conn.getresponse().status


def test_customer_pii_stays_out_of_the_log(channel_server, fake_slack):
    sender = "log-check"
    assert rest(channel_server, {"sender": sender, "message": "where is my order KC-10423?"}) == 200
    for secret in SECRETS:
        assert rest(channel_server, {"sender": sender, "message": f"it is {secret}"}) == 200
    say(channel_server, fake_slack, new_user(), f"my card is {SECRETS[2]}, email {SECRETS[0]}")
    # A request that fails validation, with PII in the body.
    assert rest(channel_server, {"sender": 42, "message": SECRETS[0]}) == 400
    log = channel_server["log"].read_text()
    leaked = [s for s in SECRETS if s in log or s.replace(" ", "") in log]
    assert not leaked, f"found in the server log: {leaked}"
