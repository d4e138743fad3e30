"""The admin statistics dashboard: its numbers, its charts, and who may see it."""

import re
from datetime import date, datetime, time, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mailer import charts, stats
from mailer.models import Delivery, SendingState, SendRun
from subscriptions.models import Subscriber, Subscription
from subscriptions.preferences import unsubscribe
from tests.conftest import free_port
from tests.factories import make_questions, make_subscriber

pytestmark = pytest.mark.django_db
with_dashboard = pytest.mark.urls("mailservice.urls")


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    """A moment on `day`, Korean time."""
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.get_default_timezone())


def ago(days: int) -> date:
    return timezone.localdate() - timedelta(days=days)


def make_run(day: date, outcomes: list[tuple[str, str]]) -> SendRun:
    """A run on `day` with one delivery (to a new subscriber) per (status, feedback)."""
    run = SendRun.objects.create(day=day, cutoff=at(day, 7), status=SendRun.Status.DONE, total=len(outcomes))
    for i, (status, feedback) in enumerate(outcomes):
        subscriber = make_subscriber(f"run{day:%m%d}-{i}@example.org", activated_at=at(day - timedelta(days=30)))
        Delivery.objects.create(
            run=run,
            subscription=subscriber.subscriptions.get(),
            status=status,
            feedback=feedback,
            sent_at=at(day, 7) if status == Delivery.Status.SENT else None,
        )
    return run


def cells(page: str, row_id: str) -> list[str]:
    """The text of each cell (th and td) of the table row with id `row_id`."""
    row = re.search(rf'<tr id="{re.escape(row_id)}"[^>]*>(.*?)</tr>', page, re.S)
    assert row, f"no row {row_id}"
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row[1], re.S)]


@pytest.fixture
def ses_unreachable(settings):
    settings.SES_EMULATOR = False
    settings.SES_SANDBOX = "false"
    settings.AWS_SES_REGION_NAME = "us-east-1"
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    settings.AWS_ACCESS_KEY_ID = "local"
    settings.AWS_SECRET_ACCESS_KEY = "local"


# --- The numbers ------------------------------------------------------------------------


def test_a_subscription_counts_from_activation_to_deactivation_only():
    today = date(2026, 3, 10)
    short = make_subscriber("short@example.org", activated_at=at(today - timedelta(days=3)))
    Subscription.objects.filter(subscriber=short).update(is_active=False, deactivated_at=at(today - timedelta(days=1)))
    # 00:30 in Seoul is the previous day in UTC: it must count from the Korean day.
    make_subscriber("night@example.org", categories=("frontend",), activated_at=at(today - timedelta(days=5), 0, 30))
    make_subscriber("old@example.org", frequency="weekly", activated_at=at(today - timedelta(days=40)))
    gone = make_subscriber("gone@example.org", activated_at=at(today - timedelta(days=50)))
    Subscription.objects.filter(subscriber=gone).update(is_active=False, deactivated_at=at(today - timedelta(days=45)))

    series = stats.active_subscriptions_by_day(days=7, today=today)

    assert series.days == [today - timedelta(days=n) for n in range(6, -1, -1)]
    assert series.counts[("backend", "daily")] == [0, 0, 0, 1, 1, 0, 0]
    assert series.counts[("frontend", "daily")] == [0, 1, 1, 1, 1, 1, 1]
    assert series.counts[("backend", "weekly")] == [1] * 7
    assert series.counts[("frontend", "weekly")] == [0] * 7
    assert series.totals == [1, 2, 2, 3, 3, 2, 2]
    assert series.current == {
        ("backend", "daily"): 0,
        ("backend", "weekly"): 1,
        ("frontend", "daily"): 1,
        ("frontend", "weekly"): 0,
    }


def test_subscriptions_use_the_subscribers_current_frequency():
    today = date(2026, 3, 10)
    subscriber = make_subscriber("mover@example.org", activated_at=at(today - timedelta(days=10)))
    Subscriber.objects.filter(id=subscriber.id).update(frequency="weekly")
    series = stats.active_subscriptions_by_day(days=7, today=today)
    assert series.counts[("backend", "weekly")] == [1] * 7
    assert series.counts[("backend", "daily")] == [0] * 7


def test_subscription_series_take_a_few_queries_whatever_the_period(django_assert_num_queries):
    for i in range(5):
        make_subscriber(f"s{i}@example.org", categories=("backend", "frontend"), activated_at=at(ago(i * 10)))
    with django_assert_num_queries(3 + 1):  # and the tracks, read once then kept in the cache
        stats.active_subscriptions_by_day(days=90)
    with django_assert_num_queries(3):
        stats.active_subscriptions_by_day(days=90)


def test_confirmations_and_unsubscribes_are_counted_per_address_and_korean_day():
    make_subscriber("a@example.org", activated_at=at(ago(2), 0, 30))
    leaver = make_subscriber("b@example.org", categories=("backend", "frontend"), activated_at=at(ago(1)))
    unsubscribe(subscriber=leaver, category="frontend")  # keeps backend: not an unsubscribe
    make_subscriber("c@example.org", activated_at=at(ago(1)))
    unsubscribe(subscriber=Subscriber.objects.get(email="c@example.org"))
    make_subscriber("old@example.org", activated_at=at(ago(20)))

    series = stats.confirmations_and_unsubscribes(days=3)

    assert series.days == [ago(2), ago(1), ago(0)]
    assert series.confirmed == [1, 2, 0]
    assert series.unsubscribed == [0, 0, 1]


def test_sends_are_counted_per_run_by_status_and_feedback():
    S, F = Delivery.Status, Delivery.Feedback
    make_run(
        ago(1),
        [
            (S.SENT, F.DELIVERED),
            (S.SENT, F.DELIVERED),
            (S.SENT, F.BOUNCED),
            (S.SENT, F.COMPLAINED),
            (S.SENT, F.SOFT_BOUNCED),
            (S.SENT, F.NONE),
            (S.FAILED, F.NONE),
            (S.SKIPPED, F.NONE),
            (S.DEFERRED, F.NONE),
            (S.PENDING, F.NONE),
        ],
    )
    SendRun.objects.create(day=ago(2), cutoff=at(ago(2), 7))
    make_run(ago(40), [(S.SENT, F.DELIVERED)])

    outcomes = stats.sends_by_outcome(days=30)

    assert [o.run.day for o in outcomes] == [ago(2), ago(1)]
    empty, full = outcomes
    assert set(empty.by_status.values()) == {0} and set(empty.by_feedback.values()) == {0}
    assert full.by_status == {"sent": 6, "failed": 1, "skipped": 1, "deferred": 1, "in_progress": 1}
    assert full.by_feedback == {"delivered": 2, "soft_bounced": 1, "bounced": 1, "complained": 1, "none": 1}


def test_reputation_is_compared_with_the_guard_and_ses_thresholds(settings):
    settings.REPUTATION_MIN_SAMPLE = 10
    settings.REPUTATION_MAX_BOUNCE_RATE = 0.04
    S, F = Delivery.Status, Delivery.Feedback
    make_run(ago(1), [(S.SENT, F.BOUNCED)] + [(S.SENT, F.DELIVERED)] * 39)

    summary = stats.reputation_summary()

    assert (summary.sample, summary.enough_data) == (40, True)
    assert summary.bounces.rate == pytest.approx(0.025)
    assert (summary.bounces.limit, summary.bounces.ses_review) == (0.04, 0.05)
    assert summary.bounces.state == "near"  # over half of the lower threshold, 4%
    assert summary.complaints.rate == 0 and summary.complaints.state == "ok"
    assert summary.complaints.ses_review == 0.001


def test_quota_summary_reports_an_unreachable_ses_instead_of_raising(ses_unreachable):
    quota = stats.quota_summary()
    assert not quota.reachable and quota.error


# --- The charts -------------------------------------------------------------------------


def test_charts_are_accessible_svg_with_escaped_text():
    evil = '<script>alert("x")</script>'
    line = charts.line_chart(
        chart_id="c1",
        title=f"Title {evil}",
        labels=["03-01", "03-02", evil],
        series=[charts.Series(evil, [1, 5, 3], "#0072B2"), charts.Series("Total", [2, 6, 4], "currentColor", True)],
    )
    bars = charts.bar_chart(
        chart_id="c2",
        title="Bars",
        labels=["a", "b"],
        series=[charts.Series("x", [1, 0], "#009E73"), charts.Series("y", [2, 3], "#D55E00")],
    )
    meter = charts.gauge(
        chart_id="c3",
        title="Rate",
        value=0.02,
        scale_max=0.1,
        value_text="2%",
        colour="#009E73",
        markers=[(0.05, "5%")],
    )
    for svg in (line, bars, meter):
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert 'role="img"' in svg and "<title id=" in svg
        assert "<script" not in svg and "style=" not in svg
    assert "&lt;script&gt;" in line and "polyline" in line and 'stroke-dasharray="5 3"' in line
    assert bars.count("<rect") == 3 + 2  # three bars (the zero is not drawn) and two legend swatches
    assert "No runs" in charts.bar_chart(chart_id="c4", title="t", labels=[], series=[], empty_message="No runs")


def test_ticks_are_round_and_cover_the_maximum():
    assert charts._ticks(0) == [0, 1]
    assert charts._ticks(3) == [0, 1, 2, 3]
    assert charts._ticks(97) == [0, 25, 50, 75, 100]
    assert charts._ticks(0.03, integers=False)[-1] >= 0.03


# --- The page ---------------------------------------------------------------------------


@with_dashboard
def test_dashboard_shows_the_numbers_as_charts_and_tables(admin_client, ses_unreachable):
    make_questions("backend", 1)
    S, F = Delivery.Status, Delivery.Feedback
    run = make_run(ago(1), [(S.SENT, F.DELIVERED), (S.SENT, F.BOUNCED), (S.FAILED, F.NONE), (S.SKIPPED, F.NONE)])
    make_subscriber("weekly@example.org", categories=("frontend",), frequency="weekly", activated_at=at(ago(3)))

    response = admin_client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    page = response.content.decode()
    # The run's four subscribers (activated 31 days ago) and the weekly one.
    assert cells(page, "now-backend-daily")[1] == "4"
    assert cells(page, "now-frontend-weekly")[1] == "1"
    assert cells(page, "now-total")[1] == "5"
    assert cells(page, f"subs-{ago(3):%Y-%m-%d}")[1:] == ["4", "0", "0", "1", "5"]
    assert cells(page, f"subs-{ago(4):%Y-%m-%d}")[1:] == ["4", "0", "0", "0", "4"]
    assert cells(page, f"signups-{ago(3):%Y-%m-%d}")[1:] == ["1", "0"]
    # Day, run status, then sent/failed/skipped/deferred/in progress, then the feedback.
    row = cells(page, f"run-{ago(1):%Y-%m-%d}")
    assert row[2:] == ["2", "1", "1", "0", "0", "1", "0", "1", "0", "0"]
    assert reverse("admin:mailer_sendrun_change", args=[run.pk]) in page
    assert reverse("admin:mailer_sendrun_changelist") in page
    assert cells(page, "rate-bounces")[1:3] == ["1", "50.00%"]
    assert cells(page, "rate-complaints")[3:5] == ["0.10%", "0.10%"]

    svgs = re.findall(r"<svg[^>]*dailyq-chart.*?</svg>", page, re.S)
    assert len(svgs) == 6  # subscriptions, sign-ups, sends by status and by feedback, two rates
    assert all('role="img"' in svg and "<script" not in svg.lower() for svg in svgs)
    # Scripts only from files: the admin's policy allows no inline script.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "Sending is paused" not in page


@with_dashboard
def test_dashboard_queries_stay_few(admin_client, ses_unreachable):
    for i in range(3):
        make_run(ago(i + 1), [(Delivery.Status.SENT, Delivery.Feedback.DELIVERED)] * 3)
    admin_client.get(reverse("dashboard"))  # warms the session and the user
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(reverse("dashboard")).status_code == 200
    # session, user; subscriptions 3; confirmations 1, unsubscribes 1; sends 1;
    # reputation 2; sending state 1; readers' answers 3 (hardest, reasons, their texts);
    # today's missed day 1; the send schedule and its skip dates 2.
    assert len(queries) <= 17, [q["sql"] for q in queries]


@with_dashboard
def test_days_parameter_is_validated(admin_client, ses_unreachable):
    week = admin_client.get(reverse("dashboard"), {"days": "7"})
    assert week.context["days"] == 7
    assert len(re.findall(r'<tr id="subs-', week.content.decode())) == 7
    for bad in ("abc", "14", "-7", ""):
        response = admin_client.get(reverse("dashboard"), {"days": bad})
        assert response.status_code == 200
        assert response.context["days"] == 30
        page = response.content.decode()
        assert len(re.findall(r'<tr id="subs-', page)) == 30
        assert re.search(r'<strong aria-current="page">[^<]*30', page)


@with_dashboard
def test_dashboard_is_for_staff_only(client):
    url = reverse("dashboard")
    login = reverse("admin:login")
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(login)

    user = get_user_model().objects.create_user("visitor", "visitor@example.org", "pw-visitor-1")
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(login)


@with_dashboard
def test_quota_block_says_when_ses_is_not_reachable(admin_client, ses_unreachable):
    page = admin_client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert re.search(r'id="quota-unreachable">[^<]*not reachable', page)
    assert 'id="gauge-quota"' not in page


@with_dashboard
def test_quota_block_shows_ses_quota_rate_and_sandbox(admin_client, ses, settings):
    settings.SES_SANDBOX = "false"
    page = admin_client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "not reachable" not in page
    assert cells(page, "quota-sent")[1] == "0"
    assert cells(page, "quota-max")[1] == "200"
    assert cells(page, "quota-remaining")[1] == "200"
    assert "production access" in cells(page, "quota-sandbox")[1]
    assert 'id="gauge-quota"' in page


@with_dashboard
def test_paused_sending_shows_a_banner_linking_to_the_sending_state(admin_client, ses_unreachable):
    SendingState.objects.create(id=1, paused=True, reason="bounce rate 7.00% (limit 5.00%)", paused_at=timezone.now())
    for language, words in (("ko", "발송이 일시 중지되었습니다"), ("en", "Sending is paused")):  # Korean by default
        page = admin_client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        banner = re.search(r'<ul class="messagelist" id="sending-paused">(.*?)</ul>', page, re.S)
        assert banner and words in banner[1] and "bounce rate 7.00%" in banner[1]
        assert reverse("admin:mailer_sendingstate_changelist") in banner[1]


@with_dashboard
def test_admin_index_links_to_the_dashboard(admin_client):
    page = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    link = re.search(r'<a class="button" href="([^"]+)"><strong>Statistics dashboard</strong></a>', page)
    assert link and link[1] == reverse("dashboard")
    assert "<strong>통계 대시보드</strong>" in admin_client.get(reverse("admin:index")).content.decode()


def test_admin_index_renders_without_the_dashboard_mounted(admin_client):
    assert admin_client.get(reverse("admin:index")).status_code == 200


@pytest.mark.django_db
def test_dashboard_shows_sandbox_mode_and_verified_identities(admin_client, ses, settings):
    settings.SES_EMULATOR = False
    settings.SES_SANDBOX = "auto"
    ses.verify("friend@example.org", "team.example")
    page = admin_client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    identities = page.split('id="quota-identities"')[1].split("</tr>")[0]
    assert "friend@example.org" in identities and "team.example" in identities
    assert "send quota" in page  # how the sandbox was decided
