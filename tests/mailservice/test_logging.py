"""What a request's log record does with the project's LOGGING: which answers mail ADMINS.

Mail to ADMINS goes out through SES, whose daily quota the daily send is capped
at: no outside request may be able to spend it.
"""

import pytest
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from django.utils.log import log_response


@pytest.fixture
def admins(settings):
    settings.ADMINS = [("Ops", "ops@example.org")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []


def fail_in_a_view(rf, path: str, error: Exception) -> None:
    """What Django does with an exception a view raised: a 500 logged with its traceback."""
    try:
        raise error
    except Exception as exc:
        log_response(
            "Internal Server Error: %s", path, response=HttpResponse(status=500), request=rf.post(path), exception=exc
        )


def raise_lookup(rf, path):
    fail_in_a_view(rf, path, LookupError("somewhere"))


def test_a_503_answer_mails_no_admin_but_a_500_does(rf, admins):
    # A 503 is DailyQ's answer while a dependency (SES) is down, its cause logged as a warning;
    # mailing ADMINS about each one would go through the SES that is down, once per visitor.
    for path in ("/subscribe/", "/healthz"):
        request = rf.post(path)
        log_response("Service Unavailable: %s", path, response=HttpResponse(status=503), request=request)
    assert mail.outbox == []

    request = rf.post("/subscribe/")
    log_response("Internal Server Error: %s", "/subscribe/", response=HttpResponse(status=500), request=request)
    assert [m.to for m in mail.outbox] == [["ops@example.org"]]


def test_the_same_error_in_the_same_place_mails_admins_once_per_window(rf, admins):
    for n in range(50):
        fail_in_a_view(rf, f"/questions/{n}/", ValueError(f"bad value {n}"))
    assert len(mail.outbox) == 1
    assert "ValueError" in mail.outbox[0].body


def test_errors_of_another_kind_or_place_are_mailed_too_up_to_a_cap(rf, admins):
    fail_in_a_view(rf, "/a/", ValueError("x"))
    fail_in_a_view(rf, "/a/", KeyError("x"))
    raise_lookup(rf, "/a/")
    assert len(mail.outbox) == 3

    kinds = [type(f"Error{n}", (Exception,), {}) for n in range(40)]
    for kind in kinds:
        fail_in_a_view(rf, "/b/", kind("x"))
    assert len(mail.outbox) == 10  # at most ten error mails an hour, whatever the errors


@pytest.mark.django_db
def test_requests_naming_a_foreign_host_mail_admins_once(admins):
    # Anyone can send these (a scanner does, all day): each is a SuspiciousOperation logged as an ERROR.
    client = Client()
    for n in range(30):
        assert client.get("/", headers={"host": f"evil{n}.example"}).status_code == 400
    assert len(mail.outbox) == 1


def test_without_the_shared_cache_each_process_still_holds_the_limits(rf, admins, settings, monkeypatch):
    from mailservice import logging as project_logging
    from tests.conftest import free_port

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens: every cache call fails
        }
    }
    monkeypatch.setattr(project_logging, "_local_limits", project_logging._LocalLimits())
    for _ in range(5):
        fail_in_a_view(rf, "/a/", ValueError("x"))
    assert len(mail.outbox) == 1
    for kind in [type(f"Error{n}", (Exception,), {}) for n in range(20)]:
        fail_in_a_view(rf, "/b/", kind("x"))
    assert len(mail.outbox) == 10
