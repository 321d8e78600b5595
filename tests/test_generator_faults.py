"""Generator faults in the running assistant: the canned fallback, marked in the tracker.

The session's trained agent answers an open-ended question while its generator
(a) raises, (b) takes longer than ``max_time_s`` + ``timeout_grace_s``. The
customer gets the domain's `utter_gpt_reply` text, the conversation goes on,
and the stored BotUttered says which fallback was used.
"""
from __future__ import annotations

import time
import uuid

import pytest
import yaml

from components.generator import registry
from tests.e2e_fixtures import ROOT

pytestmark = pytest.mark.slow

QUESTION = "do you think a kettle is a good wedding gift?"


class Broken:
    """Stands in for the loaded Generator; ``generate`` fails the way it is told to."""

    def __init__(self, real, mode: str) -> None:
        self.real, self.mode = real, mode
        self.model_version = real.model_version
        self.reads_passages = real.reads_passages

    def generate(self, *args, **kwargs):
        if self.mode == "raise":
            raise RuntimeError("CUDA out of memory (simulated)")
        time.sleep(3.5)  # s: past max_time_s (2.0) + timeout_grace_s (1.0) of endpoints.yml
        return self.real.generate(*args, **kwargs)


@pytest.fixture
def broken_generator(agent):
    real = registry.active()
    assert real is not None, "the trained model registered no generator"
    response = registry.response()  # the policy's, registered with the generator

    def install(mode: str):
        registry.set_active(Broken(real, mode), response)

    yield install
    registry.set_active(real, response)
    # The NLG's single worker may still be decoding the late reply: wait for it,
    # so that the next test's generation does not queue behind it.
    agent.nlg._executor().submit(lambda: None).result(timeout=30)


def canned_texts():
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    return [v["text"] for v in domain["responses"]["utter_gpt_reply"]]


@pytest.mark.parametrize("mode,reason", [("raise", "error"), ("slow", "timeout")])
async def test_generator_fault_sends_the_canned_fallback(agent, broken_generator, mode, reason):
    from rasa.shared.core.events import BotUttered

    broken_generator(mode)
    sender = f"fault-{uuid.uuid4().hex[:8]}"
    replies = await agent.handle_text(QUESTION, sender_id=sender)
    texts = [r.get("text") for r in replies]
    assert any(t in canned_texts() for t in texts), texts
    assert not any(r.get("buttons") for r in replies)  # nothing generated to rate
    tracker = await agent.tracker_store.retrieve(sender)
    bot = [e for e in tracker.events if isinstance(e, BotUttered)][-1]
    generation = bot.metadata["generation"]
    assert generation["generated"] is False and generation["fallback"] == reason
    assert generation["reply_id"]
    # The conversation goes on: a scripted turn right after still works.
    follow_up = await agent.handle_text("where is my order KC-10423?", sender_id=sender)
    assert "email" in " ".join(r.get("text") or "" for r in follow_up).lower()
