"""One send-rate limiter for every process on every machine.

SES enforces a maximum send rate per account, not per process: eight
workers each keeping to it would together exceed it eightfold. Every send
first takes a slot from one schedule kept in Redis (GCRA: slots are spaced
1/rate apart, so no one-second window ever holds more than the rate).

Bulk sends (the daily mail) may only book the very next slot; transactional
ones (verification codes) may book ahead, so a running daily send cannot
keep a visitor's code waiting for more than a slot or two.
"""

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

BULK = "bulk"
TRANSACTIONAL = "transactional"
KEY = "dailyq:ses:next-slot"

# KEYS[1]: time of the next free slot (Redis server clock, seconds).
# ARGV[1]: seconds between slots; ARGV[2]: how far ahead this caller may book.
# Returns {granted, seconds, slot}: granted -> wait `seconds`, then send (the
# slot's time on the Redis clock); refused -> try again after `seconds`.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local ahead = tonumber(ARGV[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
if slot - now > ahead then
  return {0, tostring(slot - now - ahead), tostring(slot)}
end
local following = slot + interval
redis.call('SET', KEYS[1], tostring(following), 'PX', math.ceil((following - now) * 1000) + 60000)
return {1, tostring(slot - now), tostring(slot)}
"""


class Pacer:
    def __init__(self):
        self._script = None
        self._local_lock = threading.Lock()
        self._local_slot = 0.0

    def _redis_script(self):
        if self._script is None:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL)
            self._script = client.register_script(_SCRIPT)
        return self._script

    def wait_for_slot(self, *, rate: float, priority: str = BULK, timeout: float = 300) -> float:
        """Block until this process may send one message; returns the slot's time."""
        interval = 1.0 / rate
        ahead = interval if priority == BULK else 60.0
        started = time.monotonic()
        while True:
            try:
                granted, seconds, slot = self._book(interval, ahead)
            except RedisError as exc:
                # Redis restarting: wait for it rather than fail the send.
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"no send slot within {timeout} s: {exc}") from exc
                logger.warning("send-rate limiter unavailable (%s); retrying", exc)
                self._script = None
                time.sleep(0.5)
                continue
            if granted:
                if seconds > 0:
                    time.sleep(seconds)
                return slot
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"no send slot within {timeout} s")
            time.sleep(min(max(seconds, 0.001), interval))

    def _book(self, interval: float, ahead: float) -> tuple[bool, float, float]:
        if not settings.REDIS_URL:
            # The embedded default (one machine, no Redis): pace this process only.
            with self._local_lock:
                now = time.time()
                slot = max(self._local_slot, now)
                if slot - now > ahead:
                    return False, slot - now - ahead, slot
                self._local_slot = slot + interval
                return True, slot - now, slot
        granted, seconds, slot = self._redis_script()(keys=[KEY], args=[f"{interval:.9f}", f"{ahead:.9f}"])
        return bool(int(granted)), float(seconds), float(slot)


pacer = Pacer()


def send_rate() -> float:
    """Messages per second all processes together may send."""
    if settings.SES_MAX_SEND_RATE:
        return settings.SES_MAX_SEND_RATE
    from mailer.ses import account_status

    return max(account_status().max_send_rate * settings.SES_RATE_FRACTION, 0.1)


def reset_schedule() -> None:
    """Forget booked slots (tests, or after changing the rate)."""
    pacer._local_slot = 0.0
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).delete(KEY)
    cache.delete("ses:account")
