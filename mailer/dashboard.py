"""The admin statistics dashboard: subscriptions, sends, reputation and quota on one page.

Mounted as admin.site.admin_view(dashboard) at <ADMIN_URL>dashboard/ (URL name
"dashboard"); the view also checks for a staff user itself, so it is never
open even when mounted some other way.
"""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from mailer import charts, question_stats, selectors, stats
from mailer.models import Delivery
from subscriptions import tracks
from subscriptions.models import Frequency

DAY_CHOICES = (7, 30, 90)
DEFAULT_DAYS = 30

STATUS_COLOURS = {
    Delivery.Status.SENT: charts.GREEN,
    Delivery.Status.FAILED: charts.RED,
    Delivery.Status.SKIPPED: charts.GREY,
    Delivery.Status.DEFERRED: charts.ORANGE,
    stats.IN_PROGRESS: charts.SKY,
}
FEEDBACK_COLOURS = {
    Delivery.Feedback.DELIVERED: charts.GREEN,
    Delivery.Feedback.SOFT_BOUNCED: charts.ORANGE,
    Delivery.Feedback.BOUNCED: charts.RED,
    Delivery.Feedback.COMPLAINED: charts.PURPLE,
    stats.NO_FEEDBACK: charts.LIGHT_GREY,
}


def parse_days(value) -> int:
    """?days=7|30|90; anything else means the default."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_DAYS
    return days if days in DAY_CHOICES else DEFAULT_DAYS


@never_cache
@staff_member_required
def dashboard(request):
    days = parse_days(request.GET.get("days"))
    context = {
        **admin.site.each_context(request),
        "title": _("Statistics dashboard"),
        "days": days,
        "day_choices": DAY_CHOICES,
        "state": stats.sending_state(),
        "missed": selectors.missed_day_waiting(today=timezone.localdate()),
        "next_sends": [
            start
            for start in selectors.upcoming_send_starts(after=timezone.localdate(), count=2)
            if start > timezone.now()
        ][:1],
        **_subscriptions(days),
        **_signups(days),
        **_sends(days),
        **_reputation(),
        **_quota(),
        **_reader_loop(days),
    }
    return TemplateResponse(request, "admin/dailyq_dashboard.html", context)


def _short(day) -> str:
    return day.strftime("%m-%d")


def _series_label(category: str, frequency: str) -> str:
    category_label = tracks.label(category)
    frequency_label = {Frequency.DAILY: _("daily"), Frequency.WEEKLY: _("weekly")}.get(frequency, frequency)
    return f"{category_label} · {frequency_label}"


def _subscriptions(days: int) -> dict:
    series = stats.active_subscriptions_by_day(days=days)
    labels = [_series_label(*key) for key in series.counts]
    lines = [
        charts.Series(label, values, charts.PALETTE[i % len(charts.PALETTE)])
        for i, (label, values) in enumerate(zip(labels, series.counts.values(), strict=True))
    ]
    lines.append(charts.Series(_("Total"), series.totals, "currentColor", dashed=True))
    rows = [
        (day, [values[i] for values in series.counts.values()], series.totals[i])
        for i, day in reversed(list(enumerate(series.days)))
    ]
    return {
        "subscription_labels": labels,
        "subscription_rows": rows,
        "subscription_current": list(zip(series.counts, labels, series.current.values(), strict=True)),
        "subscription_total": series.totals[-1],
        "subscription_chart": charts.line_chart(
            chart_id="chart-subscriptions",
            title=_("Active subscriptions at the end of each day, by category and frequency"),
            labels=[_short(day) for day in series.days],
            series=lines,
        ),
    }


def _signups(days: int) -> dict:
    series = stats.confirmations_and_unsubscribes(days=days)
    return {
        "signup_rows": list(reversed(list(zip(series.days, series.confirmed, series.unsubscribed, strict=True)))),
        "signup_totals": (sum(series.confirmed), sum(series.unsubscribed)),
        "signup_chart": charts.bar_chart(
            chart_id="chart-signups",
            title=_("Addresses confirmed and unsubscribed per day"),
            labels=[_short(day) for day in series.days],
            series=[
                charts.Series(_("Confirmed"), series.confirmed, charts.GREEN),
                charts.Series(_("Unsubscribed"), series.unsubscribed, charts.RED),
            ],
            stacked=False,
        ),
    }


def _outcome_label(value: str) -> str:
    if value == stats.IN_PROGRESS:
        return _("In progress")
    if value == stats.NO_FEEDBACK:
        return _("No feedback yet")
    if value in Delivery.Status.values:
        return str(Delivery.Status(value).label)
    return str(Delivery.Feedback(value).label)


def _sends(days: int) -> dict:
    outcomes = stats.sends_by_outcome(days=days)
    labels = [_short(o.run.day) for o in outcomes]
    status_series = [
        charts.Series(_outcome_label(s), [o.by_status[s] for o in outcomes], STATUS_COLOURS[s])
        for s in stats.OUTCOME_STATUSES
    ]
    feedback_series = [
        charts.Series(_outcome_label(f), [o.by_feedback[f] for o in outcomes], FEEDBACK_COLOURS[f])
        for f in stats.OUTCOME_FEEDBACK
    ]
    no_runs = _("No send runs in this period")
    return {
        "send_status_labels": [s.label for s in status_series],
        "send_feedback_labels": [s.label for s in feedback_series],
        "send_rows": [
            (
                o.run,
                [o.by_status[s] for s in stats.OUTCOME_STATUSES],
                [o.by_feedback[f] for f in stats.OUTCOME_FEEDBACK],
            )
            for o in reversed(outcomes)
        ],
        "send_status_totals": [sum(s.values) for s in status_series],
        "send_feedback_totals": [sum(s.values) for s in feedback_series],
        "send_status_chart": charts.bar_chart(
            chart_id="chart-sends-status",
            title=_("Deliveries of each send run by status"),
            labels=labels,
            series=status_series,
            empty_message=no_runs,
        ),
        "send_feedback_chart": charts.bar_chart(
            chart_id="chart-sends-feedback",
            title=_("What SES reported about each send run's mail"),
            labels=labels,
            series=feedback_series,
            empty_message=no_runs,
        ),
    }


def _rate_gauge(chart_id: str, title: str, rate: stats.Rate) -> str:
    if rate.limit == rate.ses_review:
        markers = [(rate.limit, _("pause and SES review at %(rate)s") % {"rate": f"{rate.limit:.1%}"})]
    else:
        markers = [
            (rate.limit, _("DailyQ pauses at %(rate)s") % {"rate": f"{rate.limit:.1%}"}),
            (rate.ses_review, _("SES reviews at %(rate)s") % {"rate": f"{rate.ses_review:.1%}"}),
        ]
    value_text = _("%(rate)s (%(count)d of %(sample)d)") % {
        "rate": f"{rate.rate:.2%}",
        "count": rate.count,
        "sample": rate.sample,
    }
    return charts.gauge(
        chart_id=chart_id,
        title=title,
        value=rate.rate,
        scale_max=max(rate.limit, rate.ses_review, rate.rate) * 1.5,
        value_text=value_text,
        colour=charts.STATE_COLOURS[rate.state],
        markers=markers,
    )


STATE_LABELS = {
    "ok": gettext_lazy("below half the threshold"),
    "near": gettext_lazy("over half the threshold"),
    "over": gettext_lazy("at or over the threshold"),
}


def _reputation() -> dict:
    summary = stats.reputation_summary()
    rows = [
        {
            "id": row_id,
            "label": label,
            "count": rate.count,
            "rate": f"{rate.rate:.2%}",
            "limit": f"{rate.limit:.2%}",
            "ses_review": f"{rate.ses_review:.2%}",
            "state": rate.state,
            "state_label": STATE_LABELS[rate.state],
        }
        for row_id, label, rate in (
            ("rate-bounces", _("Bounces (permanent)"), summary.bounces),
            ("rate-complaints", _("Complaints"), summary.complaints),
        )
    ]
    return {
        "reputation": summary,
        "reputation_rows": rows,
        "bounce_gauge": _rate_gauge("gauge-bounces", _("Bounce rate"), summary.bounces),
        "complaint_gauge": _rate_gauge("gauge-complaints", _("Complaint rate"), summary.complaints),
    }


def _quota() -> dict:
    quota = stats.quota_summary()
    chart = ""
    if quota.reachable and not quota.unlimited:
        account = quota.account
        used = quota.used
        chart = charts.gauge(
            chart_id="gauge-quota",
            title=_("SES 24-hour quota used"),
            value=account.sent_last_24_hours,
            scale_max=account.max_24_hour_send,
            value_text=_("%(sent)d of %(max)d (%(used)s)")
            % {"sent": account.sent_last_24_hours, "max": account.max_24_hour_send, "used": f"{used:.0%}"},
            colour=charts.GREEN if used < 0.8 else charts.ORANGE if used < 0.95 else charts.RED,
        )
    return {"quota": quota, "quota_gauge": chart}


HARDEST_MIN_RATINGS = 5


def _reader_loop(days: int) -> dict:
    return {
        "hardest_questions": question_stats.hardest_questions(min_ratings=HARDEST_MIN_RATINGS),
        "hardest_min_ratings": HARDEST_MIN_RATINGS,
        "unsubscribe_reasons": stats.unsubscribe_reasons(days=days),
        "unsubscribe_reason_details": stats.unsubscribe_reason_details(days=days),
    }
