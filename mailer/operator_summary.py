"""The operator's summary mailed with each run report (mailer/alerts.py).

People per category and frequency over the report's period, and the hard-bounce
and complaint rates of the last SUMMARY_RATE_DAYS days against SES's thresholds
(mailer/ses.py). Everything here only reads.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q

from mailer import ses
from mailer.models import Delivery, Suppression
from subscriptions import tracks
from subscriptions.models import Frequency, Subscriber, Subscription, Verification

SUMMARY_RATE_DAYS = 7


@dataclass(frozen=True)
class PeopleCounts:
    """People (addresses, not subscriptions) in one category and frequency, or in all of them."""

    new: int = 0  # asked to subscribe (a verification mail was requested)
    confirmed: int = 0  # confirmed, so their subscription started
    unsubscribed: int = 0  # left the category (and are still out of it)
    active: int = 0  # will be mailed on the next send day: active and not suppressed


@dataclass(frozen=True)
class SesRate:
    """A rate among the mails sent in the summary's last SUMMARY_RATE_DAYS days, against SES's thresholds."""

    count: int
    sample: int
    review: float
    at_risk: float

    @property
    def rate(self) -> float:
        return self.count / self.sample if self.sample else 0.0

    @property
    def state(self) -> str:
        """ok, review (SES reviews the account at this rate) or at_risk (SES may pause sending)."""
        if self.rate >= self.at_risk:
            return "at_risk"
        if self.rate >= self.review:
            return "review"
        return "ok"


@dataclass(frozen=True)
class OperatorSummary:
    since: datetime
    until: datetime
    rows: dict[tuple[str, str], PeopleCounts]  # (category, frequency), every pair listed
    total: PeopleCounts  # each person once, whatever their categories
    rate_days: int
    bounces: SesRate
    complaints: SesRate


def _people(pairs) -> tuple[dict[tuple[str, str], int], int]:
    """Distinct subscribers per (category, frequency), and in all, from (subscriber_id, category, frequency) rows."""
    by_pair: dict[tuple[str, str], set[int]] = defaultdict(set)
    everyone: set[int] = set()
    for subscriber_id, category, frequency in pairs:
        by_pair[(category, frequency)].add(subscriber_id)
        everyone.add(subscriber_id)
    return {pair: len(ids) for pair, ids in by_pair.items()}, len(everyone)


def _asked(since: datetime, until: datetime):
    """(subscriber, category, frequency) for every category a sign-up request in the window asked for."""
    rows = Verification.objects.filter(created_at__gte=since, created_at__lt=until).values_list(
        "subscriber_id", "categories", "frequency"
    )
    for subscriber_id, categories, frequency in rows.iterator():
        for category in categories or []:
            yield subscriber_id, category, frequency


def operator_summary(*, since: datetime, until: datetime) -> OperatorSummary:
    """People per category and frequency between `since` and `until`, and the
    bounce and complaint rates of the SUMMARY_RATE_DAYS days before `until`."""
    fields = ("subscriber_id", "category", "subscriber__frequency")
    subscriptions = Subscription.objects.order_by()
    confirmed = subscriptions.filter(activated_at__gte=since, activated_at__lt=until)
    unsubscribed = subscriptions.filter(deactivated_at__gte=since, deactivated_at__lt=until, is_active=False)
    suppressed = Exists(Suppression.objects.filter(email=OuterRef("subscriber__email"), lifted_at__isnull=True))
    # Those tomorrow's send mails: a retired track's readers are not.
    active = (
        subscriptions.mailed()
        .filter(activated_at__lt=until, subscriber__status=Subscriber.Status.ACTIVE)
        .exclude(suppressed)
    )
    counted = {
        "new": _people(_asked(since, until)),
        "confirmed": _people(confirmed.values_list(*fields).iterator()),
        "unsubscribed": _people(unsubscribed.values_list(*fields).iterator()),
        "active": _people(active.values_list(*fields).iterator()),
    }
    pairs = [(c, f) for c in tracks.all_slugs() for f in Frequency.values]
    pairs += sorted({pair for by_pair, _all in counted.values() for pair in by_pair} - set(pairs))
    rows = {
        pair: PeopleCounts(**{name: by_pair.get(pair, 0) for name, (by_pair, _all) in counted.items()})
        for pair in pairs
    }
    total = PeopleCounts(**{name: everyone for name, (_by_pair, everyone) in counted.items()})

    sent = Delivery.objects.filter(
        status=Delivery.Status.SENT, sent_at__gte=until - timedelta(days=SUMMARY_RATE_DAYS), sent_at__lt=until
    ).aggregate(
        sample=Count("id"),
        bounces=Count("id", filter=Q(feedback=Delivery.Feedback.BOUNCED)),
        complaints=Count("id", filter=Q(feedback=Delivery.Feedback.COMPLAINED)),
    )
    return OperatorSummary(
        since=since,
        until=until,
        rows=rows,
        total=total,
        rate_days=SUMMARY_RATE_DAYS,
        bounces=SesRate(sent["bounces"], sent["sample"], ses.SES_REVIEW_BOUNCE_RATE, ses.SES_AT_RISK_BOUNCE_RATE),
        complaints=SesRate(
            sent["complaints"], sent["sample"], ses.SES_REVIEW_COMPLAINT_RATE, ses.SES_AT_RISK_COMPLAINT_RATE
        ),
    )
