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
from components.generator.answers import REPEAT_LEAD, SUGGESTION_LEAD, split_citation
from components.generator.generator import Generator
from components.generator.knowledge import Passage
from components.generator.replies import ReplyBank, WrittenReply
from components.generator.prompt import Turn
from components.nlg.generative_nlg import GenerativeNLG, NLGConfigError, conversation_turns, rating_buttons
from shared_names import GENERATION_KEY, GPT_RESPONSE, GenerationRecord

PROJECT_DOMAIN = Path(__file__).resolve().parents[3] / "domain.yml"
DOMAIN = Domain.from_yaml("""
version: "3.1"
responses:
  utter_greet: [{text: "Hello from the domain!"}]
  utter_gpt_reply: [{text: "Canned fallback."}]
  utter_custom_reply: [{text: "Custom canned fallback."}]
""")
# The keys of a decoded reply's `generation` dict, in the order they have always been stored.
DECODED_KEYS = ["generated", "fallback", "guardrails", "model_id", "model_version",
                "prompt_tokens", "generated_tokens", "latency_ms", "hit_time_budget", "mode",
                "groundedness", "reply_id"]


def make_nlg(**options) -> GenerativeNLG:
    return GenerativeNLG(EndpointConfig(type="components.nlg.generative_nlg.GenerativeNLG", **options), DOMAIN)


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


class BatchRecordingGenerator(Generator):
    """Decodes batches for real, records their sizes, and names each caller's country."""

    def generate_batch(self, conversations, *args, **kwargs):
        self.batches.append(len(conversations))
        generations = super().generate_batch(conversations, *args, **kwargs)
        return [replace(g, text=f"Yes, we ship to {c[-1].text.split()[-1].rstrip('?')}.")
                for g, c in zip(generations, conversations)]


class SlowBatchGenerator(BatchRecordingGenerator):
    def generate_batch(self, *args, **kwargs):
        time.sleep(1.0)
        return super().generate_batch(*args, **kwargs)


class BrokenBatchGenerator(BatchRecordingGenerator):
    def generate_batch(self, conversations, *args, **kwargs):
        self.batches.append(len(conversations))
        raise RuntimeError("out of memory in the batch (simulated)")


@pytest.fixture
def use_generator(tiny_checkpoint):
    def install(cls=Generator):
        generator = cls.load(tiny_checkpoint)
        registry.set_active(generator, GPT_RESPONSE)
        return generator
    yield install
    registry.clear()


async def generate(nlg, t, action="utter_gpt_reply"):
    try:
        return await nlg.generate(action, t, "rest", domain_responses=DOMAIN.responses)
    finally:
        await nlg.close_connections()


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
    registry.clear()
    message = await generate(make_nlg(), tracker("tell me a joke"))
    assert message["text"] == "Canned fallback."
    meta = dict(message["generation"])
    assert re.fullmatch(r"[0-9a-f]{16}", meta.pop("reply_id"))
    assert meta == {"generated": False, "fallback": "no_generator", "mode": "fallback"}
    assert "buttons" not in message


async def test_failing_generator_sends_the_canned_text(use_generator):
    use_generator(BrokenGenerator)
    message = await generate(make_nlg(), tracker("tell me a joke"))
    assert message["text"] == "Canned fallback."
    meta = dict(message["generation"])
    assert re.fullmatch(r"[0-9a-f]{16}", meta.pop("reply_id")) and "buttons" not in message
    assert meta == {"generated": False, "fallback": "error",
                    "model_version": registry.active().model_version, "mode": "fallback"}


async def test_slow_generator_sends_the_canned_text(use_generator):
    use_generator(SlowGenerator)
    nlg = make_nlg(decoding={"max_time_s": 0.1}, timeout_grace_s=0.1)
    message = await generate(nlg, tracker("tell me a joke"))
    assert message["text"] == "Canned fallback."
    meta = dict(message["generation"])
    assert meta.pop("reply_id")
    assert meta == {"generated": False, "fallback": "timeout",
                    "model_version": registry.active().model_version, "mode": "fallback"}


async def test_reply_needs_a_user_turn_last(use_generator):
    use_generator()
    message = await generate(make_nlg(), tracker("hi", "Hello!"))
    meta = dict(message["generation"])
    assert meta.pop("reply_id")
    assert meta == {"generated": False, "fallback": "no_user_turn", "mode": "fallback"}


async def test_empty_message_gets_the_canned_text(use_generator):
    use_generator(BrokenGenerator)  # would fail if it were called
    message = await generate(make_nlg(), tracker("hi", "Hello!", "   "))
    assert message["text"] == "Canned fallback."
    meta = dict(message["generation"])
    assert meta.pop("reply_id")
    assert meta == {"generated": False, "fallback": "empty_message", "mode": "fallback"}


async def test_generated_reply_gets_an_id_and_rating_buttons(use_generator):
    use_generator(CannedTextGenerator)
    message = await generate(make_nlg(), tracker("Do you ship to Canada?"))
    assert message["text"] == "Yes, we ship to the US and Canada."
    meta = message["generation"]
    # Every key of a decoded reply, "fallback": None included.
    assert list(meta) == DECODED_KEYS and meta["fallback"] is None
    assert meta["generated"] is True and meta["guardrails"] == []
    assert meta["mode"] == "generated"
    assert meta["groundedness"] == {"grounded": True, "unsupported": []}
    assert GenerationRecord.from_metadata({GENERATION_KEY: meta}).to_dict() == meta
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
    meta = message["generation"]
    assert list(meta) == [k for k in DECODED_KEYS if k != "groundedness"]  # never checked
    assert (meta["generated"], meta["fallback"], meta["mode"]) == (False, "blocked", "fallback")
    assert meta["guardrails"] == ["blocked:canada"]
    assert meta["reply_id"] and "buttons" not in message


async def test_the_generated_response_is_the_one_the_policy_registered(use_generator):
    generator = use_generator(CannedTextGenerator)
    registry.set_active(generator, "utter_custom_reply")
    nlg = make_nlg()
    message = await generate(nlg, tracker("Do you ship to Canada?"), action="utter_custom_reply")
    assert message["text"] == "Yes, we ship to the US and Canada."
    assert message["generation"]["generated"] is True
    # utter_gpt_reply is now an ordinary domain response.
    message = await generate(nlg, tracker("Do you ship to Canada?"))
    assert message["text"] == "Canned fallback." and "generation" not in message
    registry.set_active(None, "utter_custom_reply")  # the policy's load failed
    message = await generate(nlg, tracker("Do you ship to Canada?"), action="utter_custom_reply")
    assert message["text"] == "Custom canned fallback."
    assert message["generation"]["fallback"] == "no_generator"


async def test_a_domain_without_the_text_sends_an_empty_fallback(caplog):
    registry.clear()
    nlg = make_nlg()
    message = await nlg.generate(GPT_RESPONSE, tracker("tell me a joke"), "rest",
                                 domain_responses={"utter_greet": [{"text": "Hi"}]})
    assert message["text"] == ""
    assert message["generation"]["fallback"] == "no_generator"
    assert f"no text for '{GPT_RESPONSE}'" in caplog.text


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
    ({"max_batch_size": 0}, "max_batch_size"),
    ({"max_batch_size": "8"}, "max_batch_size"),
    ({"torch_threads": 0}, "torch_threads"),
    ({"torch_threads": 1.5}, "torch_threads"),
    ({"max_turns": 0}, "max_turns"),
    ({"response": "utter_gpt_reply"}, "`response` in endpoints.yml is no longer read"),
])
def test_bad_endpoint_options_are_rejected(options, message):
    with pytest.raises(NLGConfigError, match=message):
        make_nlg(**options)


def test_the_options_are_validated_once_into_nlg_config():
    nlg = make_nlg(max_turns=3, decoding={"max_new_tokens": 10}, rating_buttons=False)
    assert nlg.config.max_turns == 3
    assert nlg.config.decoding.max_new_tokens == 10 and nlg.config.rating_buttons is False
    assert GenerativeNLG().config == make_nlg().config  # no endpoint config: the defaults


# --- concurrent replies: queued while the worker is busy, decoded in one batch ---------

COUNTRIES = ["Canada", "Mexico", "France"]


async def concurrent_replies(nlg, hold_s: float = 0.0):
    """Three customers ask while the worker is busy; it is freed after ``hold_s`` s."""
    gate = threading.Event()
    nlg._executor().submit(gate.wait)  # an earlier reply still decoding
    tasks = [asyncio.create_task(generate(nlg, tracker(f"Do you ship to {country}?")))
             for country in COUNTRIES]
    for _ in range(500):  # until all three wait in the queue
        if len(nlg.batcher()._queue) == len(COUNTRIES):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(hold_s)
    gate.set()
    messages = await asyncio.gather(*tasks)
    await asyncio.wrap_future(nlg._executor().submit(lambda: None))  # worker idle again
    return messages


async def test_concurrent_requests_are_decoded_together(use_generator):
    generator = use_generator(BatchRecordingGenerator)
    generator.batches = []
    nlg = make_nlg(decoding={"max_new_tokens": 8}, guardrails={"min_chars": 0, "blocklist": []})
    messages = await concurrent_replies(nlg)
    assert generator.batches == [3] and list(nlg.batcher().batch_sizes) == [3]
    # Each caller gets the reply to its own conversation.
    assert [m["text"] for m in messages] == [f"Yes, we ship to {c}." for c in COUNTRIES]
    for message, country in zip(messages, COUNTRIES):
        meta = message["generation"]
        assert meta["generated"] is True and meta["model_version"] == generator.model_version
        alone = Generator.generate(generator, [Turn("user", f"Do you ship to {country}?")],
                                   nlg.config.decoding)
        assert (meta["prompt_tokens"], meta["generated_tokens"]) == \
            (alone.prompt_tokens, alone.generated_tokens)
        assert message["buttons"][0]["payload"].endswith(f'"{meta["reply_id"]}"}}')
    assert len({m["generation"]["reply_id"] for m in messages}) == 3


class ThreadCountingGenerator(Generator):
    """Records torch's intra-op thread count in the thread that decodes."""

    def generate(self, *args, **kwargs):
        import torch

        self.threads.append(torch.get_num_threads())
        return super().generate(*args, **kwargs)


async def test_the_decode_worker_runs_torch_with_torch_threads(use_generator):
    import torch

    generator = use_generator(ThreadCountingGenerator)
    generator.threads = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for option in (None, 1):
            await make_nlg(torch_threads=option).generate(
                "utter_gpt_reply", tracker("Do you ship to Peru?"), "rest")
    finally:
        torch.set_num_threads(before)
    assert generator.threads == [2, 1]  # null: torch's default (here 2); 1: one thread


async def test_batches_are_capped_at_max_batch_size(use_generator):
    generator = use_generator(BatchRecordingGenerator)
    generator.batches = []
    nlg = make_nlg(max_batch_size=2, decoding={"max_new_tokens": 8},
                   guardrails={"min_chars": 0, "blocklist": []})
    messages = await concurrent_replies(nlg)
    assert list(nlg.batcher().batch_sizes) == [2, 1] and generator.batches == [2]
    assert all(m["generation"]["generated"] is not None for m in messages)
    assert [m["text"] for m in messages][:2] == ["Yes, we ship to Canada.",
                                                "Yes, we ship to Mexico."]


async def test_a_slow_batch_sends_every_caller_the_fallback(use_generator):
    generator = use_generator(SlowBatchGenerator)
    generator.batches = []
    nlg = make_nlg(decoding={"max_time_s": 0.1, "max_new_tokens": 8}, timeout_grace_s=0.1)
    messages = await concurrent_replies(nlg)
    assert generator.batches == [3]  # decoded together, but too late for every caller
    assert [m["text"] for m in messages] == ["Canned fallback."] * 3
    assert {m["generation"]["fallback"] for m in messages} == {"timeout"}


async def test_requests_that_time_out_in_the_queue_are_not_decoded(use_generator):
    generator = use_generator(BatchRecordingGenerator)
    generator.batches = []
    nlg = make_nlg(decoding={"max_time_s": 0.1}, timeout_grace_s=0.1)
    messages = await concurrent_replies(nlg, hold_s=0.5)  # worker busy past the budget
    assert {m["generation"]["fallback"] for m in messages} == {"timeout"}
    assert generator.batches == [] and list(nlg.batcher().batch_sizes) == []


async def test_a_failed_batch_sends_every_caller_the_fallback(use_generator):
    generator = use_generator(BrokenBatchGenerator)
    generator.batches = []
    nlg = make_nlg()
    messages = await concurrent_replies(nlg)
    assert generator.batches == [3]
    assert [m["text"] for m in messages] == ["Canned fallback."] * 3
    assert {m["generation"]["fallback"] for m in messages} == {"error"}
    assert not any(m.get("buttons") for m in messages)
    # The worker is not stuck: the next reply is generated.
    message = await generate(nlg, tracker("Do you ship to Canada?"))
    assert message["generation"]["fallback"] != "error"


# --- Answers from the help center (components/generator/answers.py) ---------------

HELP_CENTER = [
    Passage("shipping-costs#0", "shipping-costs", "Shipping costs", "",
            "Standard shipping is free on orders over $50. Below that, standard shipping "
            "costs $4.95 and takes 3-5 business days."),
    Passage("kestrel-care-plus#0", "kestrel-care-plus", "Kestrel Care Plus", "",
            "Kestrel Care Plus adds accidental damage cover for 3 years from delivery."),
]


class ClaimingGenerator(Generator):
    """Decodes for real, then states a price that no passage supports."""

    def generate(self, *args, **kwargs):
        return replace(super().generate(*args, **kwargs),
                       text="Express delivery costs $9.99 and arrives in 2 days.")


@pytest.fixture(scope="module")
def help_center():
    from components.generator.retrieval import Retriever, minilm_encoder

    return Retriever.build(HELP_CENTER, minilm_encoder())


async def test_a_help_center_question_gets_the_passage_cited_without_decoding(
        help_center, tiny_checkpoint):
    registry.set_active(BrokenGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center)
    try:
        message = await generate(make_nlg(), tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    assert message["text"].startswith("Standard shipping is free on orders over $50.")
    assert message["text"].endswith(
        "\nSource: Shipping costs (https://kestrelhome.example/help/shipping-costs)")
    meta = message["generation"]
    assert (meta["mode"], meta["generated"], meta["fallback"]) == ("extractive", False, None)
    [source] = meta["sources"]
    assert (source["id"], source["url"]) == (
        "shipping-costs#0", "https://kestrelhome.example/help/shipping-costs")
    assert source["dense"] >= 0.45
    assert meta["groundedness"] == {"grounded": True, "unsupported": []}
    assert [b["title"] for b in message["buttons"]] == ["Helpful", "Not helpful"]


async def test_without_a_relevant_passage_the_generator_answers(help_center, tiny_checkpoint):
    registry.set_active(CannedTextGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center)
    try:
        message = await generate(make_nlg(answers={"cite": False}),
                                 tracker("how are you doing today?"))
    finally:
        registry.clear()
    assert message["text"] == "Yes, we ship to the US and Canada."
    assert message["generation"]["mode"] == "generated" and "sources" not in message["generation"]


@pytest.mark.parametrize("learnt,sent", [
    ({"yes we ship to the us and canada"}, True),
    ({"yes we ship to the us"}, False),  # a splice of what it learnt is not enough
])
async def test_the_built_in_models_conversational_reply_passes_the_fluency_gate(
        help_center, tiny_checkpoint, learnt, sent):
    generator = CannedTextGenerator.load(tiny_checkpoint)
    generator.known_sentences = frozenset(learnt)  # as train.py's KNOWN_FILE gives it
    registry.set_active(generator, GPT_RESPONSE, help_center)
    try:
        message = await generate(make_nlg(answers={"cite": False}),
                                 tracker("how are you doing today?"))
    finally:
        registry.clear()
    meta = message["generation"]
    if sent:
        assert message["text"] == "Yes, we ship to the US and Canada."
        assert meta["mode"] == "generated"
    else:
        assert message["text"] == "Canned fallback."
        assert (meta["mode"], meta["fallback"]) == ("fallback", "not_fluent")
        assert meta["generated_tokens"] >= 1  # it was decoded, then refused


async def test_an_unsupported_claim_is_never_sent(help_center, tiny_checkpoint):
    registry.set_active(ClaimingGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center)
    try:
        message = await generate(make_nlg(), tracker("tell me something nice"))
    finally:
        registry.clear()
    assert message["text"] == "Canned fallback." and "buttons" not in message
    meta = message["generation"]
    assert (meta["mode"], meta["generated"], meta["fallback"]) == (
        "fallback", False, "unsupported")
    assert meta["groundedness"] == {
        "grounded": False,
        "unsupported": ["Express delivery costs $9.99 and arrives in 2 days."]}
    assert meta["generated_tokens"] >= 1  # it was decoded, then refused


class PassageReader(Generator):
    """A model trained on passages (``reads_passages``): decodes for real, then answers
    with "Yes." and the first sentence of the first passage it was given, or with
    ``claim`` when set; keeps the passages for the test to read."""

    claim = None

    def generate(self, turns, config, max_turns=6, passages=()):
        self.given = list(passages)
        text = self.claim or "Yes. " + passages[0].split("\n", 1)[1].split(". ")[0] + "."
        return replace(super().generate(turns, config, max_turns, passages), text=text)


@pytest.mark.parametrize("claim,mode", [
    (None, "generated"),
    ("Standard shipping costs $2 and takes 1 day.", "extractive"),  # unsupported: not sent
])
async def test_a_model_that_reads_passages_writes_the_help_center_answer(
        help_center, tiny_checkpoint, claim, mode):
    generator = PassageReader.load(tiny_checkpoint)
    generator.reads_passages, generator.claim = True, claim  # as its meta would say
    registry.set_active(generator, GPT_RESPONSE, help_center)
    try:
        message = await generate(make_nlg(), tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    # It was given the extractive answer's sentences, as one passage of the best article.
    [passage] = generator.given
    assert passage.startswith("Shipping costs\n") and "costs $4.95" in passage
    meta = message["generation"]
    assert meta["mode"] == mode
    assert message["text"].endswith(
        "\nSource: Shipping costs (https://kestrelhome.example/help/shipping-costs)")
    if mode == "generated":
        assert message["text"].startswith("Yes. Standard shipping is free on orders over $50.")
        assert meta["generated"] and meta["sources"][0]["id"] == "shipping-costs#0"
    else:
        assert "$2" not in message["text"] and meta["rejected"]["reason"] == "unsupported"


async def test_the_relevance_threshold_is_a_setting(help_center, tiny_checkpoint):
    registry.set_active(CannedTextGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center)
    try:
        message = await generate(make_nlg(answers={"min_similarity": 0.99}),
                                 tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    assert message["generation"]["mode"] == "generated"  # no passage is that close


@pytest.mark.parametrize("min_suggest_similarity, linked", [(0.0, True), (0.99, False)])
async def test_a_canned_reply_links_the_article_that_came_close(
        help_center, tiny_checkpoint, min_suggest_similarity, linked):
    """No passage is relevant (min_similarity 0.99) and the model's claim is refused: the
    canned text goes, with the closest article linked when it reaches the setting."""
    registry.set_active(ClaimingGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center)
    try:
        message = await generate(
            make_nlg(answers={"min_similarity": 0.99,
                              "min_suggest_similarity": min_suggest_similarity}),
            tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    meta = message["generation"]
    assert (meta["mode"], meta["fallback"]) == ("fallback", "unsupported")
    assert "$9.99" not in message["text"] and "buttons" not in message
    if linked:
        body, cited = split_citation(message["text"])
        assert body == f"Canned fallback. {SUGGESTION_LEAD}"
        assert cited.url == "https://kestrelhome.example/help/shipping-costs"
        assert meta["suggestion"]["slug"] == "shipping-costs" and meta["suggestion"]["dense"] < 0.99
    else:
        assert message["text"] == "Canned fallback." and "suggestion" not in meta


FOLLOW_UP = ("what does kestrel care plus cover?", "It covers accidental damage.",
             "and for how many years?")


@pytest.mark.parametrize("follow_ups", [True, False])
async def test_a_follow_up_is_searched_with_the_message_before_it(
        help_center, tiny_checkpoint, follow_ups):
    registry.set_active(CannedTextGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center)
    try:
        message = await generate(make_nlg(answers={"follow_ups": follow_ups}),
                                 tracker(*FOLLOW_UP))
    finally:
        registry.clear()
    meta = message["generation"]
    if follow_ups:
        assert "3 years from delivery" in message["text"]
        assert meta["mode"] == "extractive"
        assert meta["sources"][0]["id"] == "kestrel-care-plus#0"
        assert meta["query"] == "what does kestrel care plus cover? and for how many years?"
        assert "repeated" not in meta  # the last reply was not this answer
    else:  # alone, "and for how many years?" matches no passage: the generator answers
        assert meta["mode"] == "generated" and "query" not in meta


async def test_a_follow_up_that_only_repeats_the_last_reply_says_so(help_center,
                                                                     tiny_checkpoint):
    question, _, follow_up = FOLLOW_UP
    registry.set_active(CannedTextGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center)
    try:
        nlg = make_nlg()
        first = await generate(nlg, tracker(question))
        message = await generate(nlg, tracker(question, first["text"], follow_up))
        # A third message on the same article: the reply before it opened with the lead.
        again = await generate(nlg, tracker(question, first["text"], follow_up,
                                            message["text"], "and what does it cost?"))
    finally:
        registry.clear()
    assert first["generation"]["mode"] == "extractive" and "repeated" not in first["generation"]
    assert message["text"] == f"{REPEAT_LEAD} {first['text']}"
    assert message["generation"]["repeated"] is True
    assert message["generation"]["mode"] == "extractive"
    assert again["text"] == message["text"] and again["generation"]["repeated"] is True


async def test_a_question_that_stands_alone_is_searched_alone(help_center, tiny_checkpoint):
    registry.set_active(CannedTextGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center)
    try:
        message = await generate(make_nlg(), tracker(
            "what does kestrel care plus cover?", "It covers accidental damage.",
            "how much does standard shipping cost?"))
    finally:
        registry.clear()
    meta = message["generation"]
    assert meta["sources"][0]["id"] == "shipping-costs#0" and "query" not in meta


class BrokenIndex:
    """A help-center index whose search raises, as a corrupt archive would."""

    def relevant(self, *args, **kwargs):
        raise OSError("index file truncated (simulated)")

    search = relevant


async def test_a_failing_help_center_leaves_the_answer_to_the_generator(tiny_checkpoint):
    registry.set_active(CannedTextGenerator.load(tiny_checkpoint), GPT_RESPONSE, BrokenIndex())
    try:
        message = await generate(make_nlg(answers={"cite": False}),
                                 tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    assert message["text"] == "Yes, we ship to the US and Canada."
    assert message["generation"]["mode"] == "generated"


async def test_a_failing_help_center_still_sends_the_canned_reply(tiny_checkpoint):
    registry.set_active(ClaimingGenerator.load(tiny_checkpoint), GPT_RESPONSE, BrokenIndex())
    try:
        message = await generate(make_nlg(answers={"min_suggest_similarity": -1.0}),
                                 tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    assert message["text"] == "Canned fallback."  # no related article, and no error
    assert "suggestion" not in message["generation"]


async def test_retrieval_and_the_nlu_featurizer_share_the_encoder_safely(help_center):
    """Encoding from many threads at once, as the NLU and the NLG do, never fails."""
    from concurrent.futures import ThreadPoolExecutor

    from components.nlu import minilm

    def nlu_like(i):  # what the sentence featurizer does, under the same lock
        with minilm.LOCK:
            return minilm.load().tokenizer([f"where is order {i}"] * 3, padding=True,
                                           truncation=True, max_length=16 + i % 7)

    with ThreadPoolExecutor(8) as pool:
        searches = [pool.submit(help_center.search, f"shipping question {i}", 2)
                    for i in range(40)]
        parses = [pool.submit(nlu_like, i) for i in range(40)]
        assert all(len(f.result()) == 2 for f in searches)
        assert all(f.result()["input_ids"] is not None for f in parses)


# --- Written replies for what the help center cannot answer (generator/replies.py) --

WRITTEN = [WrittenReply("tell me a joke", "I'm better at parcels than jokes! Anything about "
                        "an order I can help with?", "no_answer.yml#0")]


@pytest.fixture(scope="module")
def written_replies():
    from components.generator.retrieval import minilm_encoder

    return ReplyBank.build(WRITTEN, minilm_encoder())


async def test_an_off_topic_message_gets_the_written_reply_without_decoding(
        help_center, written_replies, tiny_checkpoint):
    registry.set_active(BrokenGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center,
                        written_replies)
    try:
        message = await generate(make_nlg(), tracker("could you tell me a joke please"))
    finally:
        registry.clear()
    assert message["text"] == WRITTEN[0].answer
    meta = message["generation"]
    assert (meta["mode"], meta["generated"], meta["fallback"]) == ("retrieved", False, None)
    [source] = meta["sources"]
    assert source["id"] == "no_answer.yml#0" and source["dense"] >= 0.6
    assert "buttons" not in message  # nothing from the store to rate


async def test_a_help_center_question_never_gets_a_written_reply(
        help_center, written_replies, tiny_checkpoint):
    registry.set_active(BrokenGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center,
                        written_replies)
    try:
        message = await generate(make_nlg(), tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    assert message["generation"]["mode"] == "extractive"


async def test_a_message_closer_to_a_written_reply_than_to_the_passage_gets_the_reply(
        help_center, written_replies, tiny_checkpoint):
    from components.generator.answers import AnswerConfig, retrieve

    message = "could you tell me a joke please"
    [best] = retrieve(help_center, message, AnswerConfig(top_k=1, min_similarity=-1.0))
    assert not best.question and best.dense < written_replies.nearest(message, -1.0).similarity
    registry.set_active(BrokenGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center,
                        written_replies)
    try:  # min_similarity -1: every passage is relevant, yet the written reply is closer
        sent = await generate(make_nlg(answers={"min_similarity": -1.0}), tracker(message))
        shipping = await generate(make_nlg(answers={"min_similarity": -1.0}),
                                  tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    assert (sent["text"], sent["generation"]["mode"]) == (WRITTEN[0].answer, "retrieved")
    assert shipping["generation"]["mode"] == "extractive"  # closer to its passage


async def test_a_message_far_from_every_written_reply_goes_to_the_generator(
        help_center, written_replies, tiny_checkpoint):
    registry.set_active(CannedTextGenerator.load(tiny_checkpoint), GPT_RESPONSE, help_center,
                        written_replies)
    try:
        message = await generate(make_nlg(answers={"cite": False, "min_reply_similarity": 0.99}),
                                 tracker("could you tell me a joke please"))
    finally:
        registry.clear()
    assert message["generation"]["mode"] == "generated"


# --- An inference server writes the replies (components/generator/server.py) -------

@pytest.fixture
def llm_server():
    from tests.components.generator.openai_server import FakeServer

    with FakeServer() as server:
        yield server


def server_nlg(fake, server_options=None, **options) -> GenerativeNLG:
    """An NLG whose replies come from the fake server ``fake``."""
    from tests.components.generator.openai_server import MODEL

    return make_nlg(server={"url": fake.url, "model": MODEL, **(server_options or {})},
                    decoding={"max_time_s": 1.0}, **options)


async def test_a_server_writes_the_help_center_answer_from_the_passages(help_center, llm_server):
    from tests.components.generator.openai_server import FINGERPRINT, MODEL

    registry.set_active(None, GPT_RESPONSE, help_center)  # no model in the archive is needed
    try:
        message = await generate(server_nlg(llm_server), tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    # The fake server's "model" copies the first sentence of passage [1].
    assert message["text"] == ("Standard shipping is free on orders over $50.\n"
                               "Source: Shipping costs (https://kestrelhome.example/help/shipping-costs)")
    meta = message["generation"]
    assert (meta["mode"], meta["generated"], meta["fallback"]) == ("generated", True, None)
    assert (meta["model_id"], meta["model_version"]) == (MODEL, f"{MODEL}@{FINGERPRINT}")
    assert meta["sources"][0]["slug"] == "shipping-costs"
    assert meta["groundedness"]["grounded"] is True and "rejected" not in meta
    system = llm_server.requests[-1]["messages"][0]
    assert system["role"] == "system" and "Standard shipping costs $4.95" not in system["content"]
    assert "[1] Shipping costs\nStandard shipping is free" in system["content"]
    assert [b["title"] for b in message["buttons"]] == ["Helpful", "Not helpful"]


async def test_an_unsupported_server_answer_is_replaced_by_the_extractive_one(
        help_center, llm_server):
    from tests.components.generator.openai_server import CLAIM

    llm_server.behaviour = "claim"
    registry.set_active(None, GPT_RESPONSE, help_center)
    try:
        message = await generate(server_nlg(llm_server), tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    assert message["text"].startswith("Standard shipping is free on orders over $50.")
    assert CLAIM not in message["text"]
    meta = message["generation"]
    assert (meta["mode"], meta["generated"]) == ("extractive", False)
    assert meta["rejected"] == {"reason": "unsupported", "text": CLAIM}


@pytest.mark.parametrize("question, mode", [
    ("how much does shipping cost?", "extractive"),  # a passage answers: the safety net
    ("tell me a joke", "fallback")])  # nothing answers: the canned text
async def test_a_failing_server_never_ends_the_conversation(
        help_center, llm_server, question, mode):
    llm_server.behaviour = "http_503"
    registry.set_active(None, GPT_RESPONSE, help_center)
    try:
        message = await generate(server_nlg(llm_server), tracker(question))
    finally:
        registry.clear()
    meta = message["generation"]
    assert meta["mode"] == mode
    assert meta["rejected"] == {"reason": "server_http_503", "text": ""} if mode == "extractive" \
        else (message["text"], meta["fallback"]) == ("Canned fallback.", "server_http_503")


async def test_an_open_circuit_answers_at_once_without_asking_the_server(help_center, llm_server):
    llm_server.behaviour = "http_500"
    registry.set_active(None, GPT_RESPONSE, help_center)
    nlg = server_nlg(llm_server, {"failure_threshold": 2, "recovery_s": 60})
    try:
        for _ in range(2):
            await generate(nlg, tracker("tell me a joke"))
        asked = len(llm_server.requests)
        message = await generate(nlg, tracker("tell me a joke"))
    finally:
        registry.clear()
    assert message["generation"]["fallback"] == "server_unavailable"
    assert len(llm_server.requests) == asked


async def test_a_conversational_server_reply_is_checked_and_sent(help_center, llm_server):
    from tests.components.generator.openai_server import GREETING

    registry.set_active(None, GPT_RESPONSE, help_center)
    try:
        message = await generate(server_nlg(llm_server), tracker("hey there, how are you?"))
    finally:
        registry.clear()
    assert message["text"] == GREETING
    assert message["generation"]["mode"] == "generated"
    assert llm_server.requests[-1]["messages"] == [
        {"role": "user", "content": "hey there, how are you?"}]


class PassageRecordingGenerator(ClaimingGenerator):
    """The tiny generator, remembering the passages each reply was asked to use."""

    passages = None

    def generate(self, turns, config, max_turns=6, passages=()):
        type(self).passages = list(passages)
        return super().generate(turns, config, max_turns, passages)


async def test_with_generate_on_the_archive_model_gets_the_passages(help_center, tiny_checkpoint):
    registry.set_active(PassageRecordingGenerator.load(tiny_checkpoint), GPT_RESPONSE,
                        help_center)
    try:
        message = await generate(make_nlg(answers={"generate": True}),
                                 tracker("how much does shipping cost?"))
    finally:
        registry.clear()
    assert PassageRecordingGenerator.passages[0].startswith(
        "Shipping costs\nStandard shipping is free on orders over $50.")
    # Its text states a price no passage gives, so the check refuses it.
    assert message["generation"]["mode"] == "extractive"
    assert message["generation"]["rejected"]["reason"] == "unsupported"


@pytest.mark.parametrize("server, message", [
    ({"url": "localhost:11434/v1", "model": "m"}, "server: url has to be"),
    ({"model": "m"}, "server: server needs \\['url'\\]"),
    ("http://localhost:11434/v1", "server has to be a mapping"),
])
def test_bad_server_options_name_the_key(server, message):
    with pytest.raises(NLGConfigError, match=message):
        make_nlg(server=server)
