"""One send-rate limiter for every process on every machine.

SES enforces a maximum send rate per account, not per process: eight
workers each keeping to it would together exceed it eightfold. Every send
first takes a slot from one schedule kept in Redis (GCRA: slots are spaced
1/rate apart, so no one-second window ever holds more than the rate).

Bulk sends (the daily mail) may only book the next slots, no further ahead
than the block they ask for or BINDING_SPAN; transactional ones
(verification codes) may book far ahead, so a running daily send keeps a
visitor's code waiting for no more than what the bulk senders booked: a
block, granted at most BINDING_SPAN (or one slot) ahead of now.

Slots are spaced for MARGIN (97%) of the rate: a sender wakes for its slot
a few milliseconds late now and then, and the next one on time; the margin
keeps even those wake-ups (and so SES's arrivals) within the rate in every
one-second window.

A process's bulk senders book several slots at once (at most BLOCK_SPAN of
the schedule; while the rate binds, one for each sender waiting, within
BINDING_SPAN): one thread books while the others wait for its call, so one
Redis call serves several sends, and they share the slots in order. A
binding rate with one slot per call made a Redis call per mail and cost a
capped send a fifth of its speed. A booking may be
granted up to BINDING_SPAN ahead of now: a schedule left behind now is time
no one sends in, and a booker told to come back when its slot was next had
to wake within that slot's interval, which a thread waiting a GIL switch or
two missed. A slot left unused for STALE seconds is dropped, never sent on
late: late sends would bunch with the next slots' and crowd a second.
"""

import logging
import threading
import time
from collections import deque

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

BULK = "bulk"
TRANSACTIONAL = "transactional"
KEY = "dailyq:ses:next-slot"
MARGIN = 0.97  # slots are spaced for this fraction of the rate (module docstring)
BLOCK_SPAN = 0.005  # seconds of the schedule one bulk booking may take
BINDING_SPAN = 0.02  # the same while the rate binds (slots only for senders already waiting)
BLOCK_MAX = 32  # slots in one booking (reached when the rate is far above what is sent)
STALE = 0.025  # seconds after which an unused booked slot is dropped
BINDING_LEAD = 0.001  # a bulk block due further ahead than this (or half an interval) means the rate binds

# KEYS[1]: time of the next free slot (Redis server clock, seconds).
# ARGV[1]: seconds between slots; ARGV[2]: how far ahead this caller may
# book; ARGV[3]: how many consecutive slots it books.
# Returns {granted, seconds, slot}: granted -> the first slot is `seconds`
# from now (`slot` on the Redis clock), the others follow 1/rate apart;
# refused -> try again after `seconds`. Times travel as "%.6f" strings
# (Lua's tostring keeps 14 digits: a tenth of a millisecond of an epoch time).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local ahead = tonumber(ARGV[2])
local count = tonumber(ARGV[3] or '1')
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
if slot - now > ahead then
  return {0, string.format('%.6f', slot - now - ahead), string.format('%.6f', slot)}
end
local following = slot + count * interval
redis.call('SET', KEYS[1], string.format('%.6f', following), 'PX', math.ceil((following - now) * 1000) + 60000)
return {1, string.format('%.6f', slot - now), string.format('%.6f', slot)}
"""


class Pacer:
    def __init__(self):
        self._script = None
        self._local_lock = threading.Lock()
        self._local_slot = 0.0
        # Bulk slots this process booked and has not used yet, in order: (due
        # on the monotonic clock, slot on the schedule's clock); their interval.
        self._bulk_lock = threading.Lock()
        self._bulk_slots: deque[tuple[float, float]] = deque()
        self._bulk_interval = 0.0
        self._bulk_binding = False
        self._waiting = 0  # bulk senders of this process waiting for a slot
        self._waiting_lock = threading.Lock()

    def wait_for_slot(self, *, rate: float, priority: str = BULK, timeout: float = 300) -> float:
        """Block until this process may send one message; returns the slot's time."""
        interval = 1.0 / (rate * MARGIN)
        if priority != BULK:
            [(due, slot)] = self._book_slots(interval, ahead=60.0, count=1, timeout=timeout)
        else:
            due, slot = self._take_bulk_slot(interval, timeout)
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return slot

    def _take_bulk_slot(self, interval: float, timeout: float) -> tuple[float, float]:
        """The next fresh slot this process booked, booking a block when none is left."""
        slots = self._bulk_slots
        if self._bulk_interval != interval:
            with self._bulk_lock:
                if self._bulk_interval != interval:  # the rate changed: those slots are for the old one
                    slots.clear()
                    self._bulk_interval = interval
        with self._waiting_lock:
            self._waiting += 1
        try:
            return self._next_bulk_slot(slots, interval, timeout)
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def _next_bulk_slot(self, slots: deque, interval: float, timeout: float) -> tuple[float, float]:
        while True:
            # Taking a slot needs no lock (deque.popleft is atomic); booking
            # does: one thread books while the others wait for what it booked.
            try:
                due, slot = slots.popleft()
            except IndexError:
                count = max(1, min(BLOCK_MAX, int(BLOCK_SPAN / interval)))
                # One thread books while the others wait for what it books:
                # threads that each asked Redis for a block of their own made
                # about one call per mail, half of them refused.
                with self._bulk_lock:
                    if not slots:
                        if self._bulk_binding:
                            # Only what they wait for: a slot left unused is
                            # lost to the other processes.
                            span = max(1, int(BINDING_SPAN / interval))
                            count = max(1, min(BLOCK_MAX, span, self._waiting))
                        slots.extend(self._book_bulk(interval, count, timeout))
                continue
            if due >= time.monotonic() - STALE:
                return due, slot

    def _book_bulk(self, interval: float, count: int, timeout: float) -> list[tuple[float, float]]:
        # May be granted up to one block (and BINDING_SPAN) ahead: when the rate
        # does not bind, the other processes' blocks are just ahead of now, and a
        # booker refused until they pass made one Redis call in two a refusal;
        # when it binds, a booker sent to sleep until its slot was next woke
        # late now and then, and the schedule had fallen behind now, its
        # capacity lost.
        booked = self._book_slots(interval, ahead=max(count * interval, BINDING_SPAN), count=count, timeout=timeout)
        # Binding: the block had to be waited for (refused, or granted ahead of
        # now). At high rates another process's block alone is ahead by a
        # fraction of a millisecond: that is no sign of the rate binding.
        self._bulk_binding = booked[0][0] > time.monotonic() + max(interval / 2, BINDING_LEAD)
        return booked

    def forget_booked(self) -> None:
        with self._bulk_lock:
            self._bulk_slots.clear()

    def _book_slots(self, interval: float, *, ahead: float, count: int, timeout: float) -> list[tuple[float, float]]:
        started = time.monotonic()
        while True:
            try:
                granted, seconds, slot = self._book(interval, ahead, count)
            except RedisError as exc:
                # Redis restarting: wait for it rather than fail the send.
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"no send slot within {timeout} s: {exc}") from exc
                logger.warning("send-rate limiter unavailable (%s); retrying", exc)
                self._script = None
                time.sleep(0.5)
                continue
            if granted:
                first = time.monotonic() + seconds
                return [(first + n * interval, slot + n * interval) for n in range(count)]
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"no send slot within {timeout} s")
            # Nothing frees a slot sooner than `seconds` (the schedule only
            # moves forward); another process may take it first, then we ask
            # again. Capped so that a reset schedule is noticed.
            time.sleep(min(max(seconds, 0.0005), 1.0))

    def _redis_script(self):
        if self._script is None:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL)
            self._script = client.register_script(_SCRIPT)
        return self._script

    def _book(self, interval: float, ahead: float, count: int) -> tuple[bool, float, float]:
        if not settings.REDIS_URL:
            # The embedded default (one machine, no Redis): pace this process only.
            with self._local_lock:
                now = time.time()
                slot = max(self._local_slot, now)
                if slot - now > ahead:
                    return False, slot - now - ahead, slot
                self._local_slot = slot + count * interval
                return True, slot - now, slot
        granted, seconds, slot = self._redis_script()(keys=[KEY], args=[f"{interval:.9f}", f"{ahead:.9f}", str(count)])
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
    pacer.forget_booked()
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).delete(KEY)
    cache.delete("ses:account")
