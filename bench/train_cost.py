"""What the pipeline costs: `rasa train` per component, archive size, a cached retrain, cold start.

    python bench/train_cost.py [--out models] [--report docs/benchmarks.md]

Steps, each a separate process timed with ``os.wait4`` (wall s, peak RSS MiB):

1. ``rasa train`` of the whole project with an empty Rasa cache
   (RASA_CACHE_DIRECTORY in a temporary folder). Per-component times come from
   the lines Rasa's training hooks log ("Starting to train component 'X'" /
   "Finished training component 'X'"), which have 1 s resolution.
2. The archive's size.
3. ``rasa train`` again with nothing changed: Rasa finds the same fingerprint
   and keeps the model.
4. ``rasa run`` on the archive (REST, the project's endpoints with the SQLite
   tracker store in a temporary folder): seconds until the REST webhook answers
   its first message, and the server's RSS then (from /proc).

The result goes to stdout and, with ``--report``, replaces the section between
``<!-- train-cost -->`` markers in that file. The trained archive is left in
``--out`` as ``kestrel.tar.gz``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report import write_section  # noqa: E402 - after the path fix

RASA = str(Path(sys.executable).parent / "rasa")
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) .*(Starting to train|Finished training) "
                  r"component '(\w+)'")
MARK = "<!-- train-cost -->"


def timed(cmd: list, env: dict, log: Path) -> dict:
    """Runs ``cmd``; returns {"wall_s", "peak_rss_mib", "returncode"} (os.wait4's ru_maxrss)."""
    with open(log, "w") as out:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024,
            "returncode": os.waitstatus_to_exitcode(status)}


def component_times(log_text: str) -> "OrderedDict[str, float]":
    """Seconds per trained component, in training order, summed over repeated names."""
    started, times = {}, OrderedDict()
    for line in log_text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
        if m.group(2).startswith("Starting"):
            started[m.group(3)] = stamp
        elif m.group(3) in started:
            seconds = (stamp - started.pop(m.group(3))).total_seconds()
            times[m.group(3)] = times.get(m.group(3), 0.0) + seconds
    return times


def cold_start(archive: Path, env: dict, tmp: Path) -> dict:
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp / "run.log", "w")
    start = time.monotonic()
    proc = subprocess.Popen([RASA, "run", "-m", str(archive), "-p", str(port), "--endpoints",
                             "endpoints.yml", "--credentials", "credentials.yml"], cwd=ROOT,
                            env={**env, "TRACKER_STORE_URL": f"sqlite:///{tmp / 't.db'}"},
                            stdout=log, stderr=subprocess.STDOUT)
    body = json.dumps({"sender": "bench", "message": "hello there"}).encode()
    try:
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/webhooks/rest/webhook", data=body,
                    headers={"Content-Type": "application/json"})
                urllib.request.urlopen(request, timeout=30).read()
                break
            except OSError as e:
                if proc.poll() is not None or time.monotonic() - start > 600:
                    raise RuntimeError(f"rasa run did not start; see {tmp / 'run.log'}") from e
                time.sleep(0.25)
        seconds = time.monotonic() - start
        rss_kib = next(int(line.split()[1]) for line in
                       Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    return {"first_reply_s": seconds, "rss_mib": rss_kib / 1024}


def report(result: dict) -> str:
    total = result["train"]["wall_s"]
    rows = "\n".join(f"| {name} | {sec:.0f} s | {100 * sec / total:.0f}% |"
                     for name, sec in sorted(result["components"].items(),
                                             key=lambda kv: -kv[1]) if sec >= 1)
    return f"""{MARK}
## Cost of the pipeline (issue 5, part 4)

Command: `python bench/train_cost.py --report docs/benchmarks.md` ({result["date"]},
{os.cpu_count()} cores). One run; the components' times come from Rasa's training log
(1 s resolution; components under 1 s left out).

| step | wall time | peak RSS |
|---|---|---|
| `rasa train`, empty cache | {total:.0f} s | {result["train"]["peak_rss_mib"]:.0f} MiB |
| `rasa train` again, nothing changed | {result["retrain"]["wall_s"]:.1f} s | {result["retrain"]["peak_rss_mib"]:.0f} MiB |
| `rasa run` cold start to the first REST reply | {result["cold_start"]["first_reply_s"]:.1f} s | {result["cold_start"]["rss_mib"]:.0f} MiB (RSS then) |

Model archive: {result["archive_mib"]:.1f} MiB.

| component (training) | time | share of `rasa train` |
|---|---|---|
{rows}

The unchanged retrain is Rasa's fingerprint check: it finds the archive with the same
fingerprint in `models/` and trains nothing; its time is Rasa starting, reading the
training data and fingerprinting the graph. Cold start covers importing Rasa
(TensorFlow, torch), loading the archive, and the first message's NLU and policies.
{MARK}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "models")
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="train-cost-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           "RASA_CACHE_DIRECTORY": str(tmp / "cache"), "SLACK_BOT_TOKEN": "",
           "SLACK_SIGNING_SECRET": "", "SLACK_CHANNEL": ""}
    train = [RASA, "train", "--fixed-model-name", "kestrel", "--out", str(args.out)]
    archive = args.out / "kestrel.tar.gz"
    archive.unlink(missing_ok=True)
    print("rasa train, empty cache ...", flush=True)
    first = timed(train, env, tmp / "train.log")
    if first["returncode"] != 0:
        sys.exit(f"rasa train failed; see {tmp / 'train.log'}")
    print("rasa train, nothing changed ...", flush=True)
    second = timed(train, env, tmp / "retrain.log")
    print("rasa run, cold start ...", flush=True)
    result = {
        "date": datetime.now().strftime("%Y-%m-%d"), "train": first, "retrain": second,
        "components": component_times((tmp / "train.log").read_text()),
        "archive_mib": archive.stat().st_size / 2**20,
        "cold_start": cold_start(archive, env, tmp),
    }
    print(json.dumps(result, indent=1))
    if args.report:
        write_section(args.report, MARK, report(result))
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
