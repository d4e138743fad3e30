"""Shared fixtures: the real services tests depend on.

PostgreSQL and Redis come from DATABASE_URL and REDIS_URL. Without them a
test that needs one is skipped, except under CI=true, where it fails: CI
must never go green by skipping.
"""

import json
import os
import socket
import urllib.request
from email.utils import parseaddr
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def service_missing(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    """A fresh cache namespace per test: rate limits and cooldowns never leak
    from one test into the next, and nothing else in the cache is flushed."""
    import uuid

    caches = {name: dict(config) for name, config in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches


_DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}


@pytest.fixture(autouse=True)
def seeded_tracks(request):
    """The tracks the data migration seeds (backend, frontend) in every test that uses the database.

    A transactional test ends by emptying every table, migrated rows included.
    """
    if request.node.get_closest_marker("django_db") is None and not _DB_FIXTURES & set(request.fixturenames):
        return
    request.getfixturevalue("_django_db_helper")
    from subscriptions.models import Track

    for slug, name_ko, name_en, position in [
        ("backend", "백엔드", "Backend", 1),
        ("frontend", "프론트엔드", "Frontend", 2),
    ]:
        Track.objects.get_or_create(slug=slug, defaults={"name_ko": name_ko, "name_en": name_en, "position": position})


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in this process, at once, raising their errors.

    For tests of services and views; the worker tests use real processes.
    """
    from mailservice.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        service_missing("REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at REDIS_URL does not answer: {exc}")
    return url


@pytest.fixture
def postgres(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        service_missing("DATABASE_URL does not point at PostgreSQL")


@pytest.fixture(scope="session")
def ses_server():
    """moto's server in this process, on a free port, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class SesEmulator:
    def __init__(self, url: str):
        self.url = url

    def messages(self):
        from mailer.local_ses import read_outbox

        return read_outbox(endpoint_url=self.url)

    def verify(self, *identities: str):
        from mailer.local_ses import verify_identities

        verify_identities(endpoint_url=self.url, identities=list(identities))


@pytest.fixture
def ses(ses_server, settings) -> SesEmulator:
    """Mail goes through django-ses to a clean emulator with the senders verified."""
    reset = urllib.request.Request(f"{ses_server}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(reset, timeout=5) as response:
        json.load(response)
    settings.EMAIL_BACKEND = "django_ses.SESBackend"
    settings.SES_EMULATOR = True
    settings.AWS_SES_REGION_NAME = "us-east-1"
    settings.AWS_SES_REGION_ENDPOINT_URL = ses_server
    settings.AWS_ACCESS_KEY_ID = "local"
    settings.AWS_SECRET_ACCESS_KEY = "local"
    emulator = SesEmulator(ses_server)
    emulator.verify(parseaddr(settings.DEFAULT_FROM_EMAIL)[1], parseaddr(settings.SERVER_EMAIL)[1])
    return emulator
