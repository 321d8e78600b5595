"""Two Rasa servers sharing PostgreSQL, Redis and RabbitMQ: nothing lost, nothing doubled.

Both servers run the session's model with deploy/endpoints.production.yml (the
PostgreSQL tracker store, Rasa's RedisLockStore and pika event broker), on a new
PostgreSQL database, a Redis database of their own and a purged queue. 32
customers talk at once, 20 turns each (a form, order lookups, generated
turns), and every conversation's turns alternate between the two servers. Then
each conversation in the tracker store must be exactly what the customer saw:
every user message once, in order, followed by exactly the bot messages the
HTTP reply carried; and the event broker must have carried every stored event.
nginx (deploy/nginx.conf.template) in front of the two spreads one
conversation round-robin over both.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from tests.conftest import new_postgres_database
from bench.conversations import SCALE_OUT_SCRIPT, bot_texts, post_message
from shared_names import GENERATION_KEY, GenerationRecord
from tests.e2e_fixtures import ROOT, free_port, port_open, rasa_server, start_redis, start_service

pytestmark = pytest.mark.slow

CUSTOMERS, TURNS = 32, 20
REDIS_DB = 7  # a database of its own on the machine's Redis
QUEUE = "kestrel_events"
# 10 turns, said twice: greeting, order-status form, generated turns, cancel form
SCRIPT = SCALE_OUT_SCRIPT


@pytest.fixture(scope="module")
def redis_db():
    import redis

    start_redis()
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()


def queued_events(purge: bool = False) -> int:
    """Messages waiting in the broker's queue (Rasa declares it durable, via aio-pika)."""
    import aio_pika

    async def count() -> int:
        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(QUEUE, durable=True)
            if purge:
                await queue.purge()
                return 0
            return queue.declaration_result.message_count

    return asyncio.run(count())


@pytest.fixture(scope="module")
def rabbitmq():
    start_service(["rabbitmq-server", "-detached"], 5672, "RabbitMQ", seconds=120)
    queued_events(purge=True)
    yield
    queued_events(purge=True)


@pytest.fixture(scope="module")
def pg_database(postgres):
    with new_postgres_database(postgres) as url:
        yield url


@pytest.fixture(scope="module")
def replicas(trained_model, action_server, pg_database, redis_db, rabbitmq, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale-out")
    env = {"TRACKER_STORE_URL": pg_database, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379",
           "REDIS_DB": str(REDIS_DB), "REDIS_PASSWORD": "", "RABBITMQ_HOST": "127.0.0.1",
           "RABBITMQ_USER": "guest", "RABBITMQ_PASSWORD": "guest",
           "ACTION_SERVER_URL": action_server["url"]}
    production = ROOT / "deploy" / "endpoints.production.yml"
    with rasa_server(trained_model, action_server["url"], tmp, env=env, endpoints=production,
                     name="rasa-a") as a, \
         rasa_server(trained_model, action_server["url"], tmp, env=env, endpoints=production,
                     name="rasa-b") as b:
        yield [a, b]


def stored(url: str, sender: str) -> list:
    with sa.create_engine(url).connect() as conn:
        rows = conn.execute(sa.text("select type_name, data from events where sender_id = :s "
                                    "order by id"), {"s": sender}).fetchall()
    return [(t, json.loads(d)) for t, d in rows]


def turns_in_store(events: list) -> list:
    """[(user text, [bot texts that followed])] from stored events."""
    turns = []
    for kind, data in events:
        if kind == "user":
            turns.append((data.get("text"), []))
        elif kind == "bot" and turns:
            turns[-1][1].append(data.get("text"))
    return turns


async def converse(session, servers, sender, offset, statuses) -> list:
    """One customer's 20 turns, alternating servers; returns [(text, [bot texts])]."""
    seen = []
    for turn in range(TURNS):
        text = SCRIPT[turn % len(SCRIPT)]
        server = servers[(turn + offset) % len(servers)]
        reply = await post_message(session, server["url"], sender, text)
        statuses.append(reply.status)
        seen.append((text, bot_texts(reply.body) if reply.status == 200 else []))
    return seen


def test_two_servers_keep_every_conversation_exact(replicas, pg_database, rabbitmq):
    run = uuid.uuid4().hex[:6]
    senders = [f"scale-{run}-{i:02d}" for i in range(CUSTOMERS)]
    statuses: list = []

    async def everyone():
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await asyncio.gather(*(converse(session, replicas, s, i, statuses)
                                          for i, s in enumerate(senders)))

    started = time.monotonic()
    seen = asyncio.run(everyone())
    elapsed = time.monotonic() - started

    lost = duplicated = events = answered = open_turns = forms = 0
    for sender, customer_saw in zip(senders, seen):
        stored_events = stored(pg_database, sender)
        events += len(stored_events)
        in_store = turns_in_store(stored_events)
        users = [t for t, _ in in_store]
        lost += sum(1 for t, _ in customer_saw if users.count(t) < 1)
        duplicated += max(0, len(in_store) - len(customer_saw))
        assert in_store == customer_saw, f"{sender}: the store differs from what was said"
        gpt = [d["metadata"]["generation"] for kind, d in stored_events if kind == "bot"
               and (d.get("metadata") or {}).get("utter_action") == "utter_gpt_reply"]
        open_turns += len(gpt)
        answered += sum(1 for g in gpt if GenerationRecord.from_metadata(
            {GENERATION_KEY: g}).answered)  # generated, or from the help center
        forms += sum(1 for kind, d in stored_events if kind == "active_loop" and d.get("name"))
    logs = "".join(r["log"].read_text() for r in replicas)
    lock_errors = logs.count("LockError") + logs.count("Could not acquire lock")
    fivexx = sum(s >= 500 for s in statuses)
    print(f"\nscale-out: {CUSTOMERS} conversations x {TURNS} turns over 2 servers in "
          f"{elapsed:.0f} s: {events} events, {open_turns} open-ended turns ({answered} "
          f"answered, generated or from the help center; the rest the canned text), {forms} form "
          f"activations, lost {lost}, duplicated {duplicated}, 5xx {fivexx}, "
          f"LockError {lock_errors}")
    assert statuses.count(200) == CUSTOMERS * TURNS and fivexx == 0
    assert lost == duplicated == lock_errors == 0
    # The mix really ran: both forms in every conversation, open-ended turns answered.
    assert forms >= 2 * CUSTOMERS and open_turns >= 2 * CUSTOMERS and answered > 0

    # The pika broker published every stored event to RabbitMQ.
    deadline = time.monotonic() + 60
    while True:
        queued = queued_events()
        if queued >= events or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert queued == events, f"{queued} events in RabbitMQ, {events} in the store"


def test_nginx_spreads_one_conversation_over_both_servers(replicas, pg_database, tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is missing: run scripts/install_test_tools.sh (Debian's nginx-light).")
    port = free_port()
    upstreams = " ".join(f"server 127.0.0.1:{r['port']};" for r in replicas)
    conf = (ROOT / "deploy" / "nginx.conf.template").read_text() \
        .replace("@VAR@", str(tmp_path)).replace("@PORT@", str(port)) \
        .replace("@UPSTREAMS@", upstreams)
    (tmp_path / "nginx.conf").write_text(conf)
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not port_open(port):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.2)
        sender = f"nginx-{uuid.uuid4().hex[:6]}"

        async def talk():
            served, seen = [], []
            async with aiohttp.ClientSession() as session:
                for text in SCRIPT[:6]:
                    async with session.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                                            json={"sender": sender, "message": text}) as resp:
                        assert resp.status == 200
                        served.append(resp.headers["X-Served-By"])
                        seen.append((text, [m.get("text") for m in await resp.json()]))
            return served, seen

        served, seen = asyncio.run(talk())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert set(served) == {f"127.0.0.1:{r['port']}" for r in replicas}
    assert turns_in_store(stored(pg_database, sender)) == seen


# --- Faults. Each leaves the services running again, whatever happens.


def _post_turns(servers, sender: str, texts: list, statuses: list) -> list:
    """Sends ``texts`` in order, alternating servers; returns [(text, status, [bot texts])]."""
    async def talk():
        out = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            for i, text in enumerate(texts):
                out.append(await _post(session, servers[i % len(servers)], sender, text,
                                       statuses))
        return out
    return asyncio.run(talk())


async def _post(session, server, sender, text, statuses):
    reply = await post_message(session, server["url"], sender, text)
    statuses.append(reply.status)
    return text, reply.status, bot_texts(reply.body) if reply.status == 200 else reply.body


def test_redis_down_refuses_with_503_and_corrupts_nothing(replicas, pg_database, redis_db):
    sender = f"redis-{uuid.uuid4().hex[:6]}"
    statuses: list = []
    before = _post_turns(replicas, sender, SCRIPT[:3], statuses)
    assert [s for _, s, _ in before] == [200, 200, 200]
    stored_before = stored(pg_database, sender)
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True)
    try:
        assert not port_open(6379)
        during = _post_turns(replicas, sender, SCRIPT[3:5], statuses)
    finally:
        start_redis()
    # Documented behaviour (README, "Scale-out"): without the lock store no message is
    # handled; the client gets 503 with an error, and the conversation is untouched.
    assert [s for _, s, _ in during] == [503, 503], during
    assert all("error" in body for _, _, body in during)
    assert stored(pg_database, sender) == stored_before
    after = _post_turns(replicas, sender, SCRIPT[3:5], statuses)
    assert [s for _, s, _ in after] == [200, 200]
    assert turns_in_store(stored(pg_database, sender)) == [
        (t, bots) for t, _, bots in before + after]
    assert all(r["process"].poll() is None for r in replicas)
    print(f"\nRedis down: {len(statuses)} requests, {statuses.count(503)} answered 503 while "
          f"it was down, 5xx other than 503: {sum(s >= 500 and s != 503 for s in statuses)}, "
          f"lost 0")


def test_postgres_restart_mid_load_loses_no_acknowledged_message(replicas, pg_database):
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    customers, turns = 8, 12
    senders = [f"pgrestart-{uuid.uuid4().hex[:6]}-{i}" for i in range(customers)]
    statuses: list = []

    async def customer(session, i):
        out = []
        for turn in range(turns):
            text = SCRIPT[turn % len(SCRIPT)]
            out.append(await _post(session, replicas[(turn + i) % 2], senders[i], text,
                                   statuses))
        return out

    async def restart():
        await asyncio.sleep(4)  # s: well inside the load
        await asyncio.to_thread(subprocess.run, ["pg_ctlcluster", "--skip-systemctl-redirect",
                                                 version, "main", "restart"],
                                capture_output=True)

    async def run():
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            results = await asyncio.gather(*(customer(session, i) for i in range(customers)),
                                           restart())
        return results[:-1]

    seen = asyncio.run(run())
    lost = 0
    for sender, turns_seen in zip(senders, seen):
        acked = [(t, bots) for t, status, bots in turns_seen if status == 200]
        refused = {t for t, status, _ in turns_seen if status != 200}
        in_store = turns_in_store(stored(pg_database, sender))
        kept = [turn for turn in in_store if turn in acked]
        lost += len(acked) - len(kept)
        assert kept == acked, f"{sender}: an acknowledged turn is missing or out of order"
        # Anything else stored belongs to a refused request (stored, then the reply failed).
        assert all(t in refused for t, bots in in_store if (t, bots) not in acked)
    assert all(r["process"].poll() is None for r in replicas), "a server died"
    assert set(statuses) <= {200, 503}, statuses
    print(f"\nPostgreSQL restart mid-load: {len(statuses)} requests, {statuses.count(200)} "
          f"acknowledged, {statuses.count(503)} refused with 503 during the restart, "
          f"lost {lost}, servers alive {len(replicas)} of {len(replicas)}")
