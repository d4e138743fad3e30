import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client
from django.urls import reverse

from bench.fake_ses import FakeSES
from mailservice import selectors, services
from mailservice.celery import app as celery_app
from tests.conftest import free_port


@pytest.fixture
def broker_url():
    """Swap the Celery broker for one test, restoring it afterwards."""
    original = celery_app.conf.broker_url

    def swap(url):
        celery_app.conf.broker_url = url

    yield swap
    celery_app.conf.broker_url = original


class CountingSES(FakeSES):
    """The fake SES endpoint, counting the GetSendQuota calls it answers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.quota_calls = 0
        self.quota_latency = 0.0

    def _xml(self, request, status, body):
        if "<GetSendQuotaResponse" in body:
            time.sleep(self.quota_latency)
            with self.lock:
                self.quota_calls += 1
        return super()._xml(request, status, body)


@pytest.fixture
def counting_ses(settings):
    server = CountingSES(latency=0).start()
    settings.SES_EMULATOR = False
    settings.SES_SANDBOX = "false"  # GetSendQuota only, no GetAccount
    settings.AWS_SES_REGION_NAME = "us-east-1"
    settings.AWS_SES_REGION_ENDPOINT_URL = server.url
    settings.AWS_ACCESS_KEY_ID = settings.AWS_SECRET_ACCESS_KEY = "local"
    yield server
    server.stop()


def get_health(client):
    response = client.get(reverse("healthz"))
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response.status_code, response.json()


@pytest.mark.django_db
def test_healthz_is_200_when_database_broker_and_ses_answer(client, ses):
    status, body = get_health(client)
    assert status == 200, body
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "broker": "ok",
        "ses": "ok",
    }
    assert body["checks"]["ses"]["endpoint"] == "emulator"


@pytest.mark.django_db
def test_healthz_is_503_when_ses_does_not_answer(client, ses, settings):
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    status, body = get_health(client)
    assert status == 503
    assert body["status"] == "error"
    assert body["checks"]["ses"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    # The public answer names the kind of failure, never the address.
    assert "127.0.0.1" not in str(body)


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_does_not_answer(client, ses, broker_url):
    broker_url(f"redis://127.0.0.1:{free_port()}/0")
    status, body = get_health(client)
    assert status == 503
    assert body["checks"]["broker"]["status"] == "error"
    assert body["checks"]["ses"]["status"] == "ok"


@pytest.mark.django_db
def test_healthz_checks_redis_broker_for_real(client, ses, redis_url, broker_url):
    broker_url(redis_url)
    status, body = get_health(client)
    assert status == 200, body
    assert body["checks"]["broker"]["transport"] == "redis"


@pytest.mark.django_db
def test_healthz_shows_the_last_worker_heartbeat(client, ses):
    cache.delete(services.HEARTBEAT_CACHE_KEY)
    _, before = get_health(client)
    services.record_heartbeat()
    _, after = get_health(client)
    assert before["worker"]["last_heartbeat"] is None
    assert after["worker"]["last_heartbeat"] is not None


def test_healthz_refuses_post(client):
    assert client.post(reverse("healthz")).status_code == 405


# /healthz is public; SES allows GetSendQuota about once a second per account.


@pytest.mark.django_db
def test_healthz_asks_ses_once_however_many_ask_at_the_same_time(client, counting_ses, redis_url, settings):
    # The gate is an add to the shared cache, atomic on Redis (production's cache);
    # Django's file cache, the default without REDIS_URL, checks and then writes.
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
        }
    }
    counting_ses.quota_latency = 0.3  # the requests overlap while SES is being asked

    def ask(_):
        try:
            return Client().get(reverse("healthz")).status_code
        finally:
            connections.close_all()  # this thread's database connection

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(ask, range(16)))
    assert 200 in statuses
    assert counting_ses.quota_calls == 1

    for _ in range(20):
        status, body = get_health(client)
        assert status == 200, body
    assert counting_ses.quota_calls == 1
    assert body["checks"]["ses"]["checked_at"]  # how old the answer is, for operators


@pytest.mark.django_db
def test_healthz_asks_ses_again_once_the_period_is_over(client, counting_ses):
    get_health(client)
    get_health(client)
    assert counting_ses.quota_calls == 1
    # The period ends when its cache key expires: expired here, so no test waits on the clock.
    cache.delete(selectors.SES_GATE_KEY)
    status, _ = get_health(client)
    assert status == 200
    assert counting_ses.quota_calls == 2


@pytest.mark.django_db
def test_healthz_reports_an_ses_failure_until_it_asks_again(client, counting_ses, settings):
    working = settings.AWS_SES_REGION_ENDPOINT_URL
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    assert get_health(client)[0] == 503

    settings.AWS_SES_REGION_ENDPOINT_URL = working
    status, body = get_health(client)
    assert status == 503 and body["checks"]["ses"]["error"] == "EndpointConnectionError"
    assert counting_ses.quota_calls == 0

    cache.delete(selectors.SES_GATE_KEY)  # the shorter period after a failure is over
    assert get_health(client)[0] == 200
    assert counting_ses.quota_calls == 1


# /healthz is public: the world learns whether DailyQ is up, operators learn why.

HEALTHZ_TOKEN = "operator-token-0123456789abcdef"


@pytest.fixture
def production_health(settings):
    settings.HEALTHZ_PUBLIC_DETAILS = False
    settings.HEALTHZ_TOKEN = HEALTHZ_TOKEN


@pytest.mark.django_db
def test_healthz_tells_the_public_only_whether_it_is_up(client, ses, production_health, settings):
    response = client.get(reverse("healthz"))
    assert (response.status_code, response.json()) == (200, {"status": "ok"})

    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    cache.delete(selectors.SES_GATE_KEY)
    response = client.get(reverse("healthz"))
    assert (response.status_code, response.json()) == (503, {"status": "error"})


@pytest.mark.django_db
def test_healthz_details_go_to_requests_bearing_the_token(client, ses, production_health):
    services.record_heartbeat()
    response = client.get(reverse("healthz"), headers={"Authorization": f"Bearer {HEALTHZ_TOKEN}"})
    body = response.json()
    assert response.status_code == 200
    assert set(body["checks"]) == {"database", "broker", "ses"}
    assert body["worker"]["last_heartbeat"]

    for wrong in (f"Bearer {HEALTHZ_TOKEN[:-1]}", HEALTHZ_TOKEN, "Bearer ", f"Basic {HEALTHZ_TOKEN}"):
        assert client.get(reverse("healthz"), headers={"Authorization": wrong}).json() == {"status": "ok"}


@pytest.mark.django_db
def test_healthz_without_a_token_configured_shows_details_to_no_one(client, ses, production_health, settings):
    settings.HEALTHZ_TOKEN = ""
    for header in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer"}):
        assert client.get(reverse("healthz"), headers=header).json() == {"status": "ok"}
