"""A local server that follows the OpenAI chat-completions API, for the server backend's tests.

``FakeServer`` runs an aiohttp app on its own event loop in a thread, on a free
port of 127.0.0.1, and speaks ``POST /v1/chat/completions`` as Ollama, llama.cpp's
server and vLLM do: a JSON response, or with ``"stream": true`` server-sent events
(``data: {chunk}`` lines, one word per chunk, then ``data: [DONE]``), with ``usage``
when ``stream_options.include_usage`` asks for it.

Its "model" copies: given help-center passages in the system message, it answers
with the first sentence of passage [1]; otherwise it greets. ``behaviour`` makes it
fail the ways real servers do: an HTTP status, malformed JSON, a slow first byte,
a stream that stalls after its first word, or a claim that no passage supports.
``requests`` and ``headers`` keep every request's body and headers; ``first_token_s``,
``token_s`` and ``reply`` give it a model's pace and reply length (bench/server_backend.py).
"""
from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from typing import Any, Dict, List, Optional

from aiohttp import web

MODEL = "tiny-instruct:q4"  # the model name it serves
FINGERPRINT = "b4242-fake"  # its system_fingerprint
GREETING = "Hello! What can I help you with today?"
CLAIM = "Refunds take 1 day to appear on your card."  # stated by no passage


def first_passage_sentence(messages: List[Dict[str, str]]) -> str:
    """The first sentence of passage [1] in the system message, or "" without passages."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    match = re.search(r"^\[1\] [^\n]*\n(.+?[.!?])(\s|$)", system, re.M)
    return match.group(1) if match else ""


class FakeServer:
    """An OpenAI-compatible server on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.behaviour = "ok"  # ok | http_500 | http_429 | malformed | slow | stall | claim
        self.delay_s = 3.0  # the slow and stall behaviours wait this long
        # When set, a request whose messages hold more characters is refused with a 400,
        # as llama.cpp refuses a prompt past the model's context.
        self.context_chars: Optional[int] = None
        # A model's pace, for benchmarks: s before the first word, s per further word
        # (each request paced on its own, as a server that batches requests keeps them).
        self.first_token_s = 0.0
        self.token_s = 0.0
        self.reply: str = ""  # when set, the answer to every request
        self.requests: List[Dict[str, Any]] = []
        self.headers: List[Dict[str, str]] = []  # the headers of each request
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "FakeServer":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake OpenAI server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        # Handlers still sleeping (a slow or stalled reply) are cancelled, not left pending.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def answer(self, messages: List[Dict[str, str]]) -> str:
        if self.reply:
            return self.reply
        if self.behaviour == "claim":
            return CLAIM
        return first_passage_sentence(messages) or GREETING

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.behaviour.startswith("http_"):
            status = int(self.behaviour.split("_")[1])
            return web.json_response({"error": {"message": "busy"}}, status=status)
        if (self.context_chars is not None
                and sum(len(m["content"]) for m in body["messages"]) > self.context_chars):
            return web.json_response({"error": {"code": 400, "type": "exceed_context_size_error",
                                                 "message": "the request exceeds the context"}},
                                     status=400)
        if self.behaviour == "malformed":
            return web.Response(text="<html>502 Bad Gateway</html>", status=200)
        if self.behaviour == "slow":
            await asyncio.sleep(self.delay_s)
        words = self.answer(body["messages"]).split(" ")
        usage = {"prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
                 "completion_tokens": len(words)}
        await asyncio.sleep(self.first_token_s)
        if not body.get("stream"):
            await asyncio.sleep(self.token_s * (len(words) - 1))
            return web.json_response({
                "id": "cmpl-1", "object": "chat.completion", "model": MODEL,
                "system_fingerprint": FINGERPRINT, "usage": usage,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": " ".join(words)}}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(payload) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await response.write(f"data: {data}\n\n".encode())

        for i, word in enumerate(words):
            await send({"id": "cmpl-1", "object": "chat.completion.chunk", "model": MODEL,
                        "system_fingerprint": FINGERPRINT,
                        "choices": [{"index": 0, "finish_reason": None,
                                     "delta": {"content": word if i == 0 else " " + word}}]})
            if self.behaviour == "stall":
                await asyncio.sleep(self.delay_s)
            elif i < len(words) - 1:
                await asyncio.sleep(self.token_s)
        await send({"id": "cmpl-1", "object": "chat.completion.chunk", "model": MODEL,
                    "choices": [{"index": 0, "finish_reason": "stop", "delta": {}}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            await send({"id": "cmpl-1", "object": "chat.completion.chunk", "model": MODEL,
                        "choices": [], "usage": usage})
        await send("[DONE]")
        return response


def main() -> None:
    """Serves until killed: ``python -m tests.components.generator.openai_server --port N``.

    For benchmarks that need the server in its own process (its own GIL); the
    pacing options are the attributes of the same name.
    """
    import argparse
    import time

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-token-s", type=float, default=0.0)
    parser.add_argument("--token-s", type=float, default=0.0)
    parser.add_argument("--reply-words", type=int, default=0, help="0: the copying model")
    args = parser.parse_args()
    server = FakeServer()
    server.port, server.url = args.port, f"http://127.0.0.1:{args.port}/v1"
    server.first_token_s, server.token_s = args.first_token_s, args.token_s
    server.reply = " ".join(["word"] * args.reply_words)
    with server:
        print(f"serving {server.url}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
