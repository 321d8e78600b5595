"""components/channels/dedupe.py: an event id is claimed once, in memory or in a real Redis."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from components.channels.dedupe import (KEY_PREFIX, MemoryEventIds, RedisEventIds,
                                        event_ids)
from tests.e2e_fixtures import start_redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def claims(store, ids):
    async def run():
        return [await store.claim(i) for i in ids]
    return asyncio.run(run())


def test_memory_claims_each_id_once_until_it_expires():
    now = [0.0]
    store = MemoryEventIds(ttl_s=60, clock=lambda: now[0])
    assert claims(store, ["Ev1", "Ev2", "Ev1", "Ev2"]) == [True, True, False, False]
    now[0] = 59.0
    assert claims(store, ["Ev1"]) == [False]
    now[0] = 60.0  # a claim lasts ttl_s seconds
    assert claims(store, ["Ev1", "Ev1"]) == [True, False]


def test_memory_forgets_the_oldest_past_its_size():
    store = MemoryEventIds(ttl_s=3600, max_ids=3)
    assert claims(store, ["a", "b", "c", "d"]) == [True] * 4
    assert claims(store, ["a", "d"]) == [True, False]  # "a" was dropped to make room


@pytest.fixture(scope="module")
def redis_url():
    start_redis()
    return REDIS_URL


def test_two_replicas_racing_for_one_event_claim_it_once(redis_url):
    """Two stores (two replicas' clients) claim the same fresh ids at the same moment."""
    ids = [f"Ev{uuid.uuid4().hex}" for _ in range(20)]

    async def race():
        a, b = RedisEventIds(redis_url), RedisEventIds(redis_url)
        results = await asyncio.gather(*(s.claim(i) for i in ids for s in (a, b)))
        ttl = await a.client.ttl(KEY_PREFIX + ids[0])
        await a.client.delete(*(KEY_PREFIX + i for i in ids))
        await a.client.close()
        await b.client.close()
        return results, ttl

    results, ttl = asyncio.run(race())
    assert [results[2 * k] + results[2 * k + 1] for k in range(len(ids))] == [1] * len(ids)
    assert 3500 < ttl <= 3600  # the claim expires, so Redis does not grow forever


def test_an_unreachable_redis_lets_the_event_through():
    store = RedisEventIds("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert claims(store, ["Ev1", "Ev1"]) == [True, True]


@pytest.mark.parametrize("url, kind", [(None, MemoryEventIds), ("", MemoryEventIds),
                                       ("memory", MemoryEventIds),
                                       ("redis://:pw@127.0.0.1:6379/3", RedisEventIds)])
def test_the_url_chooses_the_store(url, kind):
    assert isinstance(event_ids(url), kind)


@pytest.mark.parametrize("url, ttl, message", [
    ("postgresql://user:secret@db/x", 3600, "has to be empty, 'memory' or a redis:// URL"),
    ("memory", 0, "dedupe_ttl_s has to be >= 1"),
])
def test_bad_settings_are_refused_without_showing_a_password(url, ttl, message):
    with pytest.raises(ValueError, match=message) as error:
        event_ids(url, ttl)
    assert "secret" not in str(error.value)
