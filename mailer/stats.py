"""Reads for the admin statistics dashboard (mailer/charts.py draws them): its
series, the unsubscribe reasons, SES's reputation and quota, the sending state.
The per-question figures are in mailer/question_stats.py.

Everything here only reads. Each time series comes from a few grouped
queries (one per kind of event), never one query per day or per series.
Days are calendar days in TIME_ZONE (Asia/Seoul), ending today.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from mailer import selectors, ses
from mailer.models import Delivery, SendingState, SendRun
from subscriptions import tracks
from subscriptions.models import Frequency, Subscriber, Subscription, UnsubscribeReason

logger = logging.getLogger(__name__)


def window(days: int, *, today: date | None = None) -> list[date]:
    """The last `days` calendar days, oldest first, ending `today` (local)."""
    today = today or timezone.localdate()
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())


def _per_day(queryset, field: str, dates: list[date]) -> list[int]:
    """How many rows of `queryset` have `field` on each of `dates` (one grouped query)."""
    start, end = _start_of(dates[0]), _start_of(dates[-1] + timedelta(days=1))
    rows = (
        queryset.filter(**{f"{field}__gte": start, f"{field}__lt": end})
        .order_by()
        .annotate(day=TruncDate(field, tzinfo=timezone.get_default_timezone()))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    counts = dict(rows)
    return [counts.get(day, 0) for day in dates]


# --- Subscriptions over time ------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionSeries:
    days: list[date]
    # (category, frequency) -> active subscriptions at the end of each day.
    counts: dict[tuple[str, str], list[int]]

    @property
    def totals(self) -> list[int]:
        return [sum(column) for column in zip(*self.counts.values(), strict=True)] or [0] * len(self.days)

    @property
    def current(self) -> dict[tuple[str, str], int]:
        return {key: values[-1] for key, values in self.counts.items()}


def active_subscriptions_by_day(*, days: int = 30, today: date | None = None) -> SubscriptionSeries:
    """Active subscriptions per (category, frequency) at the end of each of the last `days` days.

    A subscription counts from its activated_at until its deactivated_at. The
    tables keep no history, which means two simplifications:
    - the frequency is the subscriber's *current* one: an address that moved
      from daily to weekly appears as weekly on every day of the chart;
    - a subscription keeps only its latest active period (reactivating it sets
      activated_at again and clears deactivated_at), so an earlier period of a
      resubscribed address does not show.
    Subscriptions without activated_at (never activated) are not counted.

    Three grouped queries: those active as the window opens, then the
    activations and the deactivations per day inside it.
    """
    dates = window(days, today=today)
    start, end = _start_of(dates[0]), _start_of(dates[-1] + timedelta(days=1))
    tz = timezone.get_default_timezone()
    group = ("category", "subscriber__frequency")
    subscriptions = Subscription.objects.filter(activated_at__isnull=False).order_by()

    opening: dict[tuple[str, str], int] = defaultdict(int)
    active_at_start = subscriptions.filter(activated_at__lt=start).filter(
        Q(deactivated_at__isnull=True) | Q(deactivated_at__gte=start)
    )
    for category, frequency, n in active_at_start.values(*group).annotate(n=Count("id")).values_list(*group, "n"):
        opening[(category, frequency)] += n

    change: dict[tuple[str, str, date], int] = defaultdict(int)
    for field, sign in (("activated_at", 1), ("deactivated_at", -1)):
        rows = (
            subscriptions.filter(**{f"{field}__gte": start, f"{field}__lt": end})
            .annotate(day=TruncDate(field, tzinfo=tz))
            .values(*group, "day")
            .annotate(n=Count("id"))
            .values_list(*group, "day", "n")
        )
        for category, frequency, day, n in rows:
            change[(category, frequency, day)] += sign * n

    keys = [(c, f) for c in tracks.all_slugs() for f in Frequency.values]
    seen = set(opening) | {(c, f) for c, f, _day in change}
    keys += sorted(seen - set(keys))  # values no longer among the choices still count
    counts = {}
    for category, frequency in keys:
        running = opening.get((category, frequency), 0)
        values = []
        for day in dates:
            running += change.get((category, frequency, day), 0)
            values.append(running)
        counts[(category, frequency)] = values
    return SubscriptionSeries(days=dates, counts=counts)


# --- Confirmations and unsubscribes ---------------------------------------------------


@dataclass(frozen=True)
class SignupSeries:
    days: list[date]
    confirmed: list[int]
    unsubscribed: list[int]


def confirmations_and_unsubscribes(*, days: int = 30, today: date | None = None) -> SignupSeries:
    """Addresses confirmed, and addresses that left altogether, per day.

    Both are counted in addresses (Subscriber rows): confirmations by
    Subscriber.confirmed_at, unsubscribes by Subscriber.unsubscribed_at, which
    is set when an address's last subscription ends. Dropping one category
    while keeping another is not an unsubscribe here; it shows as a drop in
    the subscriptions chart. Both fields hold only the latest event:
    confirming again overwrites confirmed_at and clears unsubscribed_at, so an
    address that left and came back counts only as its latest confirmation.
    Two grouped queries.
    """
    dates = window(days, today=today)
    return SignupSeries(
        days=dates,
        confirmed=_per_day(Subscriber.objects.all(), "confirmed_at", dates),
        unsubscribed=_per_day(Subscriber.objects.all(), "unsubscribed_at", dates),
    )


# --- Unsubscribe reasons ----------------------------------------------------------------


def unsubscribe_reasons(*, days: int = 30, today: date | None = None) -> list[tuple[str, str, int]]:
    """(reason, label, count) for every reason given in the last `days` days, the most given first."""
    start = _start_of(window(days, today=today)[0])
    counts = dict(
        UnsubscribeReason.objects.filter(created_at__gte=start)
        .order_by()
        .values_list("reason")
        .annotate(n=Count("id"))
        .values_list("reason", "n")
    )
    rows = [(value, str(label), counts.get(value, 0)) for value, label in UnsubscribeReason.Reason.choices]
    return sorted(rows, key=lambda row: -row[2])


def unsubscribe_reason_details(*, days: int = 30, limit: int = 20, today: date | None = None) -> list[str]:
    """The newest "other" reasons readers wrote, with no tie to who wrote them."""
    start = _start_of(window(days, today=today)[0])
    return list(
        UnsubscribeReason.objects.filter(created_at__gte=start, reason=UnsubscribeReason.Reason.OTHER)
        .exclude(detail="")
        .order_by("-created_at")
        .values_list("detail", flat=True)[:limit]
    )


# --- Sends by outcome -------------------------------------------------------------------

IN_PROGRESS = "in_progress"  # pending or sending: the run has not finished them yet
NO_FEEDBACK = "none"  # sent, and SES has reported nothing about it yet

OUTCOME_STATUSES = [
    Delivery.Status.SENT,
    Delivery.Status.FAILED,
    Delivery.Status.SKIPPED,
    Delivery.Status.DEFERRED,
    IN_PROGRESS,
]
OUTCOME_FEEDBACK = [
    Delivery.Feedback.DELIVERED,
    Delivery.Feedback.SOFT_BOUNCED,
    Delivery.Feedback.BOUNCED,
    Delivery.Feedback.COMPLAINED,
    NO_FEEDBACK,
]


@dataclass(frozen=True)
class RunOutcome:
    run: SendRun
    by_status: dict[str, int]  # keys: OUTCOME_STATUSES
    by_feedback: dict[str, int]  # keys: OUTCOME_FEEDBACK


def sends_by_outcome(*, days: int = 30, today: date | None = None) -> list[RunOutcome]:
    """Each send run of the last `days` days, oldest first, with its deliveries
    counted by status and by SES feedback. One query."""
    dates = window(days, today=today)
    counts = {
        f"status_{status}": Count("deliveries", filter=Q(deliveries__status=status))
        for status in OUTCOME_STATUSES
        if status != IN_PROGRESS
    }
    counts[f"status_{IN_PROGRESS}"] = Count(
        "deliveries", filter=Q(deliveries__status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING])
    )
    counts |= {
        f"feedback_{feedback}": Count("deliveries", filter=Q(deliveries__feedback=feedback))
        for feedback in OUTCOME_FEEDBACK
        if feedback != NO_FEEDBACK
    }
    counts[f"feedback_{NO_FEEDBACK}"] = Count(
        "deliveries", filter=Q(deliveries__status=Delivery.Status.SENT, deliveries__feedback="")
    )
    runs = (
        SendRun.objects.filter(day__gte=dates[0], day__lte=dates[-1])
        .select_related("announcement")
        .order_by("day", "id")
        .annotate(**counts)
    )
    return [
        RunOutcome(
            run=run,
            by_status={status: getattr(run, f"status_{status}") for status in OUTCOME_STATUSES},
            by_feedback={feedback: getattr(run, f"feedback_{feedback}") for feedback in OUTCOME_FEEDBACK},
        )
        for run in runs
    ]


# --- Reputation, quota, sending state ---------------------------------------------------


@dataclass(frozen=True)
class Rate:
    count: int
    sample: int
    limit: float  # DailyQ's guard pauses the daily send at this rate
    ses_review: float  # SES reviews the account at this rate

    @property
    def rate(self) -> float:
        return self.count / self.sample if self.sample else 0.0

    @property
    def threshold(self) -> float:
        return min(self.limit, self.ses_review)

    @property
    def state(self) -> str:
        """ok, near (at half the threshold or more) or over."""
        if self.rate >= self.threshold:
            return "over"
        if self.rate >= self.threshold / 2:
            return "near"
        return "ok"


@dataclass(frozen=True)
class ReputationSummary:
    sample: int
    window: int
    min_sample: int
    enough_data: bool
    bounces: Rate
    complaints: Rate


def reputation_summary() -> ReputationSummary:
    """Hard bounces and complaints among the last REPUTATION_WINDOW sent mails
    (mailer.selectors.reputation, what the guard reads), with both thresholds."""
    health = selectors.reputation()
    return ReputationSummary(
        sample=health.sample,
        window=settings.REPUTATION_WINDOW,
        min_sample=settings.REPUTATION_MIN_SAMPLE,
        enough_data=health.enough_data,
        bounces=Rate(health.bounces, health.sample, settings.REPUTATION_MAX_BOUNCE_RATE, ses.SES_REVIEW_BOUNCE_RATE),
        complaints=Rate(
            health.complaints, health.sample, settings.REPUTATION_MAX_COMPLAINT_RATE, ses.SES_REVIEW_COMPLAINT_RATE
        ),
    )


@dataclass(frozen=True)
class QuotaSummary:
    account: ses.AccountStatus | None
    error: str = ""  # the exception's type when SES did not answer
    identities: tuple[str, ...] = ()  # verified in SES (what the sandbox lets through)

    @property
    def reachable(self) -> bool:
        return self.account is not None

    @property
    def unlimited(self) -> bool:
        # SES reports Max24HourSend = -1 for an unlimited quota.
        return self.account is not None and self.account.max_24_hour_send < 0

    @property
    def used(self) -> float:
        """The fraction of the 24-hour quota used (0 when unlimited or unknown)."""
        if self.account is None or self.account.max_24_hour_send <= 0:
            return 0.0
        return self.account.sent_last_24_hours / self.account.max_24_hour_send


def quota_summary() -> QuotaSummary:
    """SES's sandbox flag, 24-hour quota and rate (cached for a minute by
    account_status); never raises: an unreachable SES is a result too."""
    failed = cache.get("dashboard:ses-unreachable")
    if failed:  # do not wait for the timeout again on every page load
        return QuotaSummary(account=None, error=failed)
    try:
        account = ses.account_status()
        identities = cache.get("dashboard:ses-identities")
        if identities is None:
            identities = ses.verified_identities()
            cache.set("dashboard:ses-identities", identities, 300)
    except Exception as exc:
        logger.warning("dashboard: SES account status failed: %r", exc)
        cache.set("dashboard:ses-unreachable", type(exc).__name__, 30)
        return QuotaSummary(account=None, error=type(exc).__name__)
    return QuotaSummary(account=account, identities=tuple(identities))


def sending_state() -> SendingState | None:
    """The one SendingState row (id 1, see sending.runs.pause_sending), if any."""
    return SendingState.objects.filter(id=1).first()
