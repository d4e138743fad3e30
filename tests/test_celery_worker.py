"""A real Celery worker process taking tasks from the Redis broker."""

import os
import subprocess
import time
import uuid

import pytest
from django.core.cache import cache

from bench.harness import start_worker
from mailservice.services import HEARTBEAT_CACHE_KEY
from mailservice.tasks import record_heartbeat as record_heartbeat_task

pytestmark = pytest.mark.slow


def wait_until(predicate, timeout=60, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def worker(redis_url, settings):
    """One worker process on its own queue, so nothing else takes its tasks."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CELERY_QUEUE": queue,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
    }
    cache.delete(HEARTBEAT_CACHE_KEY)
    process = start_worker(env, concurrency=1, loglevel="INFO", output=subprocess.PIPE, text=True)
    yield queue, process
    process.stop(timeout=30)


def test_worker_announces_itself_and_runs_tasks_sent_from_another_process(worker):
    queue, process = worker
    # On start the worker sends one heartbeat through the broker.
    assert wait_until(lambda: cache.get(HEARTBEAT_CACHE_KEY) is not None), "worker never ran its first heartbeat"
    first = cache.get(HEARTBEAT_CACHE_KEY)

    record_heartbeat_task.apply_async(queue=queue)
    assert wait_until(lambda: cache.get(HEARTBEAT_CACHE_KEY) != first), "task sent from the test never ran"
    assert process.poll() is None
