"""The web chat page in a real browser: Debian's headless Chromium driven by playwright-core.

tests/components/channels/webchat_driver.mjs opens webchat/index.html against the real
`rasa run` of ``channel_server`` (socket.io channel from credentials.yml),
sends a scripted message and an open-ended one, clicks "Helpful" under the
generated reply, reloads the page, and says something again. Here we check
what the page showed and what the tracker store holds. The screenshots are
saved in test-artifacts/ (README's picture is one of them).

Needs /usr/bin/chromium (Debian's chromium; CHROMIUM_PATH overrides) and
webchat/node_modules (`make webchat`); scripts/install_test_tools.sh installs both.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.components.channels.helpers import stored_events
from tests.e2e_fixtures import ROOT, responses

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"
SCRIPTED, OPEN_ENDED = "hello there", "do you sell gift cards?"



@pytest.fixture(scope="module")
def browser_run(channel_server, webchat_page):
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(chromium).exists() or not shutil.which("node"):
        pytest.fail(f"{chromium} or node is missing: run scripts/install_test_tools.sh "
                    f"(Debian's chromium and chromium-driver, and webchat's npm packages).")
    url = f"{webchat_page}?server={channel_server['url']}"
    proc = subprocess.run(["node", str(ROOT / "tests/components/channels/webchat_driver.mjs"), url,
                           str(ARTIFACTS), SCRIPTED, OPEN_ENDED],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"browser driver failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_scripted_and_generated_replies_show_in_the_page(browser_run):
    assert browser_run["scriptedReply"][0] in responses("utter_greet")
    generated = browser_run["generatedReply"]
    assert len(generated) == 1 and generated[0].strip()
    assert generated[0] not in responses("utter_gpt_reply"), "got the canned fallback"
    assert browser_run["buttons"] == ["Helpful", "Not helpful"]
    assert browser_run["afterRating"][0] in responses("utter_rating_thanks")
    assert (ARTIFACTS / "webchat.png").stat().st_size > 10_000


def test_the_rating_click_is_in_the_tracker_store(browser_run, channel_server):
    events = stored_events(channel_server["tracker"], browser_run["sessionId"])
    bots = [e["data"] for e in events if e["type"] == "bot"]
    generated = [b for b in bots if b["text"] == browser_run["generatedReply"][0]]
    assert generated, "the generated reply is not stored"
    reply_id = generated[-1]["metadata"]["generation"]["reply_id"]
    ratings = [e["data"]["value"] for e in events
               if e["type"] == "slot" and e["data"]["name"] == "reply_rating"]
    assert [(r["reply_id"], r["rating"]) for r in ratings] == [(reply_id, "helpful")]
    user = [e["data"] for e in events if e["type"] == "user"]
    assert all(u["input_channel"] == "socketio" for u in user)


def test_a_reload_restores_the_conversation(browser_run, channel_server):
    assert browser_run["restoredSessionId"] == browser_run["sessionId"]
    assert browser_run["restored"] == browser_run["transcript"]
    assert browser_run["afterReload"][0] in responses("utter_greet")
    # The turn after the reload went into the same stored conversation.
    texts = [e["data"].get("text") for e in stored_events(channel_server["tracker"],
                                                          browser_run["sessionId"])
             if e["type"] == "user"]
    assert texts.count(SCRIPTED) == 2 and OPEN_ENDED in texts
