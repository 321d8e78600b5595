"""Each Slack event handled at most once, on one machine or across replicas.

Why: Slack retries an Events API delivery up to three times when the first one was
not acknowledged within 3 s, or failed, and it says why in ``X-Slack-Retry-Reason``
(https://api.slack.com/apis/connections/events-api#retries). Rasa's channel drops
only the reasons listed in ``errors_ignore_retry``; any other retry (for example
``http_error`` after a 500 from one replica) was handled again, so the customer got
two answers and the tracker held the message twice. Every delivery of one event
carries the same ``event_id``, whichever replica it reaches, so the first delivery
claims the id and every later one is acknowledged without being processed.

Where the claims live (credentials.yml ``dedupe_url``, from ``SLACK_DEDUPE_URL``):

- empty or ``memory``: in this process, for one `rasa run` (``MemoryEventIds``);
- ``redis://[:password@]host:port/db``: in Redis, shared by every replica of the
  scale-out topology (``RedisEventIds``: ``SET key 1 NX EX ttl``, atomic, so two
  replicas that receive the same event at once cannot both claim it).

A claim expires after ``ttl_s`` (default 1 h; Slack's last retry comes about 5 min
after the first delivery). If Redis cannot be reached, the event is processed (and
the failure logged): a customer's message is never dropped because the
de-duplication store is down.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Optional, Protocol

logger = logging.getLogger(__name__)

DEFAULT_TTL_S = 3600  # seconds a claimed event id is remembered
KEY_PREFIX = "kestrel:slack:event:"  # Redis keys: KEY_PREFIX + event_id
MAX_MEMORY_IDS = 100_000  # oldest claims are forgotten first past this many


class EventIds(Protocol):
    """Claims event ids; ``claim`` is True for the first delivery of an id only."""

    async def claim(self, event_id: str) -> bool:
        """True when ``event_id`` was not claimed in the last ``ttl_s`` seconds."""


class MemoryEventIds:
    """Claims kept in this process (one `rasa run`), oldest dropped first."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_ids: int = MAX_MEMORY_IDS,
                 clock=time.monotonic) -> None:
        self.ttl_s, self.max_ids, self.clock = ttl_s, max_ids, clock
        self._claimed: "OrderedDict[str, float]" = OrderedDict()  # id -> claimed at (s)

    async def claim(self, event_id: str) -> bool:
        now = self.clock()
        while self._claimed and (now - next(iter(self._claimed.values())) >= self.ttl_s
                                 or len(self._claimed) >= self.max_ids):
            self._claimed.popitem(last=False)
        if event_id in self._claimed:
            return False
        self._claimed[event_id] = now
        return True


class RedisEventIds:
    """Claims in Redis, shared by every replica (``SET NX EX``)."""

    def __init__(self, url: str, ttl_s: float = DEFAULT_TTL_S) -> None:
        from redis.asyncio import Redis  # noqa: PLC0415 - only the scale-out topology needs it

        self.url, self.ttl_s = url, ttl_s
        self.client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    async def claim(self, event_id: str) -> bool:
        from redis.exceptions import RedisError  # noqa: PLC0415

        try:
            return bool(await self.client.set(KEY_PREFIX + event_id, 1, nx=True,
                                              ex=int(self.ttl_s)))
        except (RedisError, OSError) as e:
            logger.error("Slack de-duplication store unreachable (%s); handled event %s "
                         "without the check.", type(e).__name__, event_id)
            return True


def event_ids(url: Optional[str], ttl_s: float = DEFAULT_TTL_S) -> EventIds:
    """The store ``url`` names (module docstring).

    Raises:
        ValueError: on a URL that is neither empty, ``memory`` nor ``redis://`` /
            ``rediss://``, or a ``ttl_s`` below 1.
    """
    if ttl_s < 1:
        raise ValueError(f"slack channel: dedupe_ttl_s has to be >= 1 second, got {ttl_s!r}.")
    url = (url or "").strip()
    if url in ("", "memory"):
        return MemoryEventIds(ttl_s)
    if url.startswith(("redis://", "rediss://")):
        return RedisEventIds(url, ttl_s)
    raise ValueError(f"slack channel: dedupe_url has to be empty, 'memory' or a redis:// URL, "
                     f"got {url.split('@')[-1]!r}; set SLACK_DEDUPE_URL accordingly.")
