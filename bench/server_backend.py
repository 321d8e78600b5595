"""The inference-server backend against the in-process generator, side by side.

    python bench/server_backend.py --model models/kestrel.tar.gz [--seconds 10]
                                   [--mixed-runs 3] [--report docs/benchmarks.md]

1. **Replies under concurrency.** 1, 8 and 32 closed-loop conversations ask for
   40-token replies for ``--seconds`` each, in one event loop, (a) from the
   archive's built-in generator through the NLG's path (``RequestBatcher`` on one
   decode thread with 1 torch thread, batches of up to 8), and (b) through
   ``ServerGenerator`` from a local server that follows the OpenAI API, in its own
   process, streaming (tests/components/generator/openai_server.py). The server
   is a stand-in with a set pace (``FIRST_TOKEN_S`` to the first token, then
   ``TOKEN_S`` per token, each request paced on its own, as a server that batches
   requests on a GPU keeps them): no real model runs here, because none can be
   downloaded on this project's machines. So (b) measures what the assistant adds
   on top of a server's own time, and how it holds up as conversations pile up;
   the server's own speed is whatever the user's server gives.
   Reported: p50 / p95 ms per reply, tokens/s over all conversations, and the worst
   event-loop stall (a coroutine ticking every 5 ms), which is what every other
   conversation on the Rasa server waits while replies are made.
2. **Scripted turns under a mixed load.** bench/load_test.py's customers (80%
   scripted, 20% open-ended, REST, 8 at once, ``--mixed-runs`` runs of ``--seconds``)
   against a real `rasa run` with endpoints.yml's ``nlg.server`` pointing at the same
   stand-in, with the in-process generator, and without the GPT policy (trained
   here by load_test's ``train_without_gpt``): scripted-turn p95 of the server
   variant over each of the other two, run by run (issue 17's target: at most 1.3x
   the bot without generation).

Prints Markdown and, with ``--report``, replaces the section between
``<!-- server-backend -->`` markers.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from bench.report import machine, write_section  # noqa: E402

MARK = "<!-- server-backend -->"
REPLY_TOKENS = 40  # tokens per reply, both variants
FIRST_TOKEN_S, TOKEN_S = 0.15, 0.02  # the stand-in server's pace: 150 ms, then 50 tokens/s
CONCURRENCY = (1, 8, 32)
TICK_S = 0.005  # s between the stall meter's ticks
QUESTIONS = ["do you ship to canada?", "is the blender dishwasher safe?",
             "my parcel arrived damaged, what now?", "can I pay in instalments?"]
MODEL_NAME = "stand-in"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def closed_loop(call: Callable, users: int, seconds: float) -> Dict[str, float]:
    """``users`` conversations call ``call(i)`` back to back for ``seconds``; the figures."""
    from components.generator.prompt import Turn

    latencies: List[float] = []
    tokens = [0]
    stop = time.monotonic() + seconds
    stall = [0.0]
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(TICK_S)
            stall[0] = max(stall[0], time.perf_counter() - before - TICK_S)

    async def user(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            turns = [Turn("user", QUESTIONS[(i + n) % len(QUESTIONS)])]
            started = time.perf_counter()
            generation = await call(turns)
            latencies.append((time.perf_counter() - started) * 1000)
            tokens[0] += generation.generated_tokens or 0
            n += 1

    await call([Turn("user", QUESTIONS[0])])  # warm-up: first-call imports, connections
    meter = asyncio.create_task(ticker())
    started = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(users)))
    elapsed = time.perf_counter() - started
    done.set()
    await meter
    return {"p50": statistics.median(latencies), "p95": percentile(latencies, 0.95),
            "replies": len(latencies), "tokens_per_s": tokens[0] / elapsed,
            "stall_ms": stall[0] * 1000}


def in_process(model: Path, tmp: Path):
    """The archive's generator behind the NLG's batcher: a ``call(turns)`` coroutine maker."""
    import torch

    from components.feedback.finetune import extract_archive_generator
    from components.generator.batching import RequestBatcher
    from components.generator.config import GenerationConfig
    from components.generator.generator import Generator

    generator = Generator.load(extract_archive_generator(model, tmp / "generator"))
    pool = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(1,))
    batcher = RequestBatcher(pool, max_batch_size=8)
    config = GenerationConfig(max_new_tokens=REPLY_TOKENS, min_new_tokens=REPLY_TOKENS,
                              max_time_s=60.0)
    return lambda turns: asyncio.wrap_future(batcher.submit(generator, turns, config, 6))


def start_stand_in(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.components.generator.openai_server", "--port", str(port),
         "--first-token-s", str(FIRST_TOKEN_S), "--token-s", str(TOKEN_S),
         "--reply-words", str(REPLY_TOKENS)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    if not line.startswith("serving"):
        proc.kill()
        raise RuntimeError(f"the stand-in server did not start: {line}")
    return proc


def replies_under_concurrency(model: Path, url: str, seconds: float, tmp: Path) -> Dict:
    from components.generator.config import GenerationConfig
    from components.generator.server import ServerConfig, ServerGenerator

    results: Dict[str, Dict[int, Dict[str, float]]] = {"in-process": {}, "server": {}}
    local = in_process(model, tmp)
    config = GenerationConfig(max_new_tokens=REPLY_TOKENS, max_time_s=60.0)

    async def run_server(users: int) -> Dict[str, float]:
        server = ServerGenerator(ServerConfig(url=url, model=MODEL_NAME))
        try:
            return await closed_loop(lambda turns: server.agenerate(turns, config),
                                     users, seconds)
        finally:
            await server.close()

    for users in CONCURRENCY:
        results["in-process"][users] = asyncio.run(closed_loop(local, users, seconds))
        results["server"][users] = asyncio.run(run_server(users))
        for name in results:
            r = results[name][users]
            print(f"[{name}] {users:2d} conversations: p50 {r['p50']:.0f} ms, p95 "
                  f"{r['p95']:.0f} ms, {r['tokens_per_s']:.0f} tokens/s, stall "
                  f"{r['stall_ms']:.1f} ms", flush=True)
    return results


def mixed_load(model: Path, url: str, runs: int, seconds: float, tmp: Path) -> Dict:
    """bench/load_test.py at 8 customers: ``nlg.server``, in-process, and no GPT policy."""
    import yaml

    from bench.load_test import measure_variant, train_without_gpt

    print("rasa train without the GPT policy ...", flush=True)
    (tmp / "nogpt").mkdir()
    no_gpt = train_without_gpt(tmp / "nogpt", ROOT / "config.yml")["model"]

    args = argparse.Namespace(runs=runs, users=[8], seconds=seconds, turns=None, think=0.0)
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    endpoints["nlg"]["server"] = {"url": url, "model": MODEL_NAME}
    # The stand-in's reply is 40 words, not a help-center sentence: the check sends the
    # extractive answer or the canned text instead, as for a model that fails it.
    (tmp / "server").mkdir()
    (tmp / "server" / "endpoints.yml").write_text(yaml.safe_dump(endpoints))
    (tmp / "in-process").mkdir()
    return {"server": measure_variant("server", str(model), tmp / "server", args,
                                      endpoints=tmp / "server" / "endpoints.yml"),
            "in-process": measure_variant("in-process", str(model), tmp / "in-process", args),
            "no GPT": measure_variant("nogpt", no_gpt, tmp / "nogpt", args)}


def report(concurrency: Dict, mixed: Optional[Dict], meta: Dict) -> str:
    from bench.conversations import OPEN_ENDED, SCRIPTED
    from bench.load_test import ratio_spread, spread

    lines = [MARK, "", f"### The inference-server backend vs the in-process generator "
             f"({meta['date']})", "",
             f"`python bench/server_backend.py --model {meta['model']}{meta['args']}` on "
             f"{meta['machine']}. Replies of {REPLY_TOKENS} tokens; the server is a stand-in "
             f"in its own process that follows the OpenAI API and streams at a set pace "
             f"({FIRST_TOKEN_S * 1000:.0f} ms to the first token, then "
             f"{1 / TOKEN_S:.0f} tokens/s per request), so its rows show what the assistant "
             f"adds to a server's own time, not a real model's speed. {meta['seconds']:g} s "
             f"per level, one run.", "",
             "| conversations | variant | replies | p50 ms | p95 ms | tokens/s | worst "
             "event-loop stall ms |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for users in CONCURRENCY:
        for name, label in (("in-process", "built-in generator, in process (batched)"),
                            ("server", "`nlg.server`, streamed")):
            r = concurrency[name][users]
            lines.append(f"| {users} | {label} | {r['replies']} | {r['p50']:.0f} | "
                         f"{r['p95']:.0f} | {r['tokens_per_s']:.0f} | {r['stall_ms']:.1f} |")
    floor = (FIRST_TOKEN_S + TOKEN_S * (REPLY_TOKENS - 1)) * 1000
    lines += ["", f"The stand-in's own time for one reply is {floor:.0f} ms; the server rows' "
              f"p50 over it is the client's cost (HTTP, JSON, streaming), and tokens/s grows "
              f"with the conversations because the server, not the Rasa process, does the "
              f"work."]
    if mixed:
        cells = {name: [c for c in mixed[name]["cells"] if c["users"] == 8] for name in mixed}

        def ratios(other: str) -> List[float]:
            return [s[SCRIPTED]["p95"] / b[SCRIPTED]["p95"]
                    for s, b in zip(cells["server"], cells[other]) if b[SCRIPTED]["p95"]]

        lines += ["", f"Mixed load (bench/load_test.py, 8 customers, 80% scripted, REST, "
                  f"{meta['mixed_runs']} runs of {meta['seconds']:g} s), median (min-max). "
                  f"The stand-in's 40 words state no passage's fact, so help-center turns "
                  f"with the server wait for it, then get the extractive answer:", "",
                  "| variant | scripted p50 / p95 ms | open-ended p50 / p95 ms | msgs/s |",
                  "| --- | --- | --- | --- |"]
        for name in mixed:
            row = [name]
            for kind in (SCRIPTED, OPEN_ENDED):
                row.append(" / ".join(spread([c[kind][q] for c in cells[name]])
                                      for q in ("p50", "p95")))
            row.append(spread([c["msgs_per_s"] for c in cells[name]]))
            lines.append("| " + " | ".join(row) + " |")
        lines += [""] + [f"Scripted-turn p95, server over {other}, run by run: "
                         f"{ratio_spread(ratios(other))}." for other in mixed if other != "server"]
    lines += ["", MARK]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "kestrel.tar.gz")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mixed-runs", type=int, default=3, help="0: skip the mixed load")
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args(argv)
    if not args.model.exists():
        sys.exit(f"{args.model} does not exist; train it first (make train)")
    tmp = Path(tempfile.mkdtemp(prefix="server-backend-"))
    port = free_port()
    stand_in = start_stand_in(port)
    url = f"http://127.0.0.1:{port}/v1"
    started = time.monotonic()
    try:
        concurrency = replies_under_concurrency(args.model.resolve(), url, args.seconds, tmp)
        mixed = (mixed_load(args.model.resolve(), url, args.mixed_runs, args.seconds, tmp)
                 if args.mixed_runs else None)
    finally:
        stand_in.kill()
    try:
        shown = args.model.resolve().relative_to(ROOT)
    except ValueError:
        shown = args.model
    extra = "".join([f" --seconds {args.seconds:g}" if args.seconds != 10.0 else "",
                     f" --mixed-runs {args.mixed_runs}" if args.mixed_runs != 3 else "",
                     f" --report {args.report}" if args.report else ""])
    meta = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "model": shown, "args": extra, "seconds": args.seconds,
            "mixed_runs": args.mixed_runs}
    text = report(concurrency, mixed, meta)
    print(text)
    print(f"wall time {time.monotonic() - started:.0f} s")
    if args.report:
        write_section(args.report, MARK, text)
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
