"""components/rasa_patches/action_fallback.py: a failed custom action answers politely, a rejection does not."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from components.rasa_patches import action_fallback
from tests.e2e_fixtures import free_port

DOMAIN = Domain.from_dict({
    "actions": ["action_order_status"],
    "responses": {"utter_service_unavailable": [{"text": "Our systems are down, sorry."}]},
})


def answering(status: int, body: dict):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def run_action(url: str):
    action_fallback.install()
    action = RemoteAction("action_order_status", EndpointConfig(url=url))
    tracker = DialogueStateTracker("customer-1", DOMAIN.slots)
    return await action.run(CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(
        DOMAIN.responses), tracker, DOMAIN)


async def test_an_unreachable_action_server_gives_the_response():
    [event] = await run_action(f"http://127.0.0.1:{free_port()}/webhook")  # nothing listens
    assert isinstance(event, BotUttered) and event.text == "Our systems are down, sorry."
    assert event.metadata == {"utter_action": "utter_service_unavailable",
                              "action_failed": "action_order_status"}


async def test_a_500_from_the_action_server_gives_the_response():
    server = answering(500, {"error": "boom"})
    try:
        [event] = await run_action(f"http://127.0.0.1:{server.server_port}/webhook")
    finally:
        server.shutdown()
    assert event.metadata["action_failed"] == "action_order_status"


async def test_a_rejection_still_reaches_the_form():
    server = answering(400, {"action_name": "action_order_status", "error": "rejected"})
    try:
        with pytest.raises(ActionExecutionRejection):
            await run_action(f"http://127.0.0.1:{server.server_port}/webhook")
    finally:
        server.shutdown()


async def test_a_working_action_server_is_untouched():
    server = answering(200, {"events": [], "responses": [{"text": "Order KC-1 shipped."}]})
    try:
        [event] = await run_action(f"http://127.0.0.1:{server.server_port}/webhook")
    finally:
        server.shutdown()
    assert event.text == "Order KC-1 shipped." and "action_failed" not in (event.metadata or {})


def test_install_twice_wraps_once():
    action_fallback.install()
    first = RemoteAction.run
    action_fallback.install()
    assert RemoteAction.run._kestrel_action_fallback is first._kestrel_action_fallback
