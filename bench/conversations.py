"""Simulated customers' messages and the REST call that sends one, shared by load tests.

Used by bench/load_test.py (latency and throughput under concurrent customers)
and tests/test_scale_out.py (two servers behind one store). Every message is
said to the trained bot over ``POST /webhooks/rest/webhook``.

Two kinds of turns, told apart by what the customer sends:

- scripted: greetings, FAQ questions and the forms (order lookup and package
  tracking with email verification, cancelling and then declining, a return
  written to the store database), answered
  by rules, stories, forms and custom actions. Orders and emails are the demo
  store's (actions/seed.py), so the forms run to their end.
- open-ended: questions no rule or story answers, which the GPT policy sends to
  the generator.
"""
from __future__ import annotations

import random
import time
from typing import Any, List, NamedTuple, Sequence, Tuple

SCRIPTED, OPEN_ENDED = "scripted", "open-ended"

# Scripted episodes, each said in one go so that its form is filled to the end.
# A form episode names its order up front and belongs to a customer of its own:
# the form then always asks for the email (a slot set by an earlier episode of the
# same conversation belongs to another customer, so validation clears it), and a
# conversation holds each form episode at most once.
FORM_EPISODES: List[List[str]] = [
    ["where is my order KC-10423?", "jane.doe@example.com"],
    ["I want to track my package KC-10452", "carlos.ruiz@example.org"],
    ["I want to cancel order KC-10481", "lena.fischer@example.com", "no"],
    ["I'd like to return order KC-10471 please", "sam.okafor@example.org",
     "it arrived damaged"],
]
# One-message episodes (rules): greetings and FAQ answers.
SINGLE_EPISODES: List[List[str]] = [
    ["hello there"], ["what are your opening hours?"], ["how much is shipping?"],
    ["how can I contact you?"], ["I forgot my password"], ["thanks, bye"],
]

# Open-ended questions: nothing scripted answers them.
OPEN_ENDED_MESSAGES: List[str] = [
    "do you sell gift cards?", "are your products eco friendly?",
    "do you have a physical store in boston?", "is the blender dishwasher safe?",
    "do you think a kettle is a good wedding gift?", "what's your favourite colour?",
    "tell me a joke", "is there a warranty on headphones?",
    "which vacuum is best for pet hair?", "do you price match?",
    "how do I clean my coffee machine?", "what's the weather like today?",
]

# tests/test_scale_out.py's 10 turns: greeting, order-status form, generated turns,
# cancel form.
SCALE_OUT_SCRIPT: List[str] = [
    "hello there", "where is my order KC-10423?", "jane.doe@example.com",
    "do you sell gift cards?", "what's your favourite colour?", "I want to cancel my order",
    "KC-10481", "omar.haddad@example.org", "no", "thanks, bye",
]


def customer_script(rng: random.Random, turns: int,
                    open_share: float = 0.2) -> List[Tuple[str, str]]:
    """One conversation of ``turns`` messages as ``[(kind, text)]``.

    ``round(turns * open_share)`` of them are open-ended, the rest scripted.
    Scripted episodes are chosen at random (each form episode at most once)
    and never cut, so every form is filled to its end (one-message episodes
    fill the last gap); the open-ended questions go between episodes, at
    random places.

    Raises:
        ValueError: if ``turns`` is below 1 or ``open_share`` outside [0, 1].
    """
    if turns < 1:
        raise ValueError(f"turns has to be at least 1, got {turns}")
    if not 0.0 <= open_share <= 1.0:
        raise ValueError(f"open_share has to be within [0, 1], got {open_share}")
    n_open = round(turns * open_share)
    left = turns - n_open
    episodes: List[List[str]] = []
    forms = list(FORM_EPISODES)
    while left > 0:
        fitting = [e for e in forms + SINGLE_EPISODES if len(e) <= left]
        episode = rng.choice(fitting)
        if episode in forms:
            forms.remove(episode)
        episodes.append(episode)
        left -= len(episode)
    # Slots between episodes (before the first, ..., after the last) for the questions.
    slots = [rng.randrange(len(episodes) + 1) for _ in range(n_open)]
    script: List[Tuple[str, str]] = []
    for i in range(len(episodes) + 1):
        script += [(OPEN_ENDED, rng.choice(OPEN_ENDED_MESSAGES)) for s in slots if s == i]
        if i < len(episodes):
            script += [(SCRIPTED, text) for text in episodes[i]]
    return script


class Reply(NamedTuple):
    """One REST turn: HTTP status, parsed JSON body (or text), seconds until it was read."""

    status: int
    body: Any
    seconds: float


async def post_message(session, url: str, sender: str, text: str) -> Reply:
    """Sends ``text`` as ``sender`` to ``url``'s REST webhook and reads the whole reply.

    ``url`` is the server's base URL (``http://host:port``); ``session`` an
    ``aiohttp.ClientSession``. Connection errors and timeouts propagate.
    """
    started = time.perf_counter()
    async with session.post(f"{url}/webhooks/rest/webhook",
                            json={"sender": sender, "message": text}) as resp:
        raw = await resp.read()
        seconds = time.perf_counter() - started
        try:
            body = await resp.json(content_type=None)
        except ValueError:
            body = raw.decode("utf-8", "replace")
    return Reply(resp.status, body, seconds)


def bot_texts(messages: Sequence[dict]) -> List[Any]:
    """The ``text`` of each bot message of a 200 reply."""
    return [m.get("text") for m in messages]
