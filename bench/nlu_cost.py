"""What the NLU pipeline costs on the project's own data, against an earlier pipeline.

    python bench/nlu_cost.py [--baseline c08a909:config.yml] [--report docs/benchmarks.md]

Side by side in one run, for the pipeline of config.yml and the baseline's (a
``git show`` spec, by default the DIET pipeline shipped before issue 15):

1. ``rasa train nlu --nlu data/nlu`` with an empty Rasa cache: wall time (s);
2. every message of bench/data/nlu_heldout.yml parsed one at a time through
   ``Agent.parse_message``: median and 95th percentile (ms per message), after
   one warm-up parse.

Only the ``pipeline`` of each config is used (``rasa train nlu`` ignores the
policies). Writes the ``<!-- nlu-cost -->`` section of ``--report``.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.nlu_banking77 import parse_all, train  # noqa: E402
from bench.nlu_heldout import DEFAULT_NLU, read_messages  # noqa: E402
from bench.report import machine, write_section  # noqa: E402

MARK = "<!-- nlu-cost -->"
BASELINE = "c08a909:config.yml"  # the DIET pipeline (100 epochs) before issue 15


def measure(config: Path, out: Path, name: str, texts) -> dict:
    """Train time (s) and parse ms (p50, p95) of one config's pipeline."""
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    seconds = train(config, ROOT / "data" / "nlu", out, name, env)
    rows = parse_all(out / f"{name}.tar.gz", [texts[0]] + list(texts))[1:]  # warm-up dropped
    ms = sorted(r["ms"] for r in rows)
    return {"train_s": seconds, "p50": statistics.median(ms),
            "p95": ms[min(len(ms) - 1, int(0.95 * len(ms)))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="git show spec of a config.yml")
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    baseline_text = subprocess.run(["git", "show", args.baseline], cwd=ROOT, check=True,
                                   capture_output=True, text=True).stdout
    texts = [t for t, _ in read_messages(DEFAULT_NLU)]
    tmp = Path(tempfile.mkdtemp(prefix="nlu-cost-"))
    results = {}
    for name, text in (("baseline", baseline_text), ("shipped", (ROOT / "config.yml").read_text())):
        config = yaml.safe_load(text)
        path = tmp / f"{name}.yml"
        path.write_text(yaml.safe_dump({k: config[k] for k in
                                        ("recipe", "language", "assistant_id", "pipeline")}))
        print(f"training the {name} pipeline ...", flush=True)
        results[name] = measure(path, tmp, name, texts)
    b, s = results["baseline"], results["shipped"]
    section = f"""{MARK}
## NLU cost on the project's data (issue 15)

Command: `{" ".join(["python bench/nlu_cost.py"] + sys.argv[1:])}` ({datetime.now():%Y-%m-%d};
{machine()}). `rasa train nlu --nlu data/nlu` with an empty cache, then the
{len(texts)} messages of bench/data/nlu_heldout.yml parsed one at a time; baseline:
`git show {args.baseline}` (DIET, 100 epochs, with the nearest-example gate).

| figure | baseline | shipped (config.yml) | shipped / baseline |
|---|---|---|---|
| `rasa train nlu`, s | {b["train_s"]:.0f} | {s["train_s"]:.0f} | {s["train_s"] / b["train_s"]:.2f} |
| parse, ms per message, median | {b["p50"]:.1f} | {s["p50"]:.1f} | {s["p50"] / b["p50"]:.2f} |
| parse, ms per message, p95 | {b["p95"]:.1f} | {s["p95"]:.1f} | {s["p95"] / b["p95"]:.2f} |
{MARK}"""
    print(section)
    if args.report:
        write_section(args.report, MARK, section)
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
