"""Generator size, latency of a 40-token reply, and event-loop stall, side by side.

    python bench/generator_latency.py --model models/kestrel.tar.gz [--runs 30]

1. Size: parameters and fp32 weight megabytes of the generator in the archive.
2. Latency: wall time of exactly 40 new tokens (greedy, EOS suppressed by
   ``min_new_tokens``), median and p95 over ``--runs`` prompts, in ms.
3. Event-loop stall: a coroutine ticks every 5 ms while 10 replies are made
   (a) by calling ``Generator.generate`` inside the event loop, as a policy
   that generated in ``predict_action_probabilities`` would, and (b) through
   ``GenerativeNLG``, which decodes in a worker thread. The worst tick delay
   is how long every other conversation on the server would have waited.

Prints a Markdown table; absolute times drift on shared machines, so compare
the two stall figures of one run.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROMPTS = [
    "do you think your kettles would make a nice wedding gift?",
    "is the blender dishwasher safe?",
    "my parcel arrived damaged, what now?",
    "do you have a physical store in boston?",
    "tell me a joke",
    "can I pay with bitcoin?",
    "are your products eco friendly?",
    "what's the weather like in paris?",
    "how long is the warranty on headphones?",
    "hmm, I have a question",
]


def load_generator(model: str):
    """Loads the archive as `rasa run` does; the GPT policy registers the generator."""
    from rasa.core.agent import Agent

    from components.generator import registry

    Agent.load(model)
    generator = registry.active()
    if generator is None:
        raise SystemExit(f"{model} holds no GPTPolicy generator; run `make train` first.")
    return generator


def latency_40_tokens(generator, runs: int):
    """Milliseconds per reply of exactly 40 new tokens, one per prompt."""
    import torch

    from components.generator.prompt import Turn, build_prompt

    times = []
    for i in range(runs):
        prompt = build_prompt(generator.tokenizer, [Turn("user", PROMPTS[i % len(PROMPTS)])])
        ids = generator.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        start = time.perf_counter()
        with torch.inference_mode():
            out = generator.model.generate(
                **ids, do_sample=False, min_new_tokens=40, max_new_tokens=40,
                pad_token_id=generator.tokenizer.pad_token_id)
        times.append((time.perf_counter() - start) * 1000)
        assert out.shape[1] - ids["input_ids"].shape[1] == 40
    return times


async def _stall(make_reply, replies: int) -> float:
    """Worst delay (ms) of a 5 ms ticker while ``replies`` replies are made."""
    worst, running = 0.0, True

    async def ticker():
        nonlocal worst
        while running:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, (time.perf_counter() - before) * 1000 - 5)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    for i in range(replies):
        await make_reply(PROMPTS[i % len(PROMPTS)])
    running = False
    await task
    return worst


def stall_figures(generator, replies: int = 10):
    """(stall in the loop, stall through GenerativeNLG), both in ms."""
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from components.generator.config import GenerationConfig
    from components.generator.prompt import Turn
    from components.nlg import GenerativeNLG

    config = GenerationConfig()

    async def in_loop(text):
        generator.generate([Turn("user", text)], config)

    nlg = GenerativeNLG()

    async def via_nlg(text):
        tracker = DialogueStateTracker.from_events("bench", [UserUttered(text)])
        await nlg.generate("utter_gpt_reply", tracker, "rest", domain_responses={})

    return asyncio.run(_stall(in_loop, replies)), asyncio.run(_stall(via_nlg, replies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/kestrel.tar.gz")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    import torch

    generator = load_generator(args.model)
    params = generator.n_parameters
    times = latency_40_tokens(generator, args.runs)
    in_loop, via_nlg = stall_figures(generator)
    median = statistics.median(times)
    p95 = sorted(times)[int(0.95 * (len(times) - 1))]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"model: {generator.model_version}")
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| generator parameters | {params:,} |")
    print(f"| generator weights (fp32) | {params * 4 / 1e6:.1f} MB |")
    print(f"| 40-token reply, median of {args.runs} | {median:.0f} ms "
          f"({40 / median * 1000:.0f} tokens/s) |")
    print(f"| 40-token reply, p95 | {p95:.0f} ms |")
    print(f"| worst event-loop stall, generate() in the loop | {in_loop:.0f} ms |")
    print(f"| worst event-loop stall, GenerativeNLG worker thread | {via_nlg:.0f} ms |")


if __name__ == "__main__":
    main()
