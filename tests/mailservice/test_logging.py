"""What a request's log record does with the project's LOGGING: which answers mail ADMINS."""

from django.core import mail
from django.http import HttpResponse
from django.utils.log import log_response


def test_a_503_answer_mails_no_admin_but_a_500_does(rf, settings):
    # A 503 is DailyQ's answer while a dependency (SES) is down, its cause logged as a warning;
    # mailing ADMINS about each one would go through the SES that is down, once per visitor.
    settings.ADMINS = [("Ops", "ops@example.org")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    for path in ("/subscribe/", "/healthz"):
        request = rf.post(path)
        log_response("Service Unavailable: %s", path, response=HttpResponse(status=503), request=request)
    assert mail.outbox == []

    request = rf.post("/subscribe/")
    log_response("Internal Server Error: %s", "/subscribe/", response=HttpResponse(status=500), request=request)
    assert [m.to for m in mail.outbox] == [["ops@example.org"]]
