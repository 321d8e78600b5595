"""GenerativeNLG: generated text off the event loop, metadata, and every fallback."""
import asyncio
import threading
import time

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from components.generator import registry
from components.generator.generator import Generator
from components.nlg import GenerativeNLG, NLGConfigError, conversation_turns

DOMAIN = Domain.from_yaml("""
version: "3.1"
responses:
  utter_greet: [{text: "Hello from the domain!"}]
  utter_gpt_reply: [{text: "Canned fallback."}]
""")


def make_nlg(**options) -> GenerativeNLG:
    return GenerativeNLG(EndpointConfig(type="components.nlg.GenerativeNLG", **options), DOMAIN)


def tracker(*texts: str) -> DialogueStateTracker:
    events = []
    for i, text in enumerate(texts):
        events.append(UserUttered(text) if i % 2 == 0 else BotUttered(text))
    return DialogueStateTracker.from_events("nlg-user", events)


class RecordingGenerator(Generator):
    """The real tiny generator, remembering which thread decoded."""

    thread_id = None

    def generate(self, *args, **kwargs):
        type(self).thread_id = threading.get_ident()
        return super().generate(*args, **kwargs)


class SlowGenerator(Generator):
    def generate(self, *args, **kwargs):
        time.sleep(1.0)
        return super().generate(*args, **kwargs)


class BrokenGenerator(Generator):
    def generate(self, *args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")


@pytest.fixture
def use_generator(tiny_checkpoint):
    def install(cls=Generator):
        generator = cls.load(tiny_checkpoint)
        registry.set_active(generator)
        return generator
    yield install
    registry.set_active(None)


async def generate(nlg, t, action="utter_gpt_reply"):
    return await nlg.generate(action, t, "rest", domain_responses=DOMAIN.responses)


async def test_generated_reply_runs_in_a_worker_thread(use_generator):
    generator = use_generator(RecordingGenerator)
    nlg = make_nlg(decoding={"max_new_tokens": 10},
                   guardrails={"min_chars": 0, "blocklist": []})
    message = await generate(nlg, tracker("Do you ship to Canada?"))
    assert RecordingGenerator.thread_id not in (None, threading.get_ident())
    meta = message["generation"]
    assert meta["model_version"] == generator.model_version
    assert meta["latency_ms"] > 0 and 1 <= meta["generated_tokens"] <= 10
    assert meta["generated"] == (meta["fallback"] is None)
    assert message["text"]


async def test_event_loop_keeps_running_during_generation(use_generator):
    use_generator(SlowGenerator)
    nlg = make_nlg(decoding={"max_time_s": 5.0})
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await generate(nlg, tracker("How are you?"))
    task.cancel()
    # The generator sleeps 1 s in its thread; a blocked loop would tick ~0 times.
    assert ticks > 10


async def test_other_responses_come_from_the_domain(use_generator):
    use_generator()
    message = await generate(make_nlg(), tracker("hi"), action="utter_greet")
    assert message["text"] == "Hello from the domain!"
    assert "generation" not in message


async def test_no_generator_sends_the_canned_text():
    registry.set_active(None)
    message = await generate(make_nlg(), tracker("tell me a joke"))
    assert message["text"] == "Canned fallback."
    assert message["generation"] == {"generated": False, "fallback": "no_generator"}


async def test_failing_generator_sends_the_canned_text(use_generator):
    use_generator(BrokenGenerator)
    message = await generate(make_nlg(), tracker("tell me a joke"))
    assert message["text"] == "Canned fallback."
    assert message["generation"]["fallback"] == "error"


async def test_slow_generator_sends_the_canned_text(use_generator):
    use_generator(SlowGenerator)
    nlg = make_nlg(decoding={"max_time_s": 0.1}, timeout_grace_s=0.1)
    message = await generate(nlg, tracker("tell me a joke"))
    assert message["text"] == "Canned fallback."
    assert message["generation"]["fallback"] == "timeout"


async def test_reply_needs_a_user_turn_last(use_generator):
    use_generator()
    message = await generate(make_nlg(), tracker("hi", "Hello!"))
    assert message["generation"]["fallback"] == "no_user_turn"


async def test_empty_message_gets_the_canned_text(use_generator):
    use_generator(BrokenGenerator)  # would fail if it were called
    message = await generate(make_nlg(), tracker("hi", "Hello!", "   "))
    assert message["text"] == "Canned fallback."
    assert message["generation"]["fallback"] == "empty_message"


def test_conversation_turns_follow_the_tracker():
    turns = conversation_turns(tracker("hi", "Hello!", ""))
    assert [(t.role, t.text) for t in turns] == [
        ("user", "hi"), ("assistant", "Hello!"), ("user", "")]


@pytest.mark.parametrize("options, message", [
    ({"temperature": 0.5}, "Unknown option"),
    ({"decoding": {"temperature": 0}}, "temperature"),
    ({"guardrails": {"blocklist": ["("]}}, "regex"),
])
def test_bad_endpoint_options_are_rejected(options, message):
    with pytest.raises(NLGConfigError, match=message):
        make_nlg(**options)
