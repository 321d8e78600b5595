"""One real `rasa run` for the channel tests, a fake Slack Web API, and the web chat page.

``channel_server`` runs the session's trained model with the project's
credentials.yml (REST, socket.io, Slack) and endpoints.yml, as `make serve`
does, with the Slack variables set to test values and the Slack channel's
``api_url`` pointed at ``fake_slack``, which records every Web API call.
"""
from __future__ import annotations

import json
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List

import pytest
import yaml

from tests.e2e_fixtures import ROOT, rasa_server, start_redis

SLACK_TOKEN = "xoxb-test-0000-kestrel"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_CHANNEL = "C0SUPPORT"
SLACK_ENTRY = "components.channels.slack_channel.SlackInput"
SLACK_DEDUPE_URL = "redis://127.0.0.1:6379/0"


class FakeSlackAPI(BaseHTTPRequestHandler):
    """Answers every Web API method with ok; records the calls (Slack's JSON form)."""

    calls: List[Dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            from urllib.parse import parse_qsl
            args = dict(parse_qsl(body.decode()))
        self.calls.append({"method": self.path.rsplit("/", 1)[-1], "args": args,
                           "auth": self.headers.get("Authorization")})
        reply = json.dumps({"ok": True, "channel": args.get("channel"),
                            "ts": f"{time.time():.6f}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_) -> None:
        pass


def serve_in_thread(handler) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="session")
def fake_slack():
    httpd = serve_in_thread(FakeSlackAPI)
    yield {"url": f"http://127.0.0.1:{httpd.server_port}/api/", "calls": FakeSlackAPI.calls}
    httpd.shutdown()


@pytest.fixture(scope="session")
def channel_server(trained_model, action_server, fake_slack, webchat_page, tmp_path_factory):
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    credentials[SLACK_ENTRY]["api_url"] = fake_slack["url"]
    start_redis()  # Slack event ids are shared with a second replica (test_slack.py)
    env = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SECRET,
           "SLACK_CHANNEL": SLACK_CHANNEL, "SLACK_DEDUPE_URL": SLACK_DEDUPE_URL}
    page_origin = webchat_page.rsplit("/", 1)[0]  # the page's socket.io polling is CORS
    with rasa_server(trained_model, action_server["url"], tmp_path_factory.mktemp("channels"),
                     env=env, credentials=credentials, args=["--cors", page_origin]) as running:
        yield {**running, "env": env, "credentials": credentials}


@pytest.fixture(scope="session")
def webchat_page():
    """webchat/ served as `make serve` serves it (a static file server)."""
    if not (ROOT / "webchat" / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("webchat/node_modules is missing: run `make webchat` (npm ci in webchat/).")
    httpd = serve_in_thread(partial(QuietFiles, directory=str(ROOT / "webchat")))
    yield f"http://127.0.0.1:{httpd.server_port}/index.html"
    httpd.shutdown()


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *_) -> None:
        pass
