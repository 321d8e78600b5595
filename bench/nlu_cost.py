"""What the NLU pipeline costs on the project's own data, against other pipelines.

    python bench/nlu_cost.py [--baseline default] [--baseline c08a909:config.yml]
                             [--report docs/benchmarks.md]

Side by side in one run, for the pipeline of config.yml and each baseline
(``default``: the pipeline `rasa init` gives, Rasa's default config, which issue
15's parse target is measured against; or a ``git show`` spec of a config.yml;
both by default, the spec being the DIET pipeline shipped before issue 15):

1. ``rasa train nlu --nlu data/nlu`` with an empty Rasa cache: wall time (s);
2. every message of bench/data/nlu_heldout.yml parsed one at a time through
   ``Agent.parse_message``: median and 95th percentile (ms per message), after
   one warm-up parse.

Only the ``pipeline`` of each config is used (``rasa train nlu`` ignores the
policies). Writes the ``<!-- nlu-cost -->`` section of ``--report``. Takes
about 20 min on 2 cores (each DIET pipeline trains for about 9 min).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from importlib.resources import files
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.nlu_banking77 import parse_all, train  # noqa: E402
from bench.nlu_heldout import DEFAULT_NLU, read_messages  # noqa: E402
from bench.report import machine, publish  # noqa: E402

MARK = "<!-- nlu-cost -->"
BASELINE = "c08a909:config.yml"  # the DIET pipeline (100 epochs) before issue 15
DEFAULT = "default"  # what `rasa init` writes: no pipeline, so Rasa's default one
SHIPPED = "config.yml"
NAMES = {DEFAULT: "`rasa init`'s default", BASELINE: "DIET pipeline before issue 15"}


def config_text(spec: str) -> str:
    """The YAML of ``spec``: config.yml, ``default`` (Rasa's default pipeline) or a git spec.

    Raises:
        subprocess.CalledProcessError: if ``git show`` does not know the spec.
    """
    if spec == SHIPPED:
        return (ROOT / "config.yml").read_text()
    if spec == DEFAULT:
        # The config Rasa fills in when config.yml has no pipeline (rasa init's).
        return (files("rasa.engine.recipes") / "config_files" / "default_config.yml").read_text()
    return subprocess.run(["git", "show", spec], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


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
    parser.add_argument("--baseline", action="append", metavar="default|REV:PATH",
                        help=f"default, or a git show spec of a config.yml; repeatable "
                             f"(default: {DEFAULT} and {BASELINE})")
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    baselines = args.baseline or [DEFAULT, BASELINE]
    texts = [t for t, _ in read_messages(DEFAULT_NLU)]
    tmp = Path(tempfile.mkdtemp(prefix="nlu-cost-"))
    results = {}
    for k, spec in enumerate(baselines + [SHIPPED]):
        config = yaml.safe_load(config_text(spec)) or {}
        path = tmp / f"p{k}.yml"
        path.write_text(yaml.safe_dump({"recipe": "default.v1", "language": "en",
                                        "assistant_id": "bench",
                                        "pipeline": config.get("pipeline")}))
        print(f"training {spec} ...", flush=True)
        results[spec] = measure(path, tmp, f"p{k}", texts)
    s = results[SHIPPED]
    rows = "\n".join(
        f"| {figure} | " + " | ".join(f"{results[b][key]:{fmt}}" for b in baselines)
        + f" | {s[key]:{fmt}} | " + " | ".join(f"{s[key] / results[b][key]:.2f}"
                                               for b in baselines) + " |"
        for figure, key, fmt in (("`rasa train nlu`, s", "train_s", ".0f"),
                                 ("parse, ms per message, median", "p50", ".1f"),
                                 ("parse, ms per message, p95", "p95", ".1f")))
    names = [NAMES.get(b, f"`{b}`") for b in baselines]
    section = f"""{MARK}
## NLU cost on the project's data (issue 15)

Command: `{" ".join(["python bench/nlu_cost.py"] + sys.argv[1:])}` ({datetime.now():%Y-%m-%d};
{machine()}). `rasa train nlu --nlu data/nlu` with an empty cache, then the
{len(texts)} messages of bench/data/nlu_heldout.yml parsed one at a time.

| figure | {" | ".join(names)} | shipped (config.yml) | {" | ".join(f"shipped / {n}" for n in names)} |
|---|{"---|" * (2 * len(names) + 1)}
{rows}
{MARK}"""
    publish(section, MARK, args.report)


if __name__ == "__main__":
    main()
