"""Request limits held in the cache (Redis in any real deployment), so every
web process on every machine counts against the same numbers.

Sliding windows: a limit of N per period lets at most N events through in
any stretch of that period (fixed windows let 2N through across a window's
end). Each limited identity keeps the times of its events still in the
window (a Redis sorted set; the limits are small). A refused event is not
counted, so hammering a limit does not push its end away, and several limits
are taken together: all have room and all count the event, or none does.

On Redis one script does this atomically. Other caches (the file cache of a
local run) do it under a lock of this process, which is enough for one web
process. Times come from the web process's clock: machines kept in step by
NTP agree far more closely than the windows need.
"""

import hashlib
import ipaddress
import math
import threading
import time
import uuid
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds; a period of 0 or less limits nothing


@dataclass(frozen=True)
class Limit:
    name: str
    identity: str
    rate: Rate


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = max(1, retry_after)


def hit(name: str, identity: str, rate: Rate) -> None:
    """Count one event for `identity`; raise RateLimited past `rate.limit` per `rate.period`."""
    take(Limit(name, identity, rate))


def take(*limits: Limit) -> None:
    """Count one event against every limit, or raise RateLimited and count it against none.

    Retry-After is when every one of them will have room again.
    """
    limits = tuple(limit for limit in limits if limit.rate.period > 0)
    if not limits:
        return
    now = time.time()
    cache = caches["default"]
    take_here = _take_on_redis if isinstance(cache, RedisCache) else _take_in_cache
    wait = take_here(cache, limits, now)
    if wait > 0:
        raise RateLimited(math.ceil(wait))


def reset(name: str, identity: str) -> None:
    """Forget the events counted for `identity` (e.g. when no code went out after all)."""
    caches["default"].delete(_key(name, identity))


def client_identity(client_ip: str | None) -> str:
    """Who a client is, for limits: its IPv4 address, or its IPv6 /64.

    A subscriber line is given a whole IPv6 /64; counting each of its
    addresses as a client would give one visitor limits without end.
    """
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return client_ip or ""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _key(name: str, identity: str) -> str:
    # Addresses and IPs never appear in cache keys in clear.
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"rl:{name}:{digest}"


# KEYS: one sorted set of event times per limit. ARGV[1]: now (seconds);
# ARGV[2]: this event's member; then each limit's count and period.
# Returns how many seconds until all have room ("0": counted in all).
_SCRIPT = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local period = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local until_room = period
    if limit > 0 then
      local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
      until_room = tonumber(entry[2]) + period - now
    end
    if until_room > wait then wait = until_room end
  end
end
if wait > 0 then return string.format('%.6f', wait) end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2 + 2 * i]) * 1000))
end
return '0'
"""
_script = None


def _take_on_redis(cache: RedisCache, limits: tuple[Limit, ...], now: float) -> float:
    global _script
    client = cache._cache.get_client(write=True)  # on the cache's own connection pool
    if _script is None:
        _script = client.register_script(_SCRIPT)  # run on whichever client it is given
    script = _script
    keys = [cache.make_and_validate_key(_key(limit.name, limit.identity)) for limit in limits]
    args = [f"{now:.6f}", uuid.uuid4().hex]
    for limit in limits:
        args += [limit.rate.limit, limit.rate.period]
    return float(script(keys=keys, args=args, client=client))


_local_lock = threading.Lock()


def _take_in_cache(cache, limits: tuple[Limit, ...], now: float) -> float:
    with _local_lock:
        wait, windows = 0.0, []
        for limit in limits:
            key, (count, period) = _key(limit.name, limit.identity), (limit.rate.limit, limit.rate.period)
            times = sorted(t for t in cache.get(key, ()) if t > now - period)
            if len(times) >= count:
                wait = max(wait, times[len(times) - count] + period - now if count > 0 else period)
            windows.append((key, times, period))
        if wait > 0:
            return wait
        for key, times, period in windows:
            cache.set(key, [*times, now], timeout=period)
        return 0.0
