"""The inference-server backend against a local server that follows the OpenAI API."""
import asyncio
import socket

import pytest

from components.generator.config import GenerationConfig
from components.generator.prompt import GROUNDED_INSTRUCTIONS, Turn, format_passage
from components.generator.server import (
    MALFORMED, TIMEOUT, UNAVAILABLE, UNREACHABLE, ServerConfig, ServerError, ServerGenerator,
    request_body, shorter_messages)
from tests.components.generator.openai_server import (
    CLAIM, FINGERPRINT, GREETING, MODEL, FakeServer)

PASSAGES = [format_passage("Shipping costs", "",
                           "Standard shipping costs $4.95. It is free over $50."),
            format_passage("Returns", "Windows", "Returns are accepted for 30 days.")]
QUESTION = [Turn("user", "how much is shipping?")]
FAST = GenerationConfig(max_time_s=1.0)


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def backend(url, **options) -> ServerGenerator:
    return ServerGenerator(ServerConfig(url=url, model=MODEL, **options))


async def ask(generator, turns=QUESTION, passages=(), config=FAST):
    try:
        return await generator.agenerate(turns, config, 6, passages)
    finally:
        await generator.close()


@pytest.mark.parametrize("stream", [True, False])
async def test_the_reply_and_its_record_come_from_the_server(server, stream):
    generation = await ask(backend(server.url, stream=stream), passages=PASSAGES)
    assert generation.text == "Standard shipping costs $4.95."
    assert (generation.model_id, generation.model_version) == (MODEL, f"{MODEL}@{FINGERPRINT}")
    assert generation.generated_tokens == 4 and generation.prompt_tokens > 10
    assert generation.hit_time_budget is False and generation.latency_ms > 0
    assert server.requests[-1]["stream"] is stream


async def test_passages_go_in_the_system_message_and_turns_keep_their_roles(server):
    turns = [Turn("user", "hi"), Turn("assistant", "Hello!"), Turn("user", "shipping cost?")]
    await ask(backend(server.url), turns, PASSAGES)
    messages = server.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    system = messages[0]["content"]
    assert system.startswith(GROUNDED_INSTRUCTIONS)
    assert "[1] Shipping costs\nStandard shipping costs $4.95." in system
    assert "[2] Returns - Windows\nReturns are accepted for 30 days." in system
    assert messages[-1]["content"] == "shipping cost?"  # never mixed into the system text


async def test_without_passages_there_is_no_system_message_unless_one_is_set(server):
    await ask(backend(server.url))
    assert [m["role"] for m in server.requests[-1]["messages"]] == ["user"]
    generation = await ask(backend(server.url, system_prompt="Be brief."))
    assert server.requests[-1]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert generation.text == GREETING


def test_greedy_is_temperature_zero_and_sampling_sends_its_settings():
    config = ServerConfig(url="http://localhost:11434/v1", model="m")
    greedy = request_body(config, GenerationConfig(max_new_tokens=20), [])
    assert (greedy["temperature"], greedy["max_tokens"]) == (0.0, 20)
    assert "top_p" not in greedy and "top_k" not in greedy
    sampled = request_body(config, GenerationConfig(do_sample=True, temperature=0.5, top_p=0.8,
                                                    top_k=40, seed=7), [])
    assert {k: sampled[k] for k in ("temperature", "top_p", "top_k", "seed")} == {
        "temperature": 0.5, "top_p": 0.8, "top_k": 40, "seed": 7}
    assert sampled["stream_options"] == {"include_usage": True}


async def test_the_api_key_is_sent_as_a_bearer_token(server):
    await ask(backend(server.url, api_key="sk-local-123"))
    assert server.headers[-1]["Authorization"] == "Bearer sk-local-123"
    await ask(backend(server.url))
    assert "Authorization" not in server.headers[-1]


@pytest.mark.parametrize("behaviour, reason", [
    ("http_500", "server_http_500"), ("http_429", "server_http_429"),
    ("malformed", MALFORMED), ("slow", TIMEOUT)])
@pytest.mark.parametrize("stream", [True, False])
async def test_a_failing_server_raises_with_the_reason(server, behaviour, reason, stream):
    server.behaviour = behaviour
    with pytest.raises(ServerError) as failure:
        await ask(backend(server.url, stream=stream))
    assert failure.value.reason == reason


async def test_a_stream_that_stalls_is_cut_at_the_budget_with_its_text(server):
    server.behaviour = "stall"
    generation = await ask(backend(server.url), passages=PASSAGES)
    assert generation.text == "Standard"  # the first word arrived, then the budget ran out
    assert generation.hit_time_budget is True


async def test_a_server_that_is_down_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(ServerError) as failure:
        await ask(backend(f"http://127.0.0.1:{port}/v1"))
    assert failure.value.reason == UNREACHABLE


async def test_the_circuit_opens_after_repeated_failures_and_stops_calling(server):
    server.behaviour = "http_500"
    generator = backend(server.url, failure_threshold=2, recovery_s=0.5)
    try:
        for _ in range(2):
            with pytest.raises(ServerError):
                await generator.agenerate(QUESTION, FAST)
        assert generator.circuit_open
        calls = len(server.requests)
        with pytest.raises(ServerError) as failure:
            await generator.agenerate(QUESTION, FAST)
        assert failure.value.reason == UNAVAILABLE
        assert len(server.requests) == calls  # the dead server was not asked again
        server.behaviour = "ok"
        await asyncio.sleep(0.6)  # the circuit lets one request through to try the server
        assert (await generator.agenerate(QUESTION, FAST)).text == GREETING
        assert not generator.circuit_open
    finally:
        await generator.close()


async def test_a_refused_request_does_not_open_the_circuit(server):
    # A 400 (llama.cpp's answer to a prompt past the model's context) is this request's
    # problem, not the server's: the next request is still sent.
    server.behaviour = "http_400"
    generator = backend(server.url, failure_threshold=2, recovery_s=60)
    try:
        for _ in range(3):
            with pytest.raises(ServerError) as failure:
                await generator.agenerate(QUESTION, FAST)
            assert failure.value.reason == "server_http_400"
        assert not generator.circuit_open and len(server.requests) == 3
    finally:
        await generator.close()


async def test_a_request_too_long_for_the_context_is_sent_once_more_shorter(server):
    # A small model served with a short context refuses the whole conversation and both
    # passages; the second request holds the last user turn and the best passage's
    # first sentence, and the reply is written from it.
    turns = [Turn("user", "hi"), Turn("assistant", "Hello! " * 40), Turn("user", "shipping?")]
    server.context_chars = len(GROUNDED_INSTRUCTIONS) + 200
    generation = await ask(backend(server.url), turns, PASSAGES)
    assert generation.text == "Standard shipping costs $4.95."
    full, shorter = server.requests
    assert [m["role"] for m in full["messages"]] == ["system", "user", "assistant", "user"]
    assert [m["role"] for m in shorter["messages"]] == ["system", "user"]
    system = shorter["messages"][0]["content"]
    assert system.endswith("[1] Shipping costs\nStandard shipping costs $4.95.")
    assert "free over $50" not in system and "Returns" not in system


async def test_a_request_still_too_long_when_shorter_is_refused(server):
    server.context_chars = 10  # not even the instructions fit
    with pytest.raises(ServerError) as failure:
        await ask(backend(server.url), passages=PASSAGES)
    assert failure.value.reason == "server_http_400" and len(server.requests) == 2


def test_the_shorter_request_of_a_passage_without_a_header_is_its_first_sentence():
    messages = shorter_messages(QUESTION, None, ["Shipping is $4.95. It is free over $50."])
    assert messages[0]["content"].endswith("[1] Shipping is $4.95.")
    assert shorter_messages(QUESTION, None, []) == [{"role": "user", "content": "how much is shipping?"}]


async def test_the_claiming_server_is_what_the_checks_are_for(server):
    server.behaviour = "claim"
    assert (await ask(backend(server.url), passages=PASSAGES)).text == CLAIM


@pytest.mark.parametrize("options, message", [
    ({"url": "localhost:11434", "model": "m"}, "http(s) base URL"),
    ({"url": "http://h/v1", "model": " "}, "model name"),
    ({"url": "http://h/v1", "model": "m", "failure_threshold": 0}, "failure_threshold"),
    ({"url": "http://h/v1", "model": "m", "recovery_s": -1}, "recovery_s"),
    ({"url": "http://h/v1", "model": "m", "timeout": 3}, "unknown server option"),
    ({"model": "m"}, "needs ['url']"),
])
def test_bad_server_options_are_named(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        ServerConfig.from_dict(options)
