"""RequestBatcher: queued requests decoded together, each caller's own future (no model)."""
from __future__ import annotations

import threading
from concurrent.futures import CancelledError, ThreadPoolExecutor

import pytest

from components.generator.batching import RequestBatcher, decode
from components.generator.config import GenerationConfig
from components.generator.prompt import Turn


class Echo:
    """Answers each conversation with its last text; records how it was called."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = []
        self.fail = fail

    def generate(self, turns, config, max_turns):
        self.calls.append(("generate", [turns[-1].text]))
        return f"re: {turns[-1].text}"

    def generate_batch(self, conversations, config, max_turns):
        self.calls.append(("generate_batch", [c[-1].text for c in conversations]))
        if self.fail:
            raise RuntimeError("out of memory (simulated)")
        return [f"re: {c[-1].text}" for c in conversations]


class OnlyGenerate:
    def __init__(self) -> None:
        self.calls = 0

    def generate(self, turns, config, max_turns):
        self.calls += 1
        return turns[-1].text.upper()


def user(text):
    return [Turn("user", text)]


@pytest.fixture
def pool():
    executor = ThreadPoolExecutor(max_workers=1)
    yield executor
    executor.shutdown(wait=True)


def held(pool):
    """Keeps the single worker busy until the returned event is set."""
    gate = threading.Event()
    pool.submit(gate.wait)
    return gate


CONFIG = GenerationConfig()


def test_requests_queued_while_busy_are_decoded_in_one_batch(pool):
    generator, batcher = Echo(), RequestBatcher(pool, max_batch_size=8)
    gate = held(pool)
    futures = [batcher.submit(generator, user(f"q{i}"), CONFIG, 6) for i in range(5)]
    gate.set()
    assert [f.result(timeout=10) for f in futures] == [f"re: q{i}" for i in range(5)]
    assert generator.calls == [("generate_batch", ["q0", "q1", "q2", "q3", "q4"])]
    assert list(batcher.batch_sizes) == [5]


def test_a_lone_request_uses_generate(pool):
    generator, batcher = Echo(), RequestBatcher(pool)
    assert batcher.submit(generator, user("hi"), CONFIG, 6).result(timeout=10) == "re: hi"
    assert generator.calls == [("generate", ["hi"])]


def test_batches_are_capped_and_split_by_generator_and_config(pool):
    a, b = Echo(), Echo()
    batcher = RequestBatcher(pool, max_batch_size=2)
    other = GenerationConfig(max_new_tokens=5)
    gate = held(pool)
    futures = [batcher.submit(a, user("a1"), CONFIG, 6), batcher.submit(b, user("b1"), CONFIG, 6),
               batcher.submit(a, user("a2"), other, 6), batcher.submit(a, user("a3"), CONFIG, 6),
               batcher.submit(a, user("a4"), CONFIG, 6), batcher.submit(a, user("a5"), CONFIG, 4)]
    gate.set()
    assert [f.result(timeout=10) for f in futures] == [
        "re: a1", "re: b1", "re: a2", "re: a3", "re: a4", "re: a5"]
    assert a.calls == [("generate_batch", ["a1", "a3"]), ("generate", ["a2"]),
                       ("generate", ["a4"]), ("generate", ["a5"])]
    assert b.calls == [("generate", ["b1"])]
    assert list(batcher.batch_sizes) == [2, 1, 1, 1, 1]


def test_a_failed_batch_fails_every_request_in_it(pool):
    generator, batcher = Echo(fail=True), RequestBatcher(pool)
    gate = held(pool)
    futures = [batcher.submit(generator, user(f"q{i}"), CONFIG, 6) for i in range(3)]
    gate.set()
    for f in futures:
        with pytest.raises(RuntimeError, match="simulated"):
            f.result(timeout=10)
    # The worker goes on: the next request is answered.
    ok = Echo()
    assert batcher.submit(ok, user("next"), CONFIG, 6).result(timeout=10) == "re: next"


def test_cancelled_requests_are_not_decoded(pool):
    generator, batcher = Echo(), RequestBatcher(pool)
    gate = held(pool)
    futures = [batcher.submit(generator, user(f"q{i}"), CONFIG, 6) for i in range(3)]
    assert futures[0].cancel() and futures[2].cancel()
    gate.set()
    assert futures[1].result(timeout=10) == "re: q1"
    with pytest.raises(CancelledError):
        futures[0].result()
    assert generator.calls == [("generate", ["q1"])]


def test_a_generator_without_generate_batch_decodes_one_by_one(pool):
    generator, batcher = OnlyGenerate(), RequestBatcher(pool)
    gate = held(pool)
    futures = [batcher.submit(generator, user(t), CONFIG, 6) for t in ("a", "b")]
    gate.set()
    assert [f.result(timeout=10) for f in futures] == ["A", "B"]
    assert generator.calls == 2 and list(batcher.batch_sizes) == [2]
    assert decode(generator, [user("c")], CONFIG, 6) == ["C"]


def test_executor_submit_waits_for_everything_queued_before(pool):
    generator, batcher = Echo(), RequestBatcher(pool)
    gate = held(pool)
    futures = [batcher.submit(generator, user(f"q{i}"), CONFIG, 6) for i in range(3)]
    gate.set()
    pool.submit(lambda: None).result(timeout=10)
    assert all(f.done() for f in futures)


def test_max_batch_size_must_be_positive(pool):
    with pytest.raises(ValueError, match="max_batch_size"):
        RequestBatcher(pool, max_batch_size=0)
