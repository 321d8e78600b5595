"""Generator size, latency of a 40-token reply, and event-loop stall, side by side.

    python bench/generator_latency.py --model models/kestrel.tar.gz [--runs 30]
                                      [--report docs/benchmarks.md]

1. Size: parameters and fp32 weight megabytes of the generator in the archive.
2. Latency: wall time of exactly 40 new tokens (greedy, EOS suppressed by
   ``min_new_tokens``), median and p95 over ``--runs`` prompts, in ms.
3. Event-loop stall: a coroutine ticks every 5 ms while 10 replies are made
   (a) by calling ``Generator.generate`` inside the event loop, as a policy
   that generated in ``predict_action_probabilities`` would, and (b) through
   ``GenerativeNLG``, which decodes in a worker thread. The worst tick delay
   is how long every other conversation on the server would have waited.

Prints a Markdown table and, with ``--report``, replaces the section between
``<!-- generator-latency -->`` markers of that file. Absolute times drift on
shared machines, so compare the two stall figures of one run.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from bench.report import machine, publish

MARK = "<!-- generator-latency -->"

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
    """Loads the archive as `rasa run` does; the GPT policy registers the generator.

    Returns:
        (the generator, the archive's domain responses): the NLG takes its
        canned fallback text from the responses, as in the server.
    """
    from rasa.core.agent import Agent

    from components.generator import registry

    agent = Agent.load(model)
    generator = registry.active()
    if generator is None:
        raise SystemExit(f"{model} holds no GPTPolicy generator; run `make train` first.")
    return generator, agent.domain.responses


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


def stall_figures(generator, responses: dict, replies: int = 10):
    """(stall in the loop, stall through GenerativeNLG), both in ms.

    ``responses`` are the domain's; the NLG generates the response that the
    loaded GPT policy registered (``registry.response()``).
    """
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from components.generator import registry
    from components.generator.config import GenerationConfig
    from components.generator.prompt import Turn
    from components.nlg.generative_nlg import GenerativeNLG

    config = GenerationConfig()

    async def in_loop(text):
        generator.generate([Turn("user", text)], config)

    nlg = GenerativeNLG()

    async def via_nlg(text):
        tracker = DialogueStateTracker.from_events("bench", [UserUttered(text)])
        await nlg.generate(registry.response(), tracker, "rest", domain_responses=responses)

    return asyncio.run(_stall(in_loop, replies)), asyncio.run(_stall(via_nlg, replies))


def report(figures: dict) -> str:
    """The docs/benchmarks.md section (fenced by MARK) for ``figures``.

    ``figures``: {"command", "date", "machine", "model", "params", "runs",
    "times_ms" (one per reply), "stall_in_loop_ms", "stall_nlg_ms"}.
    """
    times = sorted(figures["times_ms"])
    median = statistics.median(times)
    p95 = times[int(0.95 * (len(times) - 1))]
    params = figures["params"]
    return f"""{MARK}
## Generator (issue 2)

Command: `{figures["command"]}` ({figures["date"]}; {figures["machine"]};
model {figures["model"]}).

| figure | value |
|---|---|
| generator parameters | {params:,} |
| generator weights (fp32) | {params * 4 / 1e6:.1f} MB |
| 40-token reply, median of {figures["runs"]} | {median:.0f} ms ({40 / median * 1000:.0f} tokens/s) |
| 40-token reply, p95 | {p95:.0f} ms |
| worst event-loop stall, generate() in the loop | {figures["stall_in_loop_ms"]:.0f} ms |
| worst event-loop stall, GenerativeNLG worker thread | {figures["stall_nlg_ms"]:.0f} ms |

The two stall rows are the same 10 replies made side by side: once by calling the
generator inside the event loop, as a policy that generated in
`predict_action_probabilities` would, and once through `GenerativeNLG`, which decodes
in a worker thread. The worst delay seen by a 5 ms ticker is how long every other
conversation on the server would have waited.
{MARK}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/kestrel.tar.gz")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs has to be >= 1")

    generator, responses = load_generator(args.model)
    times = latency_40_tokens(generator, args.runs)
    in_loop, via_nlg = stall_figures(generator, responses)
    figures = {
        "command": " ".join(["python bench/generator_latency.py"] + sys.argv[1:]),
        "date": datetime.now().strftime("%Y-%m-%d"), "machine": machine(),
        "model": generator.model_version, "params": generator.n_parameters,
        "runs": args.runs, "times_ms": times,
        "stall_in_loop_ms": in_loop, "stall_nlg_ms": via_nlg,
    }
    section = report(figures)
    publish(section, MARK, args.report)


if __name__ == "__main__":
    main()
