"""Reads for the admin statistics dashboard, and the small SVG charts it draws.

Everything here only reads. Each time series comes from a few grouped
queries (one per kind of event), never one query per day or per series.
Days are calendar days in TIME_ZONE (Asia/Seoul), ending today.

The charts are plain inline SVG built on the server: no JavaScript, colours
as presentation attributes (fill="...", stroke="...") rather than style
attributes, so the admin's Content-Security-Policy leaves them alone. Every
piece of text goes through format_html, so labels are escaped.
"""

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from mailer import selectors, ses
from mailer.models import Delivery, SendingState, SendRun
from subscriptions.models import Category, Frequency, Subscriber, Subscription

logger = logging.getLogger(__name__)

# The rates at which SES puts an account under review (it may pause sending
# at 10% bounces / 0.5% complaints). settings.REPUTATION_MAX_* are DailyQ's
# own guard, which pauses the daily send; by default at these same rates.
SES_REVIEW_BOUNCE_RATE = 0.05
SES_REVIEW_COMPLAINT_RATE = 0.001


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

    keys = [(c, f) for c in Category.values for f in Frequency.values]
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
    runs = SendRun.objects.filter(day__gte=dates[0], day__lte=dates[-1]).order_by("day").annotate(**counts)
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
        bounces=Rate(health.bounces, health.sample, settings.REPUTATION_MAX_BOUNCE_RATE, SES_REVIEW_BOUNCE_RATE),
        complaints=Rate(
            health.complaints, health.sample, settings.REPUTATION_MAX_COMPLAINT_RATE, SES_REVIEW_COMPLAINT_RATE
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
    """The one SendingState row (id 1, see services.pause_sending), if any."""
    return SendingState.objects.filter(id=1).first()


# --- SVG charts ---------------------------------------------------------------------------

# Okabe-Ito: tells apart for most kinds of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
GREEN, ORANGE, RED, GREY, LIGHT_GREY, SKY, PURPLE = (
    "#009E73",
    "#E69F00",
    "#D55E00",
    "#999999",
    "#CCCCCC",
    "#56B4E9",
    "#CC79A7",
)
STATE_COLOURS = {"ok": GREEN, "near": ORANGE, "over": RED}

_CHAR_WIDTH = 6.5  # rough width of one character at font-size 11, for layout only
_LEFT, _RIGHT, _TOP, _X_AXIS = 44, 12, 10, 22
_LEGEND_ROW = 18


@dataclass(frozen=True)
class Series:
    label: str
    values: list[float]
    colour: str
    dashed: bool = False


def _num(value: float) -> str:
    return f"{value:.1f}"


def _join(parts) -> SafeString:
    """Concatenate already-escaped fragments (each one from format_html)."""
    return format_html_join("", "{}", ((part,) for part in parts))


def _ticks(maximum: float, *, count: int = 4, integers: bool = True) -> list[float]:
    """Round axis ticks from 0 to at least `maximum`."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integers:
        step = max(1, math.ceil(step))
    steps = math.ceil(maximum / step - 1e-9)
    return [step * i for i in range(steps + 1)]


def _tick_label(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


def _legend(series: list[Series], *, width: int, top: float) -> tuple[list[SafeString], int]:
    """Legend items in rows that fit `width`; returns the fragments and the rows' height."""
    parts, x, row = [], _LEFT, 0
    for item in series:
        item_width = 18 + len(item.label) * _CHAR_WIDTH + 16
        if x > _LEFT and x + item_width > width - _RIGHT:
            x, row = _LEFT, row + 1
        y = top + row * _LEGEND_ROW
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="12" height="12" fill="{}"/>'
                '<text x="{}" y="{}" fill="currentColor">{}</text>',
                _num(x),
                _num(y),
                item.colour,
                _num(x + 16),
                _num(y + 10),
                item.label,
            )
        )
        x += item_width
    return parts, (row + 1) * _LEGEND_ROW if series else 0


def _frame(chart_id: str, title: str, description: str, width: int, height: float, body) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="dailyq-chart" id="{}" viewBox="0 0 {} {}" width="100%" '
        'height="{}" preserveAspectRatio="xMinYMin meet" role="img" aria-labelledby="{}-title {}-desc" '
        'font-family="sans-serif" font-size="11">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        chart_id,
        width,
        _num(height),
        _num(height),
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description or title,
        body,
    )


def _axes(labels: list[str], ticks: list[float], *, width: int, plot_height: int, x_of) -> list[SafeString]:
    """Horizontal grid lines with their values, and every k-th x label."""
    parts = []
    bottom = _TOP + plot_height
    for tick in ticks:
        y = bottom - tick / ticks[-1] * plot_height
        parts.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor" stroke-opacity="{}"/>'
                '<text x="{}" y="{}" text-anchor="end" fill="currentColor">{}</text>',
                _LEFT,
                _num(y),
                width - _RIGHT,
                _num(y),
                "0.5" if tick == 0 else "0.15",
                _LEFT - 6,
                _num(y + 4),
                _tick_label(tick),
            )
        )
    every = max(1, math.ceil(len(labels) / 10))
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" fill="currentColor">{}</text>',
                    _num(x_of(i)),
                    _num(bottom + 15),
                    label,
                )
            )
    return parts


def _plot(chart_id: str, title: str, description: str, width: int, bottom: float, parts, series) -> SafeString:
    """A chart of plotted `parts` over an x axis at `bottom`, its legend underneath."""
    legend, legend_height = _legend(series, width=width, top=bottom + _X_AXIS + 4)
    height = bottom + _X_AXIS + 4 + legend_height
    return _frame(chart_id, title, description, width, height, _join(parts + legend))


def _empty(chart_id: str, title: str, description: str, width: int, message: str) -> SafeString:
    body = format_html('<text x="{}" y="40" text-anchor="middle" fill="currentColor">{}</text>', width // 2, message)
    return _frame(chart_id, title, description, width, 64, body)


def line_chart(
    *,
    chart_id: str,
    title: str,
    labels: list[str],
    series: list[Series],
    description: str = "",
    empty_message: str = "No data",
    width: int = 720,
    plot_height: int = 180,
) -> SafeString:
    """A line per series over the same x labels, with a legend underneath."""
    if not labels or not series:
        return _empty(chart_id, title, description, width, empty_message)
    ticks = _ticks(max((max(s.values, default=0) for s in series), default=0))
    plot_width = width - _LEFT - _RIGHT
    bottom = _TOP + plot_height

    def x_of(i: int) -> float:
        return _LEFT + plot_width / 2 if len(labels) == 1 else _LEFT + i * plot_width / (len(labels) - 1)

    def y_of(value: float) -> float:
        return bottom - value / ticks[-1] * plot_height

    parts = _axes(labels, ticks, width=width, plot_height=plot_height, x_of=x_of)
    for item in series:
        points = " ".join(f"{_num(x_of(i))},{_num(y_of(v))}" for i, v in enumerate(item.values))
        if len(item.values) == 1:
            parts.append(
                format_html(
                    '<circle cx="{}" cy="{}" r="3" fill="{}"><title>{}</title></circle>',
                    _num(x_of(0)),
                    _num(y_of(item.values[0])),
                    item.colour,
                    item.label,
                )
            )
            continue
        parts.append(
            format_html(
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{}><title>{}</title></polyline>',
                points,
                item.colour,
                format_html(' stroke-dasharray="{}"', "5 3") if item.dashed else "",
                item.label,
            )
        )
    return _plot(chart_id, title, description, width, bottom, parts, series)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: list[str],
    series: list[Series],
    stacked: bool = True,
    description: str = "",
    empty_message: str = "No data",
    width: int = 720,
    plot_height: int = 180,
) -> SafeString:
    """One group of bars per label: the series stacked, or side by side."""
    if not labels or not series:
        return _empty(chart_id, title, description, width, empty_message)
    columns = list(zip(*(s.values for s in series), strict=True))
    ticks = _ticks(max((sum(c) if stacked else max(c)) for c in columns))
    plot_width = width - _LEFT - _RIGHT
    slot = plot_width / len(labels)
    bottom = _TOP + plot_height

    def x_of(i: int) -> float:
        return _LEFT + slot * (i + 0.5)

    parts = _axes(labels, ticks, width=width, plot_height=plot_height, x_of=x_of)
    group_width = slot * 0.7
    bar_width = group_width if stacked else group_width / len(series)
    for i, (label, column) in enumerate(zip(labels, columns, strict=True)):
        base = 0.0
        for j, (item, value) in enumerate(zip(series, column, strict=True)):
            if value <= 0:
                continue
            height = value / ticks[-1] * plot_height
            x = x_of(i) - group_width / 2 + (0 if stacked else j * bar_width)
            y = bottom - base - height
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} · {}: {}</title></rect>',
                    _num(x),
                    _num(y),
                    _num(max(bar_width, 1)),
                    _num(height),
                    item.colour,
                    label,
                    item.label,
                    _tick_label(value),
                )
            )
            if stacked:
                base += height
    return _plot(chart_id, title, description, width, bottom, parts, series)


def gauge(
    *,
    chart_id: str,
    title: str,
    value: float,
    scale_max: float,
    value_text: str,
    colour: str,
    markers: Iterable[tuple[float, str]] = (),
    description: str = "",
    width: int = 360,
) -> SafeString:
    """A horizontal bar filled to `value` of `scale_max`, with labelled marks (thresholds)."""
    track_width = width - 2 * 8
    scale_max = scale_max if scale_max > 0 else 1

    def x_of(v: float) -> float:
        return 8 + min(max(v / scale_max, 0.0), 1.0) * track_width

    parts = [
        format_html(
            '<text x="8" y="13" fill="currentColor"><tspan font-weight="bold">{}:</tspan> {}</text>'
            '<rect x="8" y="20" width="{}" height="14" fill="currentColor" fill-opacity="0.12"/>',
            title,
            value_text,
            track_width,
        )
    ]
    if value > 0:
        parts.append(
            format_html(
                '<rect x="8" y="20" width="{}" height="14" fill="{}"/>', _num(max(x_of(value) - 8, 1.5)), colour
            )
        )
    for position, label in markers:
        x = x_of(position)
        anchor = "end" if x > width * 0.75 else "start" if x < width * 0.25 else "middle"
        parts.append(
            format_html(
                '<line x1="{}" y1="16" x2="{}" y2="38" stroke="currentColor" stroke-width="2"/>'
                '<text x="{}" y="50" text-anchor="{}" fill="currentColor">{}</text>',
                _num(x),
                _num(x),
                _num(x),
                anchor,
                label,
            )
        )
    return _frame(chart_id, title, description, width, 56, _join(parts))
