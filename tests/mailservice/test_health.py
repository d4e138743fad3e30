import pytest
from django.core.cache import cache
from django.urls import reverse

from mailservice import services
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
