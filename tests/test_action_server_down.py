"""The action server is down: the trained assistant apologises instead of going silent.

The agent is loaded as `rasa run` loads it, but its action endpoint is a port
where nothing listens. A turn that needs a custom action (the order-status
form's validation and its lookup) gets the domain's utter_service_unavailable,
stored with the failed action's name, and the same conversation goes on once
the action server is back.
"""
from __future__ import annotations

import pytest

from tests.e2e_fixtures import Chat, ROOT, free_port, responses

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def agent_without_actions(trained_model, tmp_path_factory):
    from rasa.core.agent import Agent
    from rasa.core.utils import AvailableEndpoints
    from rasa.utils.endpoints import EndpointConfig

    from components.stores.tracker_store import URLSQLTrackerStore

    endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml"))
    url = f"sqlite:///{tmp_path_factory.mktemp('down') / 'tracker.db'}"
    return Agent.load(trained_model, generator=endpoints.nlg,
                      tracker_store=URLSQLTrackerStore(url=url),
                      action_endpoint=EndpointConfig(url=f"http://127.0.0.1:{free_port()}/webhook"))


async def test_a_custom_action_turn_gets_the_polite_response(agent_without_actions,
                                                             action_server):
    from rasa.shared.core.events import BotUttered
    from rasa.utils.endpoints import EndpointConfig

    chat = Chat(agent_without_actions)
    assert await chat.say("hello there") in responses("utter_greet")
    reply = await chat.say("where is my order KC-10423?")
    assert responses("utter_service_unavailable")[0] in reply
    failed = [e for e in await chat.events()
              if isinstance(e, BotUttered) and (e.metadata or {}).get("action_failed")]
    assert failed and failed[0].metadata["action_failed"].startswith(("validate_", "action_"))

    # Once the action server answers again, the same conversation goes on: the form
    # still waits for the email, and the lookup works.
    agent_without_actions.processor.action_endpoint = EndpointConfig(url=action_server["url"])
    status = await chat.say("jane.doe@example.com")
    assert "KC-10423" in status and responses("utter_service_unavailable")[0] not in status
