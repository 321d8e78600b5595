"""Decoding concurrent requests together: one worker, one ``generate_batch`` per queue.

On a CPU, a small model's decoding step costs about the same for 1 or 8
sequences (per-step Python and kernel-launch overhead, not arithmetic, is most
of it), so replies to requests that arrive while the worker is busy are
decoded in one batch instead of one after another.

``RequestBatcher.submit`` queues a request and returns a
``concurrent.futures.Future``; the worker (a job on the given executor, one at
a time) takes the queued requests, up to ``max_batch_size`` that share the
same generator, decoding config and ``max_turns``, decodes them in one call
and resolves each request's own future. A lone request is decoded with
``generate`` right away (no waiting for company), so batching adds no latency
when the server is quiet. A request whose future was cancelled before the
worker took it (its caller timed out) is dropped, not decoded.

No Rasa imports: ``components.nlg.generative_nlg`` is the Rasa adapter that awaits the futures.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Deque, List, Sequence, Tuple

from components.generator.config import GenerationConfig
from components.generator.prompt import Turn

logger = logging.getLogger(__name__)


@dataclass
class _Request:
    generator: Any  # a Generator, or anything with generate(turns, config, max_turns)
    turns: Sequence[Turn]
    config: GenerationConfig
    max_turns: int
    passages: Tuple[str, ...] = ()  # help-center passages for the system message
    future: Future = field(default_factory=Future)

    def key(self):
        return id(self.generator), self.config, self.max_turns


class RequestBatcher:
    """Queues reply requests and decodes the queued ones together on ``executor``.

    ``executor`` should have a single worker (decodes on 2 cores only slow each
    other down); the batcher keeps at most one drain job on it at a time, so
    ``executor.submit(fn).result()`` still waits for every request queued
    before it.
    """

    def __init__(self, executor: Executor, max_batch_size: int = 8) -> None:
        """Raises ValueError if ``max_batch_size`` < 1."""
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size has to be >= 1, got {max_batch_size!r}.")
        self.executor = executor
        self.max_batch_size = max_batch_size
        self._queue: Deque[_Request] = deque()
        self._lock = threading.Lock()
        self._draining = False
        # Requests per decoding call, the latest 1024 (benchmarks, tests, debugging).
        self.batch_sizes: Deque[int] = deque(maxlen=1024)

    def submit(self, generator, turns: Sequence[Turn], config: GenerationConfig,
               max_turns: int, passages: Sequence[str] = ()) -> Future:
        """Queues one reply; the Future resolves to its ``Generation``.

        ``passages`` (``prompt.format_passage`` texts) are the help-center
        passages the reply is to be written from; requests with and without
        passages share a batch.

        The Future raises what the decoding raised (for a batch: every request
        in it gets that exception). Cancelling it before the worker takes the
        request drops the request.
        """
        request = _Request(generator, turns, config, max_turns, tuple(passages))
        with self._lock:
            self._queue.append(request)
            start = not self._draining
            self._draining = True
        if start:
            try:
                self.executor.submit(self._drain)
            except BaseException:  # executor shut down: nobody would ever drain
                with self._lock:
                    self._draining = False
                raise
        return request.future

    def _take(self) -> List[_Request]:
        """The next batch: the oldest live request and up to max-1 more with its key."""
        with self._lock:
            while self._queue:
                first = self._queue.popleft()
                if first.future.set_running_or_notify_cancel():
                    break
            else:
                self._draining = False
                return []
            batch, rest = [first], deque()
            while self._queue and len(batch) < self.max_batch_size:
                request = self._queue.popleft()
                if request.key() != first.key():
                    rest.append(request)
                elif request.future.set_running_or_notify_cancel():
                    batch.append(request)
            rest.extend(self._queue)
            self._queue = rest
            return batch

    def _drain(self) -> None:
        """Runs on the executor: decodes batches until the queue is empty."""
        while True:
            batch = self._take()
            if not batch:
                return
            self.batch_sizes.append(len(batch))
            try:
                generations = decode(batch[0].generator, [r.turns for r in batch],
                                     batch[0].config, batch[0].max_turns,
                                     [r.passages for r in batch])
                if len(generations) != len(batch):
                    raise RuntimeError(f"{len(generations)} replies for {len(batch)} requests")
            except BaseException as e:  # noqa: BLE001 - handed to every caller in the batch
                for request in batch:
                    request.future.set_exception(e)
                continue
            for request, generation in zip(batch, generations):
                request.future.set_result(generation)


def decode(generator, conversations: Sequence[Sequence[Turn]], config: GenerationConfig,
           max_turns: int, passages: Sequence[Sequence[str]] = ()) -> list:
    """Replies to ``conversations`` in order: ``generate`` for one, ``generate_batch`` for more.

    ``passages`` holds each conversation's help-center passages, in the same
    order (empty: none for any). A generator without ``generate_batch``
    decodes them one after another. Passages are passed only where a
    conversation has some, so a generator without a ``passages`` argument
    keeps working for replies without them.

    Raises:
        Whatever the generator raises.
    """
    contexts = [tuple(p) for p in passages] or [()] * len(conversations)

    def one(turns, context):
        if context:
            return generator.generate(turns, config, max_turns, context)
        return generator.generate(turns, config, max_turns)

    if len(conversations) == 1:
        return [one(conversations[0], contexts[0])]
    batched = getattr(generator, "generate_batch", None)
    if batched is None:
        return [one(turns, context) for turns, context in zip(conversations, contexts)]
    if any(contexts):
        return batched(conversations, config, max_turns, contexts)
    return batched(conversations, config, max_turns)
