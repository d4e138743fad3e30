"""Request limits held in the cache (Redis in any real deployment), so every
web process on every machine counts against the same numbers."""

import hashlib
import math
import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = max(1, retry_after)


def _key(name: str, identity: str) -> str:
    # Addresses and IPs never appear in cache keys in clear.
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"rl:{name}:{digest}"


def hit(name: str, identity: str, rate: Rate) -> None:
    """Count one event for `identity`; raise RateLimited past `rate.limit` per window.

    Fixed windows of `rate.period` seconds: cheap (one INCR) and shared.
    """
    now = time.time()
    window = int(now // rate.period)
    key = f"{_key(name, identity)}:{window}"
    cache.add(key, 0, timeout=rate.period + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=rate.period + 5)
        count = 1
    if count > rate.limit:
        raise RateLimited(math.ceil((window + 1) * rate.period - now))


def cooldown(name: str, identity: str, seconds: int) -> None:
    """Allow one event per `seconds` for `identity`; raise RateLimited otherwise."""
    now = time.time()
    key = _key(name, identity)
    if not cache.add(key, now + seconds, timeout=seconds):
        until = cache.get(key) or now + seconds
        raise RateLimited(math.ceil(until - now))


def reset(name: str, identity: str) -> None:
    """Forget a cooldown (e.g. after a successful confirmation)."""
    cache.delete(_key(name, identity))
