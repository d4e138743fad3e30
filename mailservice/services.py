from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_CACHE_KEY = "celery:last-heartbeat"


def record_heartbeat() -> None:
    """Note that a worker just ran a task taken from the broker."""
    cache.set(HEARTBEAT_CACHE_KEY, timezone.now().isoformat(), timeout=None)
