"""GenerativeNLG: generated text off the event loop, metadata, and every fallback."""
import asyncio
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from components.generator import registry
from components.generator.generator import Generator
from components.nlg import GenerativeNLG, NLGConfigError, conversation_turns, rating_buttons

PROJECT_DOMAIN = Path(__file__).resolve().parents[2] / "domain.yml"
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


class CannedTextGenerator(Generator):
    """Decodes for real, then answers with a text the guardrails always accept."""

    def generate(self, *args, **kwargs):
        return replace(super().generate(*args, **kwargs),
                       text="Yes, we ship to the US and Canada.")


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
    meta = dict(message["generation"])
    assert re.fullmatch(r"[0-9a-f]{16}", meta.pop("reply_id"))
    assert meta == {"generated": False, "fallback": "no_generator"}
    assert "buttons" not in message


async def test_failing_generator_sends_the_canned_text(use_generator):
    use_generator(BrokenGenerator)
    message = await generate(make_nlg(), tracker("tell me a joke"))
    assert message["text"] == "Canned fallback."
    assert message["generation"]["fallback"] == "error"
    assert message["generation"]["reply_id"] and "buttons" not in message


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


async def test_generated_reply_gets_an_id_and_rating_buttons(use_generator):
    use_generator(CannedTextGenerator)
    message = await generate(make_nlg(), tracker("Do you ship to Canada?"))
    assert message["text"] == "Yes, we ship to the US and Canada."
    meta = message["generation"]
    assert meta["generated"] is True
    reply_id = meta["reply_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", reply_id)
    assert message["buttons"] == [
        {"title": "Helpful",
         "payload": '/rate_reply{"rating": "helpful", "reply_id": "%s"}' % reply_id},
        {"title": "Not helpful",
         "payload": '/rate_reply{"rating": "not_helpful", "reply_id": "%s"}' % reply_id},
    ]


async def test_every_reply_has_its_own_id(use_generator):
    use_generator(CannedTextGenerator)
    nlg = make_nlg()
    ids = [(await generate(nlg, tracker("Do you ship to Canada?")))["generation"]["reply_id"]
           for _ in range(5)]
    assert len(set(ids)) == 5


async def test_rating_buttons_can_be_switched_off(use_generator):
    use_generator(CannedTextGenerator)
    message = await generate(make_nlg(rating_buttons=False), tracker("Do you ship to Canada?"))
    assert message["generation"]["generated"] is True
    assert message["generation"]["reply_id"]
    assert "buttons" not in message


async def test_rejected_text_gets_an_id_but_no_buttons(use_generator):
    use_generator(CannedTextGenerator)
    nlg = make_nlg(guardrails={"extra_blocklist": ["canada"]})
    message = await generate(nlg, tracker("Do you ship to Canada?"))
    assert message["text"] == "Canned fallback."
    assert message["generation"]["generated"] is False
    assert message["generation"]["reply_id"] and "buttons" not in message


def test_button_payloads_are_what_rasa_parses_with_the_project_domain():
    """Rasa's own payload handler reads both entities; unknown names would be dropped."""
    from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
    from rasa.shared.nlu.training_data.message import Message

    domain = Domain.load(str(PROJECT_DOMAIN))
    buttons = rating_buttons('ab"c')
    parsed = RegexMessageHandler().process(
        [Message({"text": button["payload"]}) for button in buttons], domain)
    for message, rating in zip(parsed, ("helpful", "not_helpful")):
        assert message.get("intent")["name"] == "rate_reply"
        entities = {e["entity"]: e["value"] for e in message.get("entities")}
        assert entities == {"rating": rating, "reply_id": 'ab"c'}


def test_button_presses_are_left_out_of_the_prompt():
    t = tracker("Do you ship to Canada?", "Yes, we do.",
                '/rate_reply{"rating": "helpful", "reply_id": "abc"}', "Thanks!",
                "and to Mexico?")
    assert [(turn.role, turn.text) for turn in conversation_turns(t)] == [
        ("user", "Do you ship to Canada?"), ("assistant", "Yes, we do."),
        ("assistant", "Thanks!"), ("user", "and to Mexico?")]


def test_conversation_turns_follow_the_tracker():
    turns = conversation_turns(tracker("hi", "Hello!", ""))
    assert [(t.role, t.text) for t in turns] == [
        ("user", "hi"), ("assistant", "Hello!"), ("user", "")]


@pytest.mark.parametrize("options, message", [
    ({"temperature": 0.5}, "Unknown option"),
    ({"decoding": {"temperature": 0}}, "temperature"),
    ({"guardrails": {"blocklist": ["("]}}, "regex"),
    ({"rating_buttons": "yes"}, "rating_buttons"),
    ({"rating_button": True}, r"Unknown option.*rating_button\b"),
])
def test_bad_endpoint_options_are_rejected(options, message):
    with pytest.raises(NLGConfigError, match=message):
        make_nlg(**options)
