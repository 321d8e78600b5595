"""Simulated customers for trying the feedback loop: they talk to the trained bot and rate it.

    python scripts/simulate_customers.py --model models/kestrel.tar.gz --customers 40

Needs the action server (`make actions`) on :5055 and writes to the tracker
store of endpoints.yml (var/tracker.db, or TRACKER_STORE_URL), exactly like
`rasa run` would. Each customer greets, asks one or two open-ended questions
and rates the generated reply: by button ("Helpful" 60%, "Not helpful" 20%),
by typing "no" (10%), or not at all (10%); a third of them then look up an
order. Seeded, so two runs on the same model hold the same conversations.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "do you sell gift cards?", "are your products eco friendly?",
    "do you have a physical store in boston?", "can I pay with bitcoin?",
    "is the blender dishwasher safe?", "do you think a kettle is a good wedding gift?",
    "what's your favourite colour?", "tell me a joke", "do you ship to canada?",
    "is there a warranty on headphones?", "which vacuum is best for pet hair?",
    "can I change the colour of my order?", "are you a real person?",
    "do you price match?", "how do I clean my coffee machine?",
]


async def customer(agent, rng: random.Random) -> None:
    sender = f"sim-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"

    async def say(text):
        return await agent.handle_text(text, sender_id=sender)

    await say(rng.choice(["hi", "hello there", "hey, I'm jane.doe@example.com"]))
    for question in rng.sample(QUESTIONS, rng.choice((1, 2))):
        replies = await say(question)
        buttons = {b["title"]: b["payload"] for r in replies for b in r.get("buttons") or []}
        roll = rng.random()
        if buttons and roll < 0.6:
            await say(buttons["Helpful"])
        elif buttons and roll < 0.8:
            await say(buttons["Not helpful"])
        elif roll < 0.9:
            await say("no")
    if rng.random() < 0.33:
        await say("where is my order KC-10423?")
        await say("jane.doe@example.com")


async def main_async(args) -> None:
    from rasa.core.agent import Agent
    from rasa.core.tracker_store import TrackerStore
    from rasa.core.utils import AvailableEndpoints

    endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml"))
    agent = Agent.load(args.model, generator=endpoints.nlg,
                       tracker_store=TrackerStore.create(endpoints.tracker_store),
                       action_endpoint=endpoints.action)
    rng = random.Random(args.seed)
    for i in range(args.customers):
        await customer(agent, rng)
        print(f"\rcustomers: {i + 1}/{args.customers}", end="", flush=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/kestrel.tar.gz")
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.chdir(ROOT)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
