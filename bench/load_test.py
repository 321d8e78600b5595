"""Latency and throughput of the deployed bot under 1, 8 and 32 concurrent customers, with and without the GPT policy.

    python bench/load_test.py --model models/kestrel.tar.gz [--users 1 8 32] [--runs 3]
        [--seconds 12 | --turns N] [--think S] [--report docs/benchmarks.md]

Two variants of the same bot, one after the other, each served as a user deploys it
(scripts/serve.sh): ``rasa run actions`` on a freshly seeded store database and
``rasa run`` (no ``--enable-api``) with the project's endpoints.yml and
credentials.yml, i.e. the SQL tracker store (a new SQLite file in a temporary
folder), GenerativeNLG and the validated REST channel.

- "with GPT": ``--model`` as it is.
- "without GPT": built here from config.yml as it is now (or ``--config``), with
  ``components.policies.gpt_policy.GPTPolicy`` removed and RulePolicy's
  ``enable_fallback_prediction`` option removed (Rasa's default, true: a turn
  no policy is at least 0.3 sure of gets ``action_default_fallback``), then
  ``rasa train --config <tmp> --out <tmp>`` in the project folder with the same
  Rasa cache as ``rasa train`` (RASA_CACHE_DIRECTORY, else ``.rasa/cache``), so
  the graph cache restores NLU and the unchanged policies and trains only what
  changed; the report lists what was trained and what restored, and the time.

After a warm-up conversation (every scripted episode and three open-ended
questions) each concurrency level is driven for ``--seconds`` (or ``--turns``
per customer), ``--runs`` times: run 1 at every level, then run 2, ... Each
simulated customer is closed-loop: it sends a message, waits for the whole
reply, sends the next; by default with no think time (the server is never idle,
the harshest case), with ``--think S`` after a pause drawn from an exponential
distribution of mean S seconds (a customer reading the reply and typing; that
run writes its own section, ``<!-- load-test-think -->``, and plot,
docs/images/load_test_think.png). It talks in conversations of 10 messages
(new sender id each), 80% scripted (greetings, FAQ answers and forms filled to
the end, with custom actions on the store database) and 20% open-ended
questions (bench/conversations.py). A turn's type is what was sent.

Per turn the client records the HTTP status and the time until the reply was
read. REST replies carry no generation metadata (Rasa's collecting output
channel drops it), so what answered each turn is read afterwards from the
tracker store (BotUttered ``metadata.utter_action`` and ``generation``): for the
GPT bot, how many open-ended turns got a generated reply and how many the
canned fallback, and why. While a level runs, /proc gives the CPU time of the
servers, of this client and of everything else on the machine ("foreign"),
which flags runs disturbed by other work.

Wall time on 2 cores with the defaults (3 runs x 3 levels x 12 s, both variants):
about 10 minutes when Rasa's cache holds the NLU and TED of the config (each server
takes about 1.5 minutes to start, training the variant without GPT 1-2 minutes);
longer when it does not (DIET and TED then train: +5 to 8 minutes).

Output: p50/p95/p99 per turn type, messages per second, errors, per level and
variant as the median of the runs with the min-max spread; the two targets of
the issue (scripted p95 at 8 customers with GPT / without GPT <= 1.3; open-ended
p95 < 1 s); a plot (``--plot``, default docs/images/load_test.png); and with
``--report`` the section between ``<!-- load-test -->`` markers of that file.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.conversations import (  # noqa: E402 - after the path fix
    FORM_EPISODES, OPEN_ENDED, OPEN_ENDED_MESSAGES, SCRIPTED, SINGLE_EPISODES,
    customer_script, post_message,
)
from bench.report import machine, median_spread, write_section  # noqa: E402
from shared_names import GENERATION_KEY, GPT_RESPONSE, RATE_INTENT  # noqa: E402

MARK = "<!-- load-test -->"              # closed loop, no think time
MARK_THINK = "<!-- load-test-think -->"  # with --think: a section of its own
GPT_POLICY = "components.policies.gpt_policy.GPTPolicy"
KINDS = (SCRIPTED, OPEN_ENDED)
VARIANTS = (("gpt", "with GPT"), ("nogpt", "without GPT"))
SCRIPT_TURNS = 10          # messages per conversation
OPEN_SHARE = 0.2           # share of open-ended messages in a conversation
RATIO_TARGET = 1.3         # scripted p95 with GPT / without, at TARGET_USERS
TARGET_USERS = 8
OPEN_P95_TARGET_MS = 1000.0
REQUEST_TIMEOUT_S = 120.0


# --- pure parts ---------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly between ranks.

    The same definition as numpy's default ("linear"). NaN for no values.

    Raises:
        ValueError: if ``q`` is outside [0, 100].
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q has to be within [0, 100], got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def reply_source(status: int, body: Any) -> str:
    """What the REST reply says about a turn: "error", "generated" or "replied".

    A generated reply is the one message that carries the rating buttons
    (``/rate_reply`` payloads, endpoints.yml ``nlg.rating_buttons``); the REST
    output has no other trace of generation.
    """
    if status != 200 or not isinstance(body, list):
        return "error"
    for message in body:
        for button in (message.get("buttons") or []) if isinstance(message, dict) else []:
            if str(button.get("payload", "")).startswith(f"/{RATE_INTENT}"):
                return "generated"
    return "replied"


def summarize(records: List[dict], elapsed_s: float) -> dict:
    """Per turn type: count, errors, p50/p95/p99 ms of the successful turns; msgs/s overall.

    ``records`` are the driver's turn records; messages per second counts the
    turns answered with 200 over ``elapsed_s``. "generated" is the open-ended
    turns whose REST reply carried rating buttons, with their own percentiles.
    """
    out: Dict[str, Any] = {"elapsed_s": elapsed_s, "turns": len(records)}
    ok = [r for r in records if r["source"] != "error"]
    out["msgs_per_s"] = len(ok) / elapsed_s if elapsed_s > 0 else math.nan
    out["errors"] = len(records) - len(ok)
    groups = {kind: [r for r in records if r["kind"] == kind] for kind in KINDS}
    groups["generated"] = [r for r in records if r["source"] == "generated"]
    for name, rows in groups.items():
        ms = [1000 * r["seconds"] for r in rows if r["source"] != "error"]
        out[name] = {"n": len(rows), "errors": len(rows) - len(ms),
                     **{f"p{q}": percentile(ms, q) for q in (50, 95, 99)}}
    return out


def no_gpt_config(config: dict) -> dict:
    """config.yml's content without the GPT policy, RulePolicy's fallback at Rasa's default.

    Raises:
        ValueError: if the config has no GPT policy to remove.
    """
    config = json.loads(json.dumps(config))  # a deep copy
    policies = config.get("policies") or []
    kept = [p for p in policies if p.get("name") != GPT_POLICY]
    if len(kept) == len(policies):
        raise ValueError(f"config has no {GPT_POLICY} to remove")
    for policy in kept:
        if policy.get("name") == "RulePolicy":
            policy.pop("enable_fallback_prediction", None)
    config["policies"] = kept
    return config


NODE = re.compile(r"^(?:run|train)_(.+?)(\d+)$")


def schema_components(schema_nodes: Dict[str, dict]) -> List[tuple]:
    """Sorted (name, index, options JSON) of the components in a model archive's graph schemas.

    Rasa names a config entry's graph nodes ``train_<name><index>`` and
    ``run_<name><index>`` and keeps the entry's options as the node's config.
    """
    found = {}
    for key, node in schema_nodes.items():
        m = NODE.match(key)
        if m:
            found.setdefault((m.group(1), int(m.group(2))),
                             json.dumps(node.get("config") or {}, sort_keys=True))
    return sorted((name, index, options) for (name, index), options in found.items())


def config_components(config: dict) -> List[tuple]:
    """Sorted (name, index, options JSON) of a config.yml's pipeline and policies."""
    out = []
    for section in ("pipeline", "policies"):
        for index, entry in enumerate(config.get(section) or []):
            options = {k: v for k, v in entry.items() if k != "name"}
            out.append((entry["name"], index, json.dumps(options, sort_keys=True)))
    return sorted(out)


def archive_mismatch(archive: Path, config: dict) -> Optional[str]:
    """How ``archive`` was trained from another config than ``config``; None when it was not."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("metadata.json")
        metadata = json.load(member) if member else {}
    nodes = {**((metadata.get("predict_schema") or {}).get("nodes") or {}),
             **((metadata.get("train_schema") or {}).get("nodes") or {})}
    have, want = set(schema_components(nodes)), set(config_components(config))
    if have == want:
        return None
    only_archive = sorted(f"{n}{i} {o}" for n, i, o in have - want)
    only_config = sorted(f"{n}{i} {o}" for n, i, o in want - have)
    return f"in the archive only: {only_archive}; in the config only: {only_config}"


def training_steps(log_text: str) -> Dict[str, List[str]]:
    """Components Rasa trained and restored from its cache, from a `rasa train` log."""
    trained, restored = [], []
    for line in log_text.splitlines():
        if "Finished training component '" in line:
            trained.append(line.split("Finished training component '")[1].split("'")[0])
        elif "Restored component '" in line:
            restored.append(line.split("Restored component '")[1].split("'")[0])
    return {"trained": trained, "restored": restored}


def answer_label(actions: List[str], bots: List[dict]) -> str:
    """What answered one user turn, from its stored action and bot events.

    "generated" / "extractive" / "retrieved" / "fallback: <reason>" for the GPT response (its generation
    metadata says which), "action_default_fallback", "no reply", or "scripted".
    """
    for bot in bots:
        meta = bot.get("metadata") or {}
        if meta.get("utter_action") == GPT_RESPONSE:
            generation = meta.get(GENERATION_KEY) or {}
            if generation.get("generated"):
                return "generated"
            if generation.get("mode") in ("extractive", "retrieved"):
                return generation["mode"]  # the help center's or the team's written words
            return f"fallback: {generation.get('fallback') or 'unknown'}"
    if "action_default_fallback" in actions:
        return "action_default_fallback"
    return "scripted" if bots else "no reply"


def turn_answers(events: List[tuple]) -> List[str]:
    """``answer_label`` of each user turn in a conversation's stored (type, data) events."""
    turns: List[tuple] = []
    for kind, data in events:
        if kind == "user":
            turns.append(([], []))
        elif turns and kind == "action" and data.get("name") != "action_listen":
            turns[-1][0].append(data.get("name"))
        elif turns and kind == "bot":
            turns[-1][1].append(data)
    return [answer_label(actions, bots) for actions, bots in turns]


def pair_ratios(gpt: List[float], nogpt: List[float]) -> List[float]:
    """Run-by-run ratios gpt[i] / nogpt[i] (the i-th run of each variant)."""
    return [a / b for a, b in zip(gpt, nogpt) if b and not math.isnan(a) and not math.isnan(b)]


# --- the load driver ----------------------------------------------------------

_sleep = asyncio.sleep  # the think-time pause; tests replace it to see each pause in order


def think_pauses(seed: int, number: int, think_s: float):
    """Customer ``number``'s pauses before each message (s): exponential, mean ``think_s``.

    Drawn from their own seeded stream, so the messages a customer sends do not
    depend on the think time. An endless iterator of zeros when ``think_s`` is 0.
    """
    rng = random.Random(f"think-{seed}-{number}")
    while True:
        yield rng.expovariate(1.0 / think_s) if think_s > 0 else 0.0


async def drive(url: str, users: int, *, seconds: Optional[float] = None,
                turns: Optional[int] = None, seed: int = 0, prefix: str = "load",
                script_turns: int = SCRIPT_TURNS, open_share: float = OPEN_SHARE,
                timeout_s: float = REQUEST_TIMEOUT_S, think_s: float = 0.0) -> dict:
    """``users`` closed-loop customers talk to ``url`` at once; returns every turn.

    Each customer goes through conversations of ``script_turns`` messages
    (``customer_script``, seeded by ``seed`` and its number), a new sender id
    each, and stops when ``seconds`` have passed since the start (a turn in
    flight is finished and counted; a pause that would end past it ends the
    customer) or after ``turns`` messages of its own. Before each message
    (the first one too, which spreads the starts) it pauses for a think time
    drawn by ``think_pauses`` (mean ``think_s`` s; 0: no pause).
    Returns {"records": [{"sender", "index", "kind", "text", "status",
    "sent_s", "seconds", "source", "error"}], "elapsed_s"}: ``sent_s`` is
    when the message was sent, ``elapsed_s`` the last reply, both in s from
    the start.

    Raises:
        ValueError: unless exactly one of ``seconds`` and ``turns`` is given,
            or if ``think_s`` is negative.
    """
    import aiohttp

    if (seconds is None) == (turns is None):
        raise ValueError("give either seconds or turns")
    if think_s < 0:
        raise ValueError(f"think_s must be >= 0 s, got {think_s}")
    records: List[dict] = []
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else math.inf
    last = [started]

    async def customer(session, number: int) -> None:
        rng = random.Random(seed * 100_003 + number)
        pauses = think_pauses(seed, number, think_s)
        sent, conversation = 0, 0
        while True:
            sender = f"{prefix}-u{number:02d}-c{conversation:03d}"
            for index, (kind, text) in enumerate(customer_script(rng, script_turns,
                                                                 open_share)):
                if turns is not None and sent >= turns:
                    return
                pause = next(pauses)
                if time.perf_counter() + pause >= deadline:
                    return
                if pause:
                    await _sleep(pause)
                t0 = time.perf_counter()
                record = {"sender": sender, "index": index, "kind": kind, "text": text,
                          "status": 0, "error": None, "sent_s": t0 - started}
                try:
                    reply = await post_message(session, url, sender, text)
                    record.update(status=reply.status, seconds=reply.seconds,
                                  source=reply_source(reply.status, reply.body))
                    if reply.status != 200:
                        record["error"] = f"HTTP {reply.status}"
                    elif record["source"] == "error":
                        record["error"] = "not a list of messages"
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    record.update(seconds=time.perf_counter() - t0, source="error",
                                  error=type(e).__name__)
                last[0] = max(last[0], time.perf_counter())
                records.append(record)
                sent += 1
            conversation += 1

    timeout = aiohttp.ClientTimeout(total=timeout_s)
    connector = aiohttp.TCPConnector(limit=max(users, 1))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(customer(session, n) for n in range(users)))
    return {"records": records, "elapsed_s": last[0] - started}


# --- CPU accounting (/proc) ---------------------------------------------------

def _proc_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def _tree(roots: Sequence[int]) -> List[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    pids, grew = set(roots), True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in pids} - pids
        pids |= more
        grew = bool(more)
    return sorted(pids)


def _machine_ticks() -> tuple:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


class CpuMeter:
    """CPU shares of the machine during a stretch: servers, this client, everything else."""

    def __init__(self, server_pids: Sequence[int]) -> None:
        self.server_pids = list(server_pids)

    def _snapshot(self) -> dict:
        busy, total = _machine_ticks()
        return {"busy": busy, "total": total,
                "servers": sum(_proc_ticks(p) for p in _tree(self.server_pids)),
                "client": _proc_ticks(os.getpid())}

    def start(self) -> None:
        self.begin = self._snapshot()

    def stop(self) -> dict:
        """Shares of all cores (0-1) since ``start``: servers, client, foreign."""
        end = self._snapshot()
        delta = {k: end[k] - self.begin[k] for k in end}
        total = max(delta["total"], 1)
        foreign = delta["busy"] - delta["servers"] - delta["client"]
        return {"servers": delta["servers"] / total, "client": delta["client"] / total,
                "foreign": max(foreign, 0) / total}


# --- servers ------------------------------------------------------------------

def rasa_env(**extra: str) -> dict:
    from tests.e2e_fixtures import rasa_env as env

    return env(**extra)


@contextmanager
def action_server(tmp: Path) -> Iterator[dict]:
    """`rasa run actions` on a freshly seeded SQLite store database in ``tmp``.

    Yields {"url", "db_url", "process"}: tests/e2e_fixtures.py's run_action_server.
    """
    from tests.e2e_fixtures import run_action_server

    with run_action_server(tmp) as server:
        yield server


def train_without_gpt(tmp: Path, config_file: Path) -> dict:
    """Trains the no-GPT variant of ``config_file`` into ``tmp``.

    Returns {"model", "wall_s", "log", "trained", "restored"}.
    """
    from tests.e2e_fixtures import RASA

    config = no_gpt_config(yaml.safe_load(config_file.read_text()))
    config_path = tmp / "config-nogpt.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp / "models"
    log_path = tmp / "train-nogpt.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        code = subprocess.call([RASA, "train", "--config", str(config_path), "--out", str(out),
                                "--fixed-model-name", "kestrel-nogpt"], cwd=ROOT,
                               env=rasa_env(), stdout=log, stderr=subprocess.STDOUT)
    wall = time.monotonic() - started
    model = out / "kestrel-nogpt.tar.gz"
    if code != 0 or not model.exists():
        sys.exit(f"rasa train of the no-GPT variant failed; see {log_path}:\n"
                 + log_path.read_text()[-3000:])
    return {"model": str(model), "wall_s": wall, "log": str(log_path),
            **training_steps(log_path.read_text())}


def stored_events(tracker_url: str, senders: Sequence[str]) -> Dict[str, List[tuple]]:
    """Every stored (type_name, data) event of ``senders``, in order."""
    import sqlalchemy as sa

    out: Dict[str, List[tuple]] = {s: [] for s in senders}
    engine = sa.create_engine(tracker_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("select sender_id, type_name, data from events "
                                        "where sender_id like :p order by id"),
                                {"p": os.path.commonprefix(list(senders)) + "%"}).fetchall()
    finally:
        engine.dispose()
    for sender, kind, data in rows:
        if sender in out:
            out[sender].append((kind, json.loads(data)))
    return out


def attach_answers(records: List[dict], tracker_url: str) -> None:
    """Sets each record's "answer" (``answer_label``) from the tracker store, in place."""
    senders = sorted({r["sender"] for r in records})
    events = stored_events(tracker_url, senders)
    by_sender = {s: turn_answers(events[s]) for s in senders}
    for r in records:
        answers = by_sender[r["sender"]]
        r["answer"] = answers[r["index"]] if r["index"] < len(answers) else "not stored"


def answer_counts(records: List[dict]) -> Dict[str, Dict[str, int]]:
    return {kind: dict(Counter(r.get("answer", "?") for r in records if r["kind"] == kind))
            for kind in KINDS}


async def warm_up(url: str) -> None:
    """One conversation per scripted episode and three open-ended questions, not measured."""
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        for n, episode in enumerate(FORM_EPISODES + SINGLE_EPISODES):
            for text in episode:
                await post_message(session, url, f"warmup-{n}", text)
        for text in OPEN_ENDED_MESSAGES[:3]:
            await post_message(session, url, "warmup-open", text)


def measure_variant(name: str, model: str, tmp: Path, args, *, env: Optional[dict] = None,
                    endpoints: Optional[Path] = None) -> dict:
    """Serves ``model`` and drives every level ``args.runs`` times; returns its cells.

    ``env`` adds environment variables to the Rasa server's; ``endpoints`` replaces
    endpoints.yml (bench/thread_pools.py varies both).
    """
    from tests.e2e_fixtures import ROOT as PROJECT, rasa_server

    tmp.mkdir(parents=True, exist_ok=True)
    cells = []
    started = time.monotonic()
    with action_server(tmp) as actions, rasa_server(
            model, actions["url"], tmp, env=env,
            endpoints=endpoints or PROJECT / "endpoints.yml") as server:
        startup = time.monotonic() - started
        print(f"[{name}] servers up in {startup:.0f} s; warming up", flush=True)
        asyncio.run(warm_up(server["url"]))
        meter = CpuMeter([server["process"].pid, actions["process"].pid])
        for run in range(args.runs):
            for users in args.users:
                prefix = f"{name}-r{run}-n{users:02d}"
                load_before = os.getloadavg()[0]
                meter.start()
                driven = asyncio.run(drive(server["url"], users, seconds=args.seconds,
                                           turns=args.turns, seed=run, prefix=prefix,
                                           think_s=args.think))
                cpu = meter.stop()
                attach_answers(driven["records"], server["tracker"])
                cell = {"run": run + 1, "users": users, "cpu": cpu, "load_before": load_before,
                        **summarize(driven["records"], driven["elapsed_s"]),
                        "answers": answer_counts(driven["records"]),
                        "gpt_on_scripted": dict(Counter(
                            r["text"] for r in driven["records"] if r["kind"] == SCRIPTED
                            and r["answer"].startswith(("generated", "fallback")))),
                        "error_kinds": dict(Counter(r["error"] for r in driven["records"]
                                                    if r["error"]))}
                cells.append(cell)
                print(f"[{name}] run {run + 1} users {users:2d}: {cell['turns']} turns, "
                      f"{cell['msgs_per_s']:.1f} msgs/s, scripted p95 "
                      f"{cell[SCRIPTED]['p95']:.0f} ms, open-ended p95 "
                      f"{cell[OPEN_ENDED]['p95']:.0f} ms, errors {cell['errors']}, "
                      f"foreign CPU {100 * cpu['foreign']:.0f}%", flush=True)
                time.sleep(1)
        alive = server["process"].poll() is None and actions["process"].poll() is None
    return {"cells": cells, "startup_s": startup, "servers_alive": alive}


# --- report -------------------------------------------------------------------

def _cells(result: dict, variant: str, users: int) -> List[dict]:
    return [c for c in result["variants"][variant]["cells"] if c["users"] == users]


def spread(values: List[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    return median_spread(values) if values else "n/a"


def ratio_spread(values: List[float]) -> str:
    if not values:
        return "n/a"
    values = sorted(values)
    mid = values[len(values) // 2] if len(values) % 2 else (
        values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    return f"{mid:.2f} ({values[0]:.2f}-{values[-1]:.2f})"


def scripted_ratios(result: dict, users: int) -> List[float]:
    return pair_ratios([c[SCRIPTED]["p95"] for c in _cells(result, "gpt", users)],
                       [c[SCRIPTED]["p95"] for c in _cells(result, "nogpt", users)])


def _median(values: List[float]) -> float:
    values = sorted(v for v in values if not math.isnan(v))
    if not values:
        return math.nan
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def report(result: dict) -> str:
    """The docs/benchmarks.md section for ``result`` (``run``'s output).

    Fenced by MARK, or by MARK_THINK when the customers had a think time.
    """
    users_levels = result["users"]
    think = result.get("think_s") or 0.0
    mark = MARK_THINK if think else MARK
    image = result.get("plot_name", "load_test.png")
    runs = result["runs"]
    window = (f"for {result['seconds']:g} s" if result.get("seconds") is not None
              else f"for {result['turns']} messages per customer")
    lat_rows, tput_rows, answer_rows, target_rows, notes = [], [], [], [], []
    for users in users_levels:
        for kind in KINDS:
            for variant, label in VARIANTS:
                cells = _cells(result, variant, users)
                lat_rows.append(
                    f"| {users} | {kind} | {label} | "
                    f"{_median([c[kind]['n'] for c in cells]):.0f} | "
                    + " | ".join(spread([c[kind][f'p{q}'] for c in cells])
                                 for q in (50, 95, 99))
                    + f" | {sum(c[kind]['errors'] for c in cells)} |")
        gpt, nogpt = _cells(result, "gpt", users), _cells(result, "nogpt", users)
        tput_rows.append(f"| {users} | {spread([c['msgs_per_s'] for c in gpt])} | "
                         f"{spread([c['msgs_per_s'] for c in nogpt])} | "
                         f"{ratio_spread(scripted_ratios(result, users))} |")
        for variant, label in VARIANTS:
            counts: Counter = Counter()
            for c in _cells(result, variant, users):
                counts.update(c["answers"][OPEN_ENDED])
            total = sum(counts.values())
            scripted_gpt = sum(n for c in _cells(result, variant, users)
                               for a, n in c["answers"][SCRIPTED].items()
                               if a == "generated" or a.startswith("fallback"))
            listed = ", ".join(f"{a} {n}" for a, n in counts.most_common())
            answer_rows.append(f"| {users} | {label} | {total} | {listed} | {scripted_gpt} |")
    misread: Counter = Counter()
    for c in result["variants"]["gpt"]["cells"]:
        misread.update(c.get("gpt_on_scripted") or {})
    misread_text = ("; ".join(f'"{t}" {n}' for t, n in misread.most_common(6))
                    if misread else "none")
    ratios = scripted_ratios(result, TARGET_USERS)
    if ratios:
        met = "yes" if _median(ratios) <= RATIO_TARGET else "no"
        target_rows.append(
            f"| scripted-turn p95 at {TARGET_USERS} customers, with GPT / without GPT | "
            f"<= {RATIO_TARGET} | {ratio_spread(ratios)} | {met} |")
    for users in users_levels:
        cells = _cells(result, "gpt", users)
        p95 = [c[OPEN_ENDED]["p95"] for c in cells]
        gen = [c["generated"]["p95"] for c in cells]
        met = "yes" if _median(p95) < OPEN_P95_TARGET_MS else "no"
        target_rows.append(
            f"| open-ended-turn p95 with GPT, {users} customer{'s' * (users > 1)} | "
            f"< {OPEN_P95_TARGET_MS:.0f} ms | {spread(p95)} ms (generated replies only: "
            f"{spread(gen)} ms) | {met} |")
    for variant, label in VARIANTS:
        v = result["variants"][variant]
        for c in v["cells"]:
            if c["cpu"]["foreign"] > 0.05:
                notes.append(f"{label}, run {c['run']}, {c['users']} customers: other "
                             f"processes used {100 * c['cpu']['foreign']:.0f}% of the CPU.")
            if c["errors"]:
                kinds = ", ".join(f"{k}: {n}" for k, n in c["error_kinds"].items())
                notes.append(f"{label}, run {c['run']}, {c['users']} customers: "
                             f"{c['errors']} failed turns ({kinds}).")
        if not v["servers_alive"]:
            notes.append(f"{label}: a server had exited by the end of the run.")
    foreign = [c["cpu"]["foreign"] for v in result["variants"].values() for c in v["cells"]]
    client = [c["cpu"]["client"] for v in result["variants"].values() for c in v["cells"]
              if c["users"] == max(users_levels)]
    training = result["training"]
    restored = ", ".join(sorted(set(training["restored"]))) or "nothing"
    trained = ", ".join(sorted(set(training["trained"]))) or "nothing"
    notes_text = ("\n".join(f"- {n}" for n in notes) if notes else
                  "- No run was disturbed by other processes (none used over 5% of the CPU "
                  "while a level ran) and no turn failed.")
    nl = "\n"
    if think:
        pacing = (f"closed-loop with a think time: before each message a customer pauses "
                  f"for an exponentially distributed time of mean {think:g} s (a customer "
                  f"typing, or reading the reply), then sends it and waits for the whole reply")
        title = f"with {think:g} s think time"
    else:
        pacing = ("closed-loop without think time (each sends its next message as soon as the "
                  "whole reply is read)")
        title = "no think time"
    return f"""{mark}
## Latency and throughput under load, {title} (issue 5, part 2)

Command: `python bench/load_test.py --model {result['model']}{result['args']}` ({result['date']};
{result['machine']}; model archive `{result['model']}`, {result['model_mib']:.1f} MiB).
Wall time of the whole command: {result['wall_s'] / 60:.1f} min.

Setup: the action server (freshly seeded SQLite store database) and `rasa run` with
the project's endpoints.yml and credentials.yml (SQL tracker store on a new SQLite
file, GenerativeNLG, the validated REST channel), started as `make serve` does but
without the HTTP API, one variant at a time on the same machine as this client.
Simulated customers are {pacing}, in conversations of {SCRIPT_TURNS} messages: 80%
scripted (greetings, FAQ answers and four forms filled to the end, with custom actions
on the store database: order status, package tracking, a declined cancellation, a
return) and 20% open-ended questions; a turn's type is what was sent
(bench/conversations.py). Each level ran {window}, in {runs} run{'s' * (runs > 1)} (run 1
at every level, then run 2, ...); figures are the median of the runs with the min-max
spread.
Latency is the time from sending a message to having read the whole reply.

The variant without GPT is the same project trained from {result['config']} without
`{GPT_POLICY}` and with RulePolicy's `enable_fallback_prediction` back at Rasa's
default (true), so open-ended turns get whatever the stories and rules predict, or
`action_default_fallback` (the domain has no `utter_default`, so that is no text).
`rasa train` with the project's Rasa cache took {training['wall_s']:.0f} s:
it trained {trained} and restored {restored} from the cache.

### Latency per turn type (ms)

| customers | turn type | variant | turns per run | p50 | p95 | p99 | failed turns (all runs) |
|---|---|---|---|---|---|---|---|
{nl.join(lat_rows)}

### Throughput

| customers | msgs/s with GPT | msgs/s without GPT | scripted p95 with / without GPT |
|---|---|---|---|
{nl.join(tput_rows)}

The ratio is taken run by run (run i of each variant) and summarised the same way.

### Targets

| target | limit | measured | met |
|---|---|---|---|
{nl.join(target_rows)}

The open-ended p95 counts every open-ended turn of the GPT bot, including those that
got the canned fallback; "generated replies only" is the turns whose reply carried the
rating buttons.

### What answered the open-ended turns (all runs, from the tracker store)

| customers | variant | open-ended turns | answered by | scripted turns answered by `{GPT_RESPONSE}` |
|---|---|---|---|---|
{nl.join(answer_rows)}

Scripted messages the GPT bot answered with `{GPT_RESPONSE}` (NLU read them as
open-ended; all runs and levels): {misread_text}. They count as scripted turns above.

"generated" is a reply written by the generator; "fallback: <reason>" the canned text
of `{GPT_RESPONSE}` (`no_generator` in the variant without GPT, which has no generator;
`timeout` past the 2 s budget); "scripted" an answer from a rule, story or form.

![p95 per turn type vs concurrent customers, with and without GPT](images/{image})

### What may have disturbed the runs

- This client runs on the same {os.cpu_count()} cores as both servers: at {max(users_levels)}
  customers it used {spread([100 * c for c in client])}% of the machine's CPU. Other
  processes used {spread([100 * f for f in foreign])}% while a level ran (all levels,
  both variants).
- The variants ran one after the other (their servers took
  {result['variants']['gpt']['startup_s']:.0f} s and {result['variants']['nogpt']['startup_s']:.0f} s to start), so a change in the
  machine's load between them shows up as a difference between them.
{notes_text}
{mark}"""


def plot(result: dict, path: Path) -> None:
    """p95 per turn type vs concurrent customers, both variants, min-max as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {("gpt", SCRIPTED): ("tab:blue", "-", "o"), ("nogpt", SCRIPTED): ("tab:blue", "--", "s"),
              ("gpt", OPEN_ENDED): ("tab:orange", "-", "o"),
              ("nogpt", OPEN_ENDED): ("tab:orange", "--", "s")}
    for (variant, kind), (color, line, marker) in styles.items():
        label = dict(VARIANTS)[variant]
        xs, mids, lows, highs = [], [], [], []
        for users in result["users"]:
            values = [c[kind]["p95"] for c in _cells(result, variant, users)
                      if not math.isnan(c[kind]["p95"])]
            if values:
                xs.append(users)
                mid = _median(values)
                mids.append(mid)
                lows.append(mid - min(values))
                highs.append(max(values) - mid)
        ax.errorbar(xs, mids, yerr=[lows, highs], color=color, linestyle=line, marker=marker,
                    capsize=3, label=f"{kind}, {label}")
    ax.axhline(OPEN_P95_TARGET_MS, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks(result["users"])
    ax.set_xticklabels([str(u) for u in result["users"]])
    ax.set_yscale("log")
    ax.set_xlabel("concurrent customers")
    ax.set_ylabel("p95 latency per turn (ms)")
    think = result.get("think_s") or 0.0
    pacing = f", {think:g} s think time" if think else ", no think time"
    ax.set_title(f"REST turn latency{pacing}, median of {result['runs']} runs (bars: min-max)",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ---------------------------------------------------------------------

def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "kestrel.tar.gz")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--runs", type=int, default=3)
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--seconds", type=float, help="per level and run (default 12)")
    window.add_argument("--turns", type=int, help="messages per customer, per level and run")
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean think time before each message, s (exponential; default 0: "
                             "none). Writes its own report section and plot")
    parser.add_argument("--plot", type=Path,
                        help="PNG to write (default docs/images/load_test.png, or "
                             "load_test_think.png with --think)")
    parser.add_argument("--json", type=Path, help="also write the raw result here")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml",
                        help="the config --model was trained from (default config.yml); "
                             "the variant without GPT is trained from it")
    args = parser.parse_args(argv)
    if args.seconds is None and args.turns is None:
        args.seconds = 12.0
    if args.think < 0:
        parser.error(f"--think must be >= 0 s, got {args.think}")
    if args.plot is None:
        args.plot = ROOT / "docs" / "images" / (
            "load_test_think.png" if args.think else "load_test.png")
    model = args.model.resolve()
    if not model.exists():
        sys.exit(f"{model} does not exist; train it first (make train)")
    config_file = args.config.resolve()
    mismatch = archive_mismatch(model, yaml.safe_load(config_file.read_text()))
    if mismatch:
        sys.exit(f"{model} was not trained from {config_file}, so the variant without GPT "
                 f"would differ in more than the GPT policy ({mismatch}). Train it again "
                 f"(make train), or name the config it was trained from with --config.")
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="load-test-"))
    print(f"working folder {tmp}", flush=True)
    print("rasa train without the GPT policy ...", flush=True)
    training = train_without_gpt(tmp, config_file)
    print(f"  {training['wall_s']:.0f} s; trained {training['trained']}, restored "
          f"{training['restored']}", flush=True)
    variants = {"gpt": measure_variant("gpt", str(model), tmp / "gpt", args),
                "nogpt": measure_variant("nogpt", training["model"], tmp / "nogpt", args)}
    try:
        shown_config = str(config_file.relative_to(ROOT))
    except ValueError:
        shown_config = str(config_file)
    extra = "".join([f" --config {shown_config}" if config_file != ROOT / "config.yml" else "",
                     f" --users {' '.join(map(str, args.users))}" if args.users != [1, 8, 32]
                     else "", f" --runs {args.runs}" if args.runs != 3 else "",
                     f" --seconds {args.seconds:g}" if args.seconds not in (None, 12.0) else "",
                     f" --turns {args.turns}" if args.turns is not None else "",
                     f" --think {args.think:g}" if args.think else "",
                     f" --report {args.report}" if args.report else ""])
    try:
        shown = model.relative_to(ROOT)
    except ValueError:
        shown = model
    result = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(),
              "model": str(shown), "model_mib": model.stat().st_size / 2**20,
              "users": args.users, "runs": args.runs, "seconds": args.seconds,
              "turns": args.turns, "args": extra, "training": training,
              "config": shown_config, "think_s": args.think, "plot_name": args.plot.name,
              "variants": variants, "wall_s": time.monotonic() - started}
    print(json.dumps({k: v for k, v in result.items() if k != "variants"}, indent=1))
    text = report(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    plot(result, args.plot)
    print(f"wrote {args.plot}")
    if args.report:
        write_section(args.report, MARK_THINK if args.think else MARK, text)
        print(f"wrote {args.report}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
