"""What happens when a start or an admin mail fails: tried again, nothing lost, nothing twice."""

from datetime import date, timedelta

import pytest

from bench.fake_ses import FakeSES
from bench.proc import free_port
from mailer import pacing, services, tasks
from mailer.models import Delivery, SendRun
from tests.factories import make_questions, make_subscriber

TUESDAY = date(2026, 12, 1)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake_ses(settings):
    server = FakeSES(latency=0, max_24_hour_send=50000, max_send_rate=200).start()
    settings.EMAIL_BACKEND = "django_ses.SESBackend"
    settings.SES_EMULATOR = False
    settings.AWS_SES_REGION_NAME = "us-east-1"
    settings.AWS_SES_REGION_ENDPOINT_URL = server.url
    settings.AWS_ACCESS_KEY_ID = settings.AWS_SECRET_ACCESS_KEY = "local"
    settings.SES_SANDBOX = "false"
    settings.SES_MAX_SEND_RATE = 1000
    settings.SES_QUOTA_CAP = True
    settings.ADMINS = []
    pacing.reset_schedule()
    yield server
    server.stop()
    pacing.reset_schedule()


def test_a_start_that_failed_is_started_again_by_the_sweeper(fake_ses, settings, eager_tasks):
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # SES unreachable: no quota

    with pytest.raises(Exception):  # noqa: B017 (botocore's connection error)
        services.start_daily_send(day=TUESDAY)
    run = SendRun.objects.get(day=TUESDAY)
    assert (run.status, Delivery.objects.count()) == ("created", 0)  # nothing half-made
    assert services.requeue_stalled_runs(quiet_for=timedelta(0), today=TUESDAY) == 0  # still unreachable

    settings.AWS_SES_REGION_ENDPOINT_URL = fake_ses.url
    assert services.requeue_stalled_runs(quiet_for=timedelta(0), today=TUESDAY + timedelta(days=1)) == 0
    assert services.requeue_stalled_runs(quiet_for=timedelta(0), today=TUESDAY) == 1

    run.refresh_from_db()
    assert run.status == "done"
    assert [m["to"] for m in fake_ses.accepted] == [["a@example.org"]]
    assert services.requeue_stalled_runs(quiet_for=timedelta(0), today=TUESDAY) == 0


def test_admin_mail_that_fails_midway_is_retried_for_the_admins_not_reached(fake_ses, settings, eager_tasks):
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    run = services.start_daily_send(day=TUESDAY)  # no ADMINS yet: no report
    settings.ADMINS = [("One", "one@example.org"), ("Two", "two@example.org"), ("Three", "three@example.org")]
    fake_ses.accepted.clear()
    fake_ses.script = ["", "rejected"]  # one's report goes, two's is refused once

    # throw=False: the task's retry runs here and now, as a worker would run it later.
    result = tasks.send_run_report.apply(kwargs={"run_id": run.id}, throw=False)

    assert result.get() == 2  # the retry's count: two and three
    assert fake_ses.refused == ["rejected"]
    assert [m["to"][0] for m in fake_ses.accepted] == ["one@example.org", "two@example.org", "three@example.org"]
    assert services.send_run_report(run_id=run.id) == 0  # and never again


def test_a_pause_alert_that_fails_midway_reaches_the_others_once(fake_ses, settings):
    settings.ADMINS = [("One", "one@example.org"), ("Two", "two@example.org")]
    fake_ses.script = ["", "rejected"]  # one's goes, two's is refused once
    tasks.send_pause_alert.apply(kwargs={"reason": "bounce rate 7.00%"}, throw=False)
    assert fake_ses.refused == ["rejected"]
    assert [m["to"][0] for m in fake_ses.accepted] == ["one@example.org", "two@example.org"]
