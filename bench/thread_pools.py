"""Thread pools under a mixed load: TensorFlow's and torch's left to their defaults, or set.

    python bench/thread_pools.py --model models/kestrel.tar.gz [--users 1 8] [--runs 3]
        [--seconds 12] [--report docs/benchmarks.md]

One `rasa run` process holds TensorFlow (DIET and TED: every turn's intent and next
action) and torch (MiniLM in the NLU pipeline; the generator in the NLG's decode
worker thread) on the machine's cores. Each library sizes its pools to the whole
machine unless told otherwise, so on 2 cores a generated reply and a scripted turn
at the same moment ask for 4+ threads. The variants, served one after the other
exactly as bench/load_test.py serves its "with GPT" bot and driven by its mixed
load (closed-loop customers, 80% scripted turns and 20% open-ended questions):

- ``defaults``: no TensorFlow setting (its intra-op and inter-op pools size
  themselves to the cores) and ``nlg.torch_threads: null`` (torch's default in
  the decode worker);
- ``torch 1``: the decode worker on one torch thread (endpoints.yml before this
  benchmark), TensorFlow as it sizes itself;
- ``set``: also TensorFlow on one intra-op and one inter-op thread
  (``TF_INTRA_OP_PARALLELISM_THREADS`` / ``TF_INTER_OP_PARALLELISM_THREADS``, which
  Rasa reads when it starts; the Makefile exports them).

Output: per variant and number of customers, p50/p95 of scripted and open-ended
turns and messages per second (median of ``--runs`` runs, min-max), and each
variant's p95 over the defaults' run by run. With ``--report``, the section between
``<!-- thread-pools -->`` markers of that file. About 4 minutes per variant on
2 cores with the defaults (1.5 of them starting the servers).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.conversations import OPEN_ENDED, SCRIPTED  # noqa: E402 - after the path fix
from bench.load_test import measure_variant, ratio_spread, spread  # noqa: E402
from bench.report import machine, write_section  # noqa: E402

MARK = "<!-- thread-pools -->"
TF_THREADS = ("TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS")
# name -> (label, TensorFlow threads ("" = TensorFlow's default), the decode worker's torch_threads)
VARIANTS: Dict[str, tuple] = {
    "defaults": ("TensorFlow and torch defaults", "", None),
    "torch1": ("decode worker on 1 torch thread", "", 1),
    "set": ("decode worker 1 torch thread, TensorFlow 1 intra-op + 1 inter-op", "1", 1),
}


def endpoints_with(torch_threads: Optional[int], folder: Path) -> Path:
    """endpoints.yml with ``nlg.torch_threads`` replaced, written into ``folder``."""
    config = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    config["nlg"]["torch_threads"] = torch_threads
    path = folder / "endpoints.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def ratios(result: dict, variant: str, users: int, kind: str) -> List[float]:
    """Run-by-run p95 of ``variant`` over the defaults' at ``users`` customers."""
    mine = [c[kind]["p95"] for c in result[variant]["cells"] if c["users"] == users]
    base = [c[kind]["p95"] for c in result["defaults"]["cells"] if c["users"] == users]
    return [m / b for m, b in zip(mine, base) if b]


def report(result: dict, meta: dict) -> str:
    """The markdown section: one table of latencies, one of ratios to the defaults."""
    lines = [MARK, "", f"### Thread pools under a mixed load ({meta['date']})", "",
             f"`python bench/thread_pools.py --model {meta['model']}{meta['args']}` on "
             f"{meta['machine']}; {meta['runs']} runs of {meta['seconds']:g} s per level, "
             f"median (min-max). Mixed load: bench/load_test.py's closed-loop customers, "
             f"80% scripted turns, 20% open-ended questions, REST.", "",
             "| customers | variant | scripted p50 / p95 ms | open-ended p50 / p95 ms "
             "| msgs/s |", "| --- | --- | --- | --- | --- |"]
    for users in meta["users"]:
        for name, (label, _, _) in VARIANTS.items():
            cells = [c for c in result[name]["cells"] if c["users"] == users]
            row = [str(users), label]
            for kind in (SCRIPTED, OPEN_ENDED):
                row.append(" / ".join(spread([c[kind][q] for c in cells])
                                      for q in ("p50", "p95")))
            row.append(spread([c["msgs_per_s"] for c in cells]))
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "p95 over the defaults' p95, run by run (below 1: faster):", "",
              "| customers | variant | scripted | open-ended |", "| --- | --- | --- | --- |"]
    for users in meta["users"]:
        for name, (label, _, _) in list(VARIANTS.items())[1:]:
            cells = [ratio_spread(ratios(result, name, users, kind))
                     for kind in (SCRIPTED, OPEN_ENDED)]
            lines.append(f"| {users} | {label} | {cells[0]} | {cells[1]} |")
    lines += ["", MARK]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "kestrel.tar.gz")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args(argv)
    if not args.model.exists():
        sys.exit(f"{args.model} does not exist; train it first (make train)")
    args.turns, args.think = None, 0.0  # what measure_variant reads besides these
    tmp = Path(tempfile.mkdtemp(prefix="thread-pools-"))
    started, result = time.monotonic(), {}
    for name, (label, tf_threads, torch_threads) in VARIANTS.items():
        folder = tmp / name
        folder.mkdir()
        print(f"[{name}] {label}", flush=True)
        result[name] = measure_variant(
            name, str(args.model.resolve()), folder, args,
            env={var: tf_threads for var in TF_THREADS},
            endpoints=endpoints_with(torch_threads, folder))
    extra = "".join([f" --users {' '.join(map(str, args.users))}" if args.users != [1, 8] else "",
                     f" --runs {args.runs}" if args.runs != 3 else "",
                     f" --seconds {args.seconds:g}" if args.seconds != 12.0 else "",
                     f" --report {args.report}" if args.report else ""])
    try:
        shown = args.model.resolve().relative_to(ROOT)
    except ValueError:
        shown = args.model
    meta = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "model": shown, "args": extra, "runs": args.runs, "seconds": args.seconds,
            "users": args.users}
    text = report(result, meta)
    print(text)
    print(f"wall time {time.monotonic() - started:.0f} s")
    if args.report:
        write_section(args.report, MARK, text)
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
