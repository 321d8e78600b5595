"""The console's page times over 10,000 stored conversations.

    python bench/console_scale.py --conversations 10000 [--report docs/benchmarks.md]

1. Builds the SQLite tracker store of bench/feedback_scale.py (Rasa's schema and
   event JSON; each conversation an order-status form and one or two generated
   replies, 40% rated).
2. Creates the console (``components.console.app.create_app``) with one lead and
   logs in through the login form.
3. Times each page through Flask's test client: the server's time to answer, no
   network and no browser rendering. The first list view builds the index (every
   conversation read once); later views refresh it incrementally. Each page is
   requested ``--repeats`` times; the table gives the median and the range.
4. Adds one conversation to the store and times the next list view (the
   incremental refresh), and measures the index's memory (the resident set
   before and after the first build, psutil).

Prints a Markdown section and draws docs/images/console_scale.png; with
``--report``, replaces the section between ``<!-- console-scale -->`` markers.
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.feedback_scale import build_store, conversation_events  # noqa: E402
from bench.report import machine, publish  # noqa: E402

MARK = "<!-- console-scale -->"
PLOT = ROOT / "docs" / "images" / "console_scale.png"
PASSWORD = "bench-password-1"


def rss_mib() -> float:
    """This process's resident set now, MiB (psutil), after a garbage collection."""
    import gc

    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def timed(client, url: str, repeats: int) -> List[float]:
    """ms per request of ``url``, ``repeats`` times.

    Raises:
        RuntimeError: if a request does not answer 200.
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    return times


def pages(week_start: str, week_end: str, middle: int) -> Dict[str, str]:
    """Page name -> URL, the views a support team opens most."""
    return {
        "conversation list, page 1": "/conversations",
        "list, has generated turns": "/conversations?generated=1",
        "list, rated not helpful": "/conversations?rating=not_helpful",
        "list, one week": f"/conversations?since={week_start}&until={week_end}",
        "list, text search": "/conversations?q=gift+cards",
        "list, last page": "/conversations?page=200",
        "one conversation": f"/conversations/bench-{middle}",
        "review queue": "/review",
    }


def add_conversation(url: str, n: int) -> None:
    """Appends one more conversation (``bench-<n>``) to the store."""
    import json

    import sqlalchemy as sa

    engine = sa.create_engine(url)
    table = sa.Table("events", sa.MetaData(), autoload_with=engine)
    rows = [{"sender_id": f"bench-{n}", "type_name": e.type_name, "timestamp": e.timestamp,
             "data": json.dumps(e.as_dict())}
            for e in conversation_events(n, time.time(), random.Random(n))]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    engine.dispose()


def measure(conversations: int, repeats: int) -> Dict:
    """Builds the store and times the pages; returns the figures for ``report``."""
    from components.console.app import create_app
    from components.console.config import ConsoleConfig
    from components.console.users import hash_password

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        events = build_store(tmp / "tracker.db", conversations)
        build_s = time.perf_counter() - t0
        url = f"sqlite:///{tmp / 'tracker.db'}"
        config = ConsoleConfig(store_url=url, db_url=f"sqlite:///{tmp / 'console.db'}",
                               users_env=f"bench:lead:{hash_password(PASSWORD)}",
                               users_file=tmp / "none.json", root=tmp)
        app = create_app(config)
        client = app.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          client.get("/login").get_data(as_text=True)).group(1)
        client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": token})
        rss_before = rss_mib()
        first = timed(client, "/conversations", 1)[0]
        rss_after = rss_mib()
        first_day = datetime.fromtimestamp(time.time() - 20 * 86400, timezone.utc).date()
        urls = pages(str(first_day), str(first_day + timedelta(days=6)), conversations // 2)
        times = {name: timed(client, page, repeats) for name, page in urls.items()}
        total = int(re.search(r'id="total">(\d+)',
                              client.get(urls["list, text search"]).get_data(as_text=True))[1])
        add_conversation(url, conversations)
        times["list after one new conversation"] = timed(client, "/conversations", 1)
        analytics_first = timed(client, "/analytics", 1)[0]
        times["analytics (cached)"] = timed(client, "/analytics", repeats)
    return {"conversations": conversations, "events": events, "build_s": build_s,
            "first_ms": first, "index_mib": rss_after - rss_before, "times": times,
            "analytics_first_ms": analytics_first, "search_hits": total, "repeats": repeats}


def plot(figures: Dict, out: Path) -> None:
    """Bar chart of the median ms per page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(figures["times"])
    medians = [statistics.median(figures["times"][n]) for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    ax.barh(names[::-1], medians[::-1], color="#457b9d")
    ax.set_xlabel("ms per page (median), server side")
    ax.set_title(f"Console pages over {figures['conversations']:,} conversations "
                 f"(first list view: {figures['first_ms'] / 1000:.1f} s)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def report(figures: Dict, command: str, date: str, machine_line: str) -> str:
    """The docs/benchmarks.md section (fenced by MARK)."""
    rows = "\n".join(
        f"| {name} | {statistics.median(t):.0f} | {min(t):.0f}-{max(t):.0f} |"
        for name, t in figures["times"].items())
    return f"""{MARK}
## The console over {figures["conversations"]:,} conversations (issue 16)

Command: `{command}` ({date}; {machine_line}). The store: SQLite in Rasa's schema,
{figures["conversations"]:,} conversations, {figures["events"]:,} events (built in
{figures["build_s"]:.0f} s). Times are the server's, through Flask's test client (no
network, no browser), each page {figures["repeats"]} times.

The first list view reads every conversation once into the index:
**{figures["first_ms"] / 1000:.1f} s**; the index then holds about
{figures["index_mib"]:.0f} MiB (resident set after minus before). Later views read only conversations with new events. The first analytics page
reads the whole store ({figures["analytics_first_ms"] / 1000:.1f} s); it is cached until
the store changes. The text search found {figures["search_hits"]:,} conversations.

| page | median ms | range |
|---|---|---|
{rows}

![console page times](images/console_scale.png)
{MARK}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--report", type=Path, help="markdown file whose section to replace")
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args()
    figures = measure(args.conversations, args.repeats)
    plot(figures, args.plot)
    section = report(figures, " ".join(["python bench/console_scale.py"] + sys.argv[1:]),
                     datetime.now().strftime("%Y-%m-%d"), machine())
    publish(section, MARK, args.report)


if __name__ == "__main__":
    main()
