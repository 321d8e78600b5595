"""An inference server as the generator: the OpenAI-compatible chat-completions API.

Ollama, llama.cpp's server, vLLM and TGI all serve ``POST <url>/chat/completions``
(OpenAI's chat-completions request and response, streamed as server-sent events
with ``"stream": true``). A support desk that runs a real open model on such a
server, shared by every Rasa replica, points endpoints.yml's ``nlg.server`` at it;
the reply then goes through the same path as the built-in model's: the same
messages (``prompt.build_messages``: the recent turns, and the help-center
passages in the system message), the same time budget and fallback, guardrails
and groundedness check, and the same ``Generation`` record.

Why an async client (aiohttp, already Rasa's) and not the decode worker thread:
the server does the work and batches concurrent requests itself (vLLM's
continuous batching, llama.cpp's slots); awaiting its reply costs the event loop
nothing, while one worker thread would queue every conversation behind the
slowest reply.

Failures (the server down, a 429 or 5xx, malformed JSON, no first token within
the budget) raise ``ServerError`` with a short ``reason``, which the NLG records
as the fallback's reason; so does a refused request (a 400 for a prompt past the
model's context), which is not the server's fault. A circuit breaker (the
``circuitbreaker`` library) opens after ``failure_threshold`` failures of the
server in a row: for ``recovery_s`` seconds
every reply gets the fallback at once (``ServerError("server_unavailable")``)
instead of waiting on a dead server; then one request is let through to try it.

No Rasa imports: ``components.nlg.generative_nlg`` is the Rasa adapter.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from components.generator.config import GenerationConfig
from components.generator.generator import Generation
from components.generator.grounding import split_sentences
from components.generator.prompt import Turn, build_messages

logger = logging.getLogger(__name__)

COMPLETIONS_PATH = "/chat/completions"  # appended to ServerConfig.url
SSE_DATA, SSE_DONE = "data:", "[DONE]"  # server-sent events: a data line, and the last one
# Fallback reasons a ServerError carries (GenerationRecord.fallback).
UNAVAILABLE = "server_unavailable"  # the circuit is open: the server failed repeatedly
UNREACHABLE = "server_unreachable"  # no connection (refused, DNS, reset)
TIMEOUT = "server_timeout"  # no reply (or no first token) within the budget
MALFORMED = "server_malformed"  # the body is not the API's JSON
# The refusals of a request as too long: a prompt past the model's context gets a 400 from
# llama.cpp ("exceed context window"), vLLM and OpenAI ("maximum context length"), and a
# 413 from a proxy with a body limit. Such a request is sent once more, shorter
# (``shorter_messages``).
TOO_LONG = ("server_http_400", "server_http_413")


class ServerError(RuntimeError):
    """A reply the server could not give; ``reason`` names the failure.

    ``reason`` is one of the module's constants, or ``"server_http_<status>"``
    for an HTTP error status (429, 500, ...). ``server_fault`` is False for a
    refusal of this one request (a 4xx other than 408 and 429, e.g. a prompt
    longer than the model's context): the server is up, so it does not count
    towards opening the circuit.
    """

    def __init__(self, reason: str, detail: str = "", server_fault: bool = True) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.server_fault = server_fault


def _server_fault(kind: type, error: BaseException) -> bool:
    """The circuit breaker's failure test: a ServerError that is the server's fault."""
    return issubclass(kind, ServerError) and error.server_fault


@dataclass(frozen=True)
class ServerConfig:
    """Where the OpenAI-compatible server is (endpoints.yml ``nlg.server``).

    Put ``${ENV}`` references in endpoints.yml for each value that differs
    between machines; Rasa substitutes them when it reads the file.
    """

    url: str  # base URL of the API, up to and including /v1, e.g. http://localhost:11434/v1
    model: str  # the server's model name, e.g. "qwen2.5:7b-instruct" (Ollama)
    api_key: Optional[str] = None  # sent as "Authorization: Bearer <key>" when set
    stream: bool = True  # stream tokens (server-sent events): the budget can cut a long reply
    connect_timeout_s: float = 2.0  # s, to open a connection; a dead host fails this fast
    failure_threshold: int = 3  # failures in a row that open the circuit
    recovery_s: float = 30.0  # s the open circuit answers with the fallback before a retry
    # Instructions in the system message of every request; with passages, the grounded
    # instructions follow them (prompt.system_message).
    system_prompt: Optional[str] = None

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url has to be the server's http(s) base URL, e.g. "
                             f"'http://localhost:11434/v1' (Ollama) or "
                             f"'http://localhost:8000/v1' (vLLM), got {self.url!r}.")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model has to be the server's model name (what its "
                             f"/v1/models lists), got {self.model!r}.")
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise ValueError("api_key has to be a string; put ${YOUR_ENV_VAR} in "
                             "endpoints.yml rather than the key itself.")
        if not isinstance(self.stream, bool):
            raise ValueError(f"stream has to be true or false, got {self.stream!r}.")
        for name in ("connect_timeout_s", "recovery_s"):
            value = getattr(self, name)
            if (not isinstance(value, (int, float)) or isinstance(value, bool)
                    or not math.isfinite(value) or value <= 0):
                raise ValueError(f"{name} has to be a number of seconds > 0, got {value!r}.")
        threshold = self.failure_threshold
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise ValueError(f"failure_threshold has to be an integer >= 1, got {threshold!r}.")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ServerConfig":
        """Builds the config from the ``server`` mapping of endpoints.yml.

        Raises:
            ValueError: on a missing ``url`` or ``model``, an unknown key or a bad value.
        """
        values = dict(values)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown server option(s) {unknown}; valid: {sorted(known)}.")
        missing = [k for k in ("url", "model") if not values.get(k)]
        if missing:
            raise ValueError(f"server needs {missing}: the base URL of an OpenAI-compatible "
                             f"API and the model name it serves.")
        return cls(**values)

    @property
    def endpoint(self) -> str:
        """The chat-completions URL: ``url`` + ``COMPLETIONS_PATH``."""
        return self.url.rstrip("/") + COMPLETIONS_PATH


def shorter_messages(turns: Sequence[Turn], system_prompt: Optional[str],
                     passages: Sequence[str]) -> List[Dict[str, str]]:
    """``build_messages`` for a model whose context the full request overflowed.

    Only the last user turn is kept, and only the first passage (the best one:
    for a help-center answer, the extractive answer's sentences, best first), cut
    to its header line and its first sentence. What the reply is checked against
    is not cut (the NLG checks it against all of the hits' passages), so a reply
    written from less text is held to the same facts. Why retry rather than count
    tokens: the server's tokenizer is not on this machine (a served model is any
    model), and a refusal costs one round trip, while a cut on an estimate would
    cost every long request its context.

    Raises:
        ValueError: if the conversation does not end with a user turn.
    """
    cut = []
    if passages:
        header, newline, text = passages[0].partition("\n")
        if not newline:  # a passage without format_passage's header line
            header, text = "", header
        first = (split_sentences(text) or [text])[0]
        cut = [f"{header}\n{first}" if header else first]
    return build_messages(turns, 1, system_prompt, cut)


def request_body(config: ServerConfig, decoding: GenerationConfig,
                 messages: List[Dict[str, str]]) -> Dict[str, Any]:
    """The chat-completions request for ``messages``, decoded as ``decoding`` says.

    Greedy decoding is ``temperature`` 0; sampling sends ``temperature``,
    ``top_p`` and ``top_k`` (an extension that vLLM, llama.cpp and TGI read and
    others ignore). ``repetition_penalty`` (Keskar et al.'s, as transformers
    applies it) has no field in the API: it is sent under the two names servers
    read, ``repetition_penalty`` (vLLM, TGI) and ``repeat_penalty`` (llama.cpp),
    so the server decodes as the built-in model does; servers that know neither
    ignore them. ``seed`` is sent when set.
    """
    body: Dict[str, Any] = {"model": config.model, "messages": messages,
                            "max_tokens": decoding.max_new_tokens, "stream": config.stream,
                            "repetition_penalty": decoding.repetition_penalty,
                            "repeat_penalty": decoding.repetition_penalty}
    if decoding.do_sample:
        body.update(temperature=decoding.temperature, top_p=decoding.top_p)
        if decoding.top_k:
            body["top_k"] = decoding.top_k
    else:
        body["temperature"] = 0.0
    if decoding.seed is not None:
        body["seed"] = decoding.seed
    if config.stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _content(choice: Mapping[str, Any], key: str) -> str:
    """``choice[key]["content"]`` as a string ("" when absent or null)."""
    part = choice.get(key) or {}
    if not isinstance(part, Mapping):
        raise ServerError(MALFORMED, f"'{key}' is not an object")
    content = part.get("content") or ""
    if not isinstance(content, str):
        raise ServerError(MALFORMED, f"'{key}.content' is not a string")
    return content


def _first_choice(payload: Any) -> Optional[Mapping[str, Any]]:
    """The first of ``payload["choices"]``, None for a chunk without choices (usage)."""
    if not isinstance(payload, Mapping):
        raise ServerError(MALFORMED, "the JSON is not an object")
    if "error" in payload:
        raise ServerError(MALFORMED, f"the server reported {str(payload['error'])[:200]}")
    choices = payload.get("choices")
    if not isinstance(choices, list):
        raise ServerError(MALFORMED, "no 'choices' list")
    if not choices:
        return None
    if not isinstance(choices[0], Mapping):
        raise ServerError(MALFORMED, "'choices[0]' is not an object")
    return choices[0]


@dataclass
class _Reply:
    """What the server said, gathered from one response or a stream of chunks."""

    text: str = ""
    chunks: int = 0  # streamed chunks that carried text (about one token each)
    finish_reason: Optional[str] = None
    model: Optional[str] = None  # the "model" the server reported
    fingerprint: Optional[str] = None  # "system_fingerprint": the build or revision
    usage: Optional[Mapping[str, Any]] = None

    def read(self, payload: Any, key: str) -> None:
        """Adds one JSON object (a whole response, or a chunk with ``key`` "delta")."""
        choice = _first_choice(payload)
        self.model = payload.get("model") or self.model
        self.fingerprint = payload.get("system_fingerprint") or self.fingerprint
        if isinstance(payload.get("usage"), Mapping):
            self.usage = payload["usage"]
        if choice is None:
            return
        content = _content(choice, key)
        if content:
            self.text += content
            self.chunks += 1
        self.finish_reason = choice.get("finish_reason") or self.finish_reason


def model_version(model: str, fingerprint: Optional[str]) -> str:
    """``<model>@<system_fingerprint>`` when the server reports one, else ``<model>``."""
    return f"{model}@{fingerprint}" if fingerprint else model


class ServerGenerator:
    """Replies from an OpenAI-compatible inference server, with a circuit breaker.

    ``agenerate`` is a coroutine: call it from the event loop (the NLG does).
    One ``aiohttp.ClientSession`` is kept per event loop, so connections are
    reused between replies.
    """

    def __init__(self, config: ServerConfig) -> None:
        from circuitbreaker import CircuitBreaker  # noqa: PLC0415 - only with a server

        self.config = config
        self.model_id = config.model
        self.model_version = config.model  # until a reply reports the server's fingerprint
        self._breaker = CircuitBreaker(failure_threshold=config.failure_threshold,
                                       recovery_timeout=config.recovery_s,
                                       expected_exception=_server_fault,
                                       name=f"inference server {config.url}")
        self._guarded = self._breaker(self._complete)
        self._sessions: Dict[int, Any] = {}  # id(loop) -> aiohttp.ClientSession

    @property
    def circuit_open(self) -> bool:
        """True while the breaker answers every reply with the fallback."""
        return self._breaker.opened

    def _session(self):
        import aiohttp  # noqa: PLC0415 - only with a server

        loop = asyncio.get_running_loop()
        session = self._sessions.get(id(loop))
        if session is None or session.closed:
            headers = {"Content-Type": "application/json"}
            if self.config.api_key:
                headers["Authorization"] = f"Bearer {self.config.api_key}"
            session = aiohttp.ClientSession(headers=headers)
            self._sessions[id(loop)] = session
        return session

    async def close(self) -> None:
        """Closes the HTTP session of the running event loop, if any."""
        session = self._sessions.pop(id(asyncio.get_running_loop()), None)
        if session is not None:
            await session.close()

    async def agenerate(self, turns: Sequence[Turn],
                        config: GenerationConfig = GenerationConfig(),
                        max_turns: int = 6, passages: Sequence[str] = ()) -> Generation:
        """The server's reply to the last user turn of ``turns``.

        The request carries ``prompt.build_messages(turns, max_turns,
        system_prompt, passages)``. When the server refuses it as too long
        (``TOO_LONG``: a prompt past a small model's context), it is sent once
        more as ``shorter_messages``, within what is left of the time budget;
        the second refusal is raised. Streaming stops reading after
        ``config.max_time_s`` s and keeps the text so far (``hit_time_budget``);
        without streaming the whole reply has to arrive in that time.
        ``prompt_tokens`` / ``generated_tokens`` are the server's ``usage``
        figures, or None when it reports none (streamed: the count of text
        chunks, about one token each).

        Raises:
            ValueError: if the conversation does not end with a user turn.
            ServerError: when the server gives no usable reply, or the circuit
                is open (reason ``UNAVAILABLE``); the NLG sends its fallback.
        """
        from circuitbreaker import CircuitBreakerError  # noqa: PLC0415 - only with a server

        messages = build_messages(turns, max_turns, self.config.system_prompt, passages)
        start = time.perf_counter()
        try:
            try:
                reply, budget_hit = await self._guarded(
                    request_body(self.config, config, messages), config.max_time_s)
            except ServerError as e:
                left_s = config.max_time_s - (time.perf_counter() - start)
                shorter = shorter_messages(turns, self.config.system_prompt, passages)
                if e.reason not in TOO_LONG or shorter == messages or left_s <= 0:
                    raise
                logger.info("The server refused the request as too long (%s); sending it "
                            "with the last turn and the best passage's first sentence.", e)
                reply, budget_hit = await self._guarded(
                    request_body(self.config, config, shorter), left_s)
        except CircuitBreakerError as e:
            raise ServerError(UNAVAILABLE, str(e)) from e
        elapsed = time.perf_counter() - start
        self.model_version = model_version(reply.model or self.config.model, reply.fingerprint)
        usage = reply.usage or {}
        generated = usage.get("completion_tokens")
        if generated is None and self.config.stream:
            generated = reply.chunks
        return Generation(text=reply.text.strip(), model_id=self.model_id,
                          model_version=self.model_version,
                          prompt_tokens=usage.get("prompt_tokens"),
                          generated_tokens=generated,
                          latency_ms=round(elapsed * 1000.0, 1), hit_time_budget=budget_hit)

    async def _complete(self, body: Dict[str, Any], budget_s: float) -> Tuple[_Reply, bool]:
        """Posts ``body``; (the reply, whether the budget cut it). Breaker-guarded.

        Raises:
            ServerError: on any failure (each counts towards opening the circuit).
        """
        import aiohttp  # noqa: PLC0415 - only with a server

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout_s)
        deadline = time.monotonic() + budget_s
        try:
            # The whole reply has to arrive by the deadline; a stream only its headers,
            # then _read_stream keeps the text that arrived before the deadline.
            async with asyncio.timeout(budget_s) as scope:
                async with self._session().post(self.config.endpoint, json=body,
                                                timeout=timeout) as response:
                    if response.status >= 400:
                        detail = (await response.text())[:200]
                        raise ServerError(f"server_http_{response.status}", detail,
                                          server_fault=(response.status >= 500
                                                        or response.status in (408, 429)))
                    if body["stream"]:
                        scope.reschedule(None)
                        return await self._read_stream(response, deadline)
                    reply = _Reply()
                    reply.read(_json(await response.read()), "message")
                    return reply, False
        except asyncio.TimeoutError as e:
            raise ServerError(TIMEOUT, f"no reply within {budget_s:.1f} s") from e
        except aiohttp.ClientError as e:
            raise ServerError(UNREACHABLE, f"{type(e).__name__}: {e}") from e

    @staticmethod
    async def _read_stream(response, deadline: float) -> Tuple[_Reply, bool]:
        """Reads server-sent events until ``[DONE]``, the end, or ``deadline``.

        A stream that stops at the deadline with some text is a reply cut by
        the budget; with no text yet it is a ``TIMEOUT``.
        """
        reply = _Reply()
        lines = response.content.__aiter__()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if reply.text:
                    return reply, True
                raise asyncio.TimeoutError
            try:
                line = await asyncio.wait_for(lines.__anext__(), remaining)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                if reply.text:
                    return reply, True
                raise
            line = line.decode("utf-8", errors="replace").strip()
            if not line.startswith(SSE_DATA):
                continue  # blank separators, comments (":"), "event:" lines
            data = line[len(SSE_DATA):].strip()
            if data == SSE_DONE:
                break
            reply.read(_json(data), "delta")
        if reply.finish_reason is None and not reply.text:
            raise ServerError(MALFORMED, "the stream ended without a reply")
        return reply, False


def _json(raw) -> Any:
    """``raw`` (bytes or str) parsed as JSON.

    Raises:
        ServerError: ``MALFORMED`` when it is not JSON.
    """
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ServerError(MALFORMED, f"not JSON: {str(raw)[:100]!r}") from e
