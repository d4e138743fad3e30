"""Request limits in the shared cache: sliding windows, counted atomically on
Redis for every web process, and still working on the file cache of a local
run. Time is passed in (time.time is patched), never waited for."""

import threading
import uuid
from unittest import mock

import pytest

from mailservice import ratelimit
from mailservice.ratelimit import Limit, Rate, RateLimited

HOUR = 3600
# Ten seconds before a full hour of the epoch: a fixed window ended there.
BEFORE_THE_HOUR = 1_800_000_000 - 1_800_000_000 % HOUR + HOUR - 10


@pytest.fixture(params=["redis", "file"])
def shared_cache(request, settings, tmp_path):
    """The cache the limits live in: Redis (every deployment) or files (a local run)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "redis":
        location = request.getfixturevalue("redis_url")
        backend = "django.core.cache.backends.redis.RedisCache"
    else:
        location = str(tmp_path / "cache")
        backend = "django.core.cache.backends.filebased.FileBasedCache"
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": location, "KEY_PREFIX": prefix}}
    return request.param


def hits(count: int, rate: Rate, *, at: float, name: str = "test", identity: str = "client") -> list[int | None]:
    """What `count` hits at `at` get: None when let through, else the Retry-After."""
    answers = []
    with mock.patch("time.time", return_value=at):
        for _ in range(count):
            try:
                ratelimit.hit(name, identity, rate)
                answers.append(None)
            except RateLimited as refused:
                answers.append(refused.retry_after)
    return answers


def test_a_burst_across_the_end_of_an_hour_is_refused(shared_cache):
    rate = Rate(limit=5, period=HOUR)
    assert hits(5, rate, at=BEFORE_THE_HOUR) == [None] * 5

    assert hits(5, rate, at=BEFORE_THE_HOUR + 20) == [HOUR - 20] * 5


def test_each_hit_leaves_the_window_a_period_after_it_was_counted(shared_cache):
    rate = Rate(limit=3, period=100)
    start = 1_800_000_000.0
    for offset in (0, 10, 20):
        assert hits(1, rate, at=start + offset) == [None]

    assert hits(1, rate, at=start + 99.5) == [1]  # rounded up: never a Retry-After of 0
    assert hits(2, rate, at=start + 100) == [None, 10]  # the first left; the second leaves at 110
    assert hits(1, rate, at=start + 110) == [None]


def test_limits_taken_together_count_all_or_none(shared_cache):
    wide, narrow = Rate(limit=3, period=HOUR), Rate(limit=1, period=60)
    start = 1_800_000_000.0
    with mock.patch("time.time", return_value=start):
        ratelimit.take(Limit("wide", "x", wide), Limit("narrow", "x", narrow))
        for _ in range(5):  # refused by the narrow one: the wide one counts none of these
            with pytest.raises(RateLimited) as refused:
                ratelimit.take(Limit("wide", "x", wide), Limit("narrow", "x", narrow))
            assert refused.value.retry_after == 60
    assert hits(2, wide, at=start + 1, name="wide", identity="x") == [None, None]
    assert hits(1, wide, at=start + 2, name="wide", identity="x") == [HOUR - 2]


def test_forgetting_a_limit_lets_the_next_event_through(shared_cache):
    rate = Rate(limit=1, period=60)
    assert hits(2, rate, at=1_800_000_000) == [None, 60]
    ratelimit.reset("test", "client")
    assert hits(1, rate, at=1_800_000_001) == [None]


def test_a_limit_with_no_period_never_refuses(shared_cache):
    assert hits(3, Rate(limit=1, period=0), at=1_800_000_000) == [None] * 3


def test_only_the_limit_gets_through_however_many_ask_at_once_on_redis(redis_url, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        }
    }
    rate = Rate(limit=5, period=HOUR)
    start = threading.Barrier(24)
    passed = []

    def ask():
        start.wait()
        try:
            ratelimit.take(Limit("codes", "x", rate), Limit("cooldown", "x", Rate(limit=3, period=60)))
            passed.append(True)
        except RateLimited:
            pass

    threads = [threading.Thread(target=ask) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(passed) == 3


@pytest.mark.parametrize(
    ("address", "client"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("", ""),
        (None, ""),
    ],
)
def test_a_client_is_an_ipv4_address_or_an_ipv6_64(address, client):
    # One subscriber line is given a whole IPv6 /64: counting each of its addresses
    # as a client would give one visitor limits without end.
    assert ratelimit.client_identity(address) == client
