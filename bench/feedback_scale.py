"""Time and peak memory of export and fine-tuning on 10,000 stored conversations.

    python bench/feedback_scale.py --conversations 10000 --archive models/kestrel.tar.gz
                                   [--epochs 1] [--report docs/benchmarks.md]

1. Builds a SQLite tracker store in a temporary folder with Rasa's own
   ``SQLTrackerStore`` schema and event JSON: ``--conversations`` conversations,
   each a session start, an order-status form (8-10 events), and one or two
   open-ended turns answered by a generated reply; 40% of generated replies
   are rated (3 helpful : 1 not helpful). Rows are bulk-inserted, since the
   bench measures the feedback loop, not Rasa's write path.
2. ``python -m components.feedback export`` in a child process.
3. ``dataset`` (no corrections: helpful replies become the pairs).
4. ``finetune`` of the archive's generator for ``--epochs`` epochs, in a child
   process, without corpus replay.

Wall time and peak RSS of each child come from ``os.wait4`` (ru_maxrss, KiB
on Linux). Prints a Markdown table and, with ``--report``, replaces the
section between ``<!-- feedback-scale -->`` markers of that file.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import machine, publish  # noqa: E402 - after the path fix
from shared_names import (  # noqa: E402
    GENERATION_KEY, GPT_RESPONSE, HELPFUL, NOT_HELPFUL, RATE_ACTION, RATE_INTENT, RATING_SLOT,
    GenerationRecord,
)

MARK = "<!-- feedback-scale -->"

OPEN_QUESTIONS = [
    "do you think your kettles would make a nice wedding gift?",
    "is the blender dishwasher safe?", "do you have a physical store in boston?",
    "are your products eco friendly?", "how long is the warranty on headphones?",
    "can I pay with bitcoin?", "what's your favourite colour?", "do you sell gift cards?",
]
REPLIES = [
    "Our small appliances come with a two-year warranty.",
    "Yes, we ship to the US and Canada; standard shipping takes 3-5 business days.",
    "Kestrel gift cards come in any amount from $10.",
    "I can't check that here, but the product page lists the materials.",
    "We accept Visa, Mastercard, American Express, PayPal and gift cards.",
    "I'm a support assistant, so no favourite colour, but I can help with orders.",
]


def conversation_events(i: int, start: float, rng: random.Random):
    """The Rasa events of conversation ``i``, starting at ``start`` (s since epoch)."""
    from rasa.shared.core.events import (
        ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered,
    )

    t = start
    order = f"KC-{10000 + i % 90000}"
    email = f"customer{i}@example.com"
    events = [ActionExecuted("action_session_start", timestamp=t), SessionStarted(timestamp=t),
              ActionExecuted("action_listen", timestamp=t),
              UserUttered(f"where is my order {order}", {"name": "order_status",
                          "confidence": 0.93}, [{"entity": "order_id", "value": order,
                                                 "start": 18, "end": 26}], timestamp=t + 1),
              SlotSet("order_id", order, timestamp=t + 1),
              ActionExecuted("order_lookup_form", timestamp=t + 1),
              ActiveLoop("order_lookup_form", timestamp=t + 1),
              SlotSet("requested_slot", "email", timestamp=t + 1),
              BotUttered("What's the email address on the order?", timestamp=t + 1),
              ActionExecuted("action_listen", timestamp=t + 1),
              UserUttered(email, {"name": "inform", "confidence": 0.88}, timestamp=t + 5),
              SlotSet("email", email, timestamp=t + 5),
              ActiveLoop(None, timestamp=t + 5), SlotSet("requested_slot", None, timestamp=t + 5),
              ActionExecuted("action_order_status", timestamp=t + 5),
              BotUttered(f"Order {order} shipped yesterday.", timestamp=t + 5),
              ActionExecuted("action_listen", timestamp=t + 5)]
    for j in range(rng.choice((1, 2))):
        t += 20
        reply_id = f"{i:08x}{j:08x}"
        events += [
            UserUttered(rng.choice(OPEN_QUESTIONS), {"name": "product_question",
                        "confidence": 0.7}, timestamp=t),
            ActionExecuted(GPT_RESPONSE, timestamp=t),
            BotUttered(rng.choice(REPLIES), timestamp=t + 0.2,
                       metadata={"utter_action": GPT_RESPONSE, GENERATION_KEY: GenerationRecord(
                           generated=True, model_version="kestrel-gpt-bench", latency_ms=110.0,
                           reply_id=reply_id).to_dict()}),
            ActionExecuted("action_listen", timestamp=t + 0.2)]
        if rng.random() < 0.4:
            value = HELPFUL if rng.random() < 0.75 else NOT_HELPFUL
            events += [
                UserUttered(f'/{RATE_INTENT}{{"rating": "{value}", "reply_id": "{reply_id}"}}',
                            {"name": RATE_INTENT, "confidence": 1.0}, timestamp=t + 4),
                ActionExecuted(RATE_ACTION, timestamp=t + 4),
                SlotSet(RATING_SLOT, {"reply_id": reply_id, "rating": value,
                                      "model_version": "kestrel-gpt-bench",
                                      "generated": True, "rated_at": t + 4}, timestamp=t + 4),
                ActionExecuted("action_listen", timestamp=t + 4)]
    return events


def build_store(path: Path, n: int, seed: int = 0) -> int:
    """Writes ``n`` conversations into a new SQLite store at ``path``; returns the event count."""
    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    store = SQLTrackerStore(Domain.load(str(ROOT / "domain.yml")), dialect="sqlite",
                            db=str(path))  # creates Rasa's schema
    table = sa.Table("events", sa.MetaData(), autoload_with=store.engine)
    rng, start, total = random.Random(seed), time.time() - 30 * 86400, 0
    with store.engine.begin() as conn:
        for i in range(n):
            rows = []
            for e in conversation_events(i, start + i * 200, rng):
                data = e.as_dict()
                rows.append({"sender_id": f"bench-{i}", "type_name": e.type_name,
                             "timestamp": e.timestamp, "intent_name": data.get(
                                 "parse_data", {}).get("intent", {}).get("name"),
                             "action_name": data.get("name"), "data": json.dumps(data)})
            conn.execute(table.insert(), rows)
            total += len(rows)
    store.engine.dispose()
    return total


def run_measured(args, env) -> dict:
    """Runs a child process; returns wall time (s), peak RSS (MiB) and its output."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{out}")
    return {"seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "output": out}


def report(figures: dict) -> str:
    """The docs/benchmarks.md section (fenced by MARK) for ``figures``.

    ``figures``: {"command", "date", "machine", "conversations", "events",
    "store_mib", "build_s", "epochs", "export", "dataset", "finetune" (each
    ``run_measured``'s dict), "manifest" (the dataset's manifest.json), "meta"
    (the candidate's generator_meta.json)}.
    """
    export, dataset, finetune = figures["export"], figures["dataset"], figures["finetune"]
    manifest, meta = figures["manifest"], figures["meta"]
    epochs = figures["epochs"]
    exported = export["output"].strip().splitlines()[-1] if export["output"].strip() else ""
    return f"""{MARK}
## Feedback loop at {figures["conversations"]:,} conversations (issue 3)

Command: `{figures["command"]}` ({figures["date"]}; {figures["machine"]}). The store is a
SQLite file in Rasa's `SQLTrackerStore` schema holding {figures["conversations"]:,}
conversations ({figures["events"]:,} events, {figures["store_mib"]:.0f} MiB, built in
{figures["build_s"]:.0f} s): each an order-status form plus one or two generated replies,
40% of them rated. Each step runs as its own process; wall time and peak RSS come from
`os.wait4`.

| step | wall time | peak RSS | what it did |
|---|---|---|---|
| export | {export["seconds"]} s | {export["peak_rss_mib"]} MiB | {exported} |
| dataset | {dataset["seconds"]} s | {dataset["peak_rss_mib"]} MiB | {manifest["train"]:,} train / {manifest["heldout"]:,} held-out pairs (no corrections: helpful replies only) |
| finetune, {epochs} epoch{"s" * (epochs != 1)} | {finetune["seconds"]} s | {finetune["peak_rss_mib"]} MiB | {meta["train_examples"]:,} examples, {meta["steps"]} steps, validation perplexity {meta["val_perplexity"]:.1f} |

Export memory does not grow with the store: conversations are streamed from the
database one at a time and test stories are written in batches of 200. Fine-tuning
memory is the model, its AdamW state and the encoded examples; time grows linearly
with examples x epochs. The bench's replies come from six fixed texts, so its
validation perplexity says nothing about quality; README's feedback-loop section has
a real evaluation.
{MARK}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=10000)
    parser.add_argument("--archive", default="models/kestrel.tar.gz")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        events = build_store(tmp / "tracker.db", args.conversations)
        build_s = time.perf_counter() - t0
        size_mib = (tmp / "tracker.db").stat().st_size / 2**20
        url = f"sqlite:///{tmp / 'tracker.db'}"
        export = run_measured([py, "-m", "components.feedback", "export", "--store", url,
                               "--out", str(tmp / "exports")], env)
        dataset = run_measured([py, "-m", "components.feedback", "dataset", "--exports",
                                str(tmp / "exports"), "--out", str(tmp / "ds")], env)
        manifest = json.loads((tmp / "ds" / "manifest.json").read_text())
        finetune = run_measured([py, "-m", "components.feedback", "finetune", "--dataset",
                                 str(tmp / "ds"), "--out", str(tmp / "candidate"), "--archive",
                                 args.archive, "--versions", str(tmp / "generators"),
                                 "--no-replay", "--epochs", str(args.epochs)], env)
        meta = json.loads((tmp / "candidate" / "generator_meta.json").read_text())
    figures = {
        "command": " ".join(["python bench/feedback_scale.py"] + sys.argv[1:]),
        "date": datetime.now().strftime("%Y-%m-%d"), "machine": machine(),
        "conversations": args.conversations, "events": events, "store_mib": size_mib,
        "build_s": build_s, "epochs": args.epochs, "export": export, "dataset": dataset,
        "finetune": finetune, "manifest": manifest, "meta": meta,
    }
    section = report(figures)
    publish(section, MARK, args.report)


if __name__ == "__main__":
    main()
