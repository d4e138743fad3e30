import bisect
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import holidays
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.safestring import SafeString

from mailer.markdown import render_markdown
from mailer.models import (
    Announcement,
    Delivery,
    ErasedAddress,
    MissedDay,
    Question,
    SendingState,
    SendRun,
    SendSchedule,
    SkipDate,
    Suppression,
)
from subscriptions.addresses import address_hash, canonical_email
from subscriptions.models import Frequency, Subscriber, Subscription, Track


def is_suppressed(*, email: str) -> bool:
    """Whether a suppression in force holds `email`, in any spelling."""
    return bool(suppressed_addresses(emails=[email]))


def suppressed_addresses(*, emails: Iterable[str]) -> set[str]:
    """Those of `emails` a suppression in force holds, in any spelling (one query).

    A suppression is found by its address or by the keyed hash of it: the
    hash is all that is left of a suppressed address once its owner is erased.
    """
    keys = {email: (address_key(email), address_hash(email)) for email in emails}
    if not keys:
        return set()
    by_address = Q(email__in={key for key, _hash in keys.values()})
    by_hash = Q(email_hash__in={hashed for _key, hashed in keys.values()})
    held = Suppression.objects.filter(by_address | by_hash, lifted_at__isnull=True).values_list("email", "email_hash")
    held_emails = {email for email, _hash in held if email}
    held_hashes = {hashed for _email, hashed in held}
    return {email for email, (key, hashed) in keys.items() if key in held_emails or hashed in held_hashes}


def erased_addresses(*, emails: Iterable[str]) -> set[str]:
    """Those of `emails` whose owner was erased and has not subscribed again: DailyQ must not store them."""
    hashes = {email: address_hash(email) for email in emails}
    if not hashes:
        return set()
    erased = set(ErasedAddress.objects.filter(email_hash__in=hashes.values()).values_list("email_hash", flat=True))
    candidates = {email for email, hashed in hashes.items() if hashed in erased}
    if not candidates:
        return set()
    kept = set(
        Subscriber.objects.filter(email__in={address_key(e) for e in candidates}).values_list("email", flat=True)
    )
    return {email for email in candidates if address_key(email) not in kept}


def address_key(email: str) -> str:
    """What a stored address is looked up by: its canonical form.

    An address with none (a suppression stored before addresses were
    canonical, with a local part that is not ASCII) is its own key.
    """
    try:
        return canonical_email(email)
    except ValidationError:
        return email


def start_position(*, category: str) -> int:
    track = Track.objects.filter(slug=category).first()
    return track.start_position if track else 1


@dataclass(frozen=True)
class Sequence:
    """A category's published questions in order, for picking the next ones."""

    positions: list[int]
    ids: list[int]

    def next_after(self, next_position: int, count: int) -> list[tuple[int, int]]:
        """`count` (position, id) pairs from `next_position` on, wrapping around."""
        if not self.ids:
            return []
        index = bisect.bisect_left(self.positions, next_position)
        picked = []
        for step in range(min(count, len(self.ids))):
            i = (index + step) % len(self.ids)
            picked.append((self.positions[i], self.ids[i]))
        return picked


def question_sequences() -> dict[str, Sequence]:
    sequences = defaultdict(lambda: Sequence([], []))
    rows = Question.objects.filter(is_published=True).order_by("category", "position")
    for category, position, question_id in rows.values_list("category", "position", "id"):
        sequences[category].positions.append(position)
        sequences[category].ids.append(question_id)
    return sequences


# The languages a question's text is kept in, the site's default first.
TEXT_LANGUAGES = ("ko", "en")
_TEXT_FIELDS = {
    "ko": ("title", "question_md", "answer_md"),
    "en": ("title_en", "question_md_en", "answer_md_en"),
}


@dataclass(frozen=True)
class QuestionText:
    """A question's text in one language, and whether it is not the language asked for.

    The text is read from the question when used, so a list that loaded titles only reads nothing more.
    """

    question: Question
    language: str  # the text's own language, for a lang attribute
    fell_back: bool

    @property
    def title(self) -> str:
        return getattr(self.question, _TEXT_FIELDS[self.language][0])

    @property
    def question_md(self) -> str:
        return getattr(self.question, _TEXT_FIELDS[self.language][1])

    @property
    def answer_md(self) -> str:
        return getattr(self.question, _TEXT_FIELDS[self.language][2])

    @property
    def question_html(self) -> SafeString:
        return render_markdown(self.question_md) if self.question_md else SafeString("")

    @property
    def answer_html(self) -> SafeString:
        return render_markdown(self.answer_md)


def text_fields(language: str) -> tuple[str, str, str]:
    """The model fields (title, question, answer) that hold a language's text."""
    return _TEXT_FIELDS[language]


def question_text(question: Question, language: str) -> QuestionText:
    """`question`'s text for a reader of `language` ("en", "en-us", "ko", ...).

    English readers get the English text and everyone else the Korean one; a
    question without that text gives its other one, with fell_back set so the
    page or mail can say so. A language's text is there when its title is
    (the model's constraints keep each language whole).
    """
    wanted = "en" if (language or "").lower().split("-")[0] == "en" else "ko"
    for candidate in (wanted, *(other for other in TEXT_LANGUAGES if other != wanted)):
        if getattr(question, _TEXT_FIELDS[candidate][0]):
            return QuestionText(question, candidate, fell_back=candidate != wanted)
    # Unreachable for a saved row (question_has_text); an unsaved, empty one shows as empty.
    return QuestionText(question, wanted, fell_back=False)


def send_schedule() -> SendSchedule:
    """The schedule in force: the admin's row, or (unsaved) DAILY_SEND_HOUR/MINUTE Monday to Friday."""
    schedule = SendSchedule.objects.filter(id=1).first()
    if schedule is None:
        schedule = SendSchedule(id=1, send_time=time(settings.DAILY_SEND_HOUR, settings.DAILY_SEND_MINUTE))
    return schedule


@functools.lru_cache(maxsize=8)
def _korean_holidays(year: int) -> frozenset[date]:
    # Substitute holidays included: the holidays package lists them as days of their own.
    return frozenset(holidays.country_holidays("KR", years=year))


@dataclass(frozen=True)
class SendCalendar:
    """The send schedule, read once: which days are send days and when each starts."""

    send_time: time
    weekdays: frozenset[int]
    skip_dates: frozenset[date]
    skip_korean_holidays: bool

    def send_start(self, day: date) -> datetime | None:
        if day.weekday() not in self.weekdays or day in self.skip_dates:
            return None
        if self.skip_korean_holidays and day in _korean_holidays(day.year):
            return None
        return scheduled_start(day, self.send_time)

    def is_digest_day(self, day: date) -> bool:
        """The weekly digest goes on the week's first send day (Monday unless it is skipped)."""
        monday = day - timedelta(days=day.weekday())
        earlier = (monday + timedelta(days=n) for n in range(day.weekday()))
        return self.send_start(day) is not None and all(self.send_start(d) is None for d in earlier)


def send_calendar() -> SendCalendar:
    schedule = send_schedule()
    skip_dates = SkipDate.objects.values_list("day", flat=True)
    return SendCalendar(
        send_time=schedule.send_time,
        weekdays=frozenset(schedule.weekdays),
        skip_dates=frozenset(skip_dates),
        skip_korean_holidays=schedule.skip_korean_holidays,
    )


def scheduled_start(day: date, send_time: time | None = None) -> datetime:
    """The send time on `day` (TIME_ZONE), whether or not it is a send day."""
    send_time = send_schedule().send_time if send_time is None else send_time
    return timezone.make_aware(datetime.combine(day, send_time))


def send_start(day: date) -> datetime | None:
    """When `day`'s send starts, or None if `day` is not a send day.

    The one rule for send days (the admin's send schedule: weekdays, skip
    dates, Korean public holidays); everything that asks reads it here.
    """
    return send_calendar().send_start(day)


def is_send_day(day: date) -> bool:
    return send_start(day) is not None


def upcoming_send_starts(*, after: date, count: int, horizon_days: int = 366) -> list[datetime]:
    """The next `count` send starts from `after` on (the admin shows them under the schedule)."""
    calendar = send_calendar()
    starts = []
    for n in range(horizon_days):
        start = calendar.send_start(after + timedelta(days=n))
        if start is not None:
            starts.append(start)
            if len(starts) == count:
                break
    return starts


def missed_day_waiting(*, today: date) -> MissedDay | None:
    """Today's missed send day, if its run has still not started (the dashboard's banner)."""
    missed = MissedDay.objects.filter(day=today, started_at__isnull=True).first()
    if missed is None or SendRun.objects.filter(kind=SendRun.Kind.DAILY, day=today).exists():
        return None
    return missed


def due_subscriptions(*, day: date, cutoff):
    """Active subscriptions that get mail on `day`, a send day: daily ones always,
    weekly ones on the week's first send day; only those active since before the cut-off."""
    calendar = send_calendar()
    frequencies = [Frequency.DAILY] + ([Frequency.WEEKLY] if calendar.is_digest_day(day) else [])
    if calendar.send_start(day) is None:
        frequencies = []
    return Subscription.objects.mailed().filter(
        activated_at__lte=cutoff,
        subscriber__status=Subscriber.Status.ACTIVE,
        subscriber__frequency__in=frequencies,
    )


def announcement_audience(*, announcement: Announcement, cutoff: datetime | None = None):
    """The active subscriptions of an announcement's audience, active since before `cutoff`.

    Several of them may be one person's (two categories): the send mails each
    person once (mailer.sending.announcements), and audience_size counts people.
    """
    subscriptions = Subscription.objects.mailed().filter(subscriber__status=Subscriber.Status.ACTIVE)
    if cutoff is not None:
        subscriptions = subscriptions.filter(activated_at__lte=cutoff)
    if announcement.category:
        subscriptions = subscriptions.filter(category=announcement.category)
    if announcement.frequency:
        subscriptions = subscriptions.filter(subscriber__frequency=announcement.frequency)
    if announcement.language:
        subscriptions = subscriptions.filter(subscriber__language=announcement.language)
    return subscriptions


def audience_size(*, announcement: Announcement) -> int:
    """How many people an announcement would reach now (before the gate's suppressions and sandbox)."""
    return announcement_audience(announcement=announcement).values("subscriber_id").distinct().count()


def run_progress(*, run: SendRun) -> dict[str, int]:
    counts = dict(run.deliveries.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {status: counts.get(status, 0) for status in Delivery.Status.values}


@dataclass(frozen=True)
class RunCompletion:
    """How far a run has got: its deliveries per status, and how many of its total are settled."""

    counts: dict[str, int]
    finished: int  # no longer pending or sending
    percent: int


def run_completion(*, run: SendRun) -> RunCompletion:
    counts = run_progress(run=run)
    finished = run.total - counts[Delivery.Status.PENDING] - counts[Delivery.Status.SENDING]
    percent = 100 if not run.total else round(100 * finished / run.total)
    return RunCompletion(counts=counts, finished=finished, percent=percent)


def received_questions(*, subscriber: Subscriber, limit: int = 200) -> list[Question]:
    """Questions mailed to `subscriber`, newest first."""
    question_ids = []
    deliveries = (
        Delivery.objects.filter(subscription__subscriber=subscriber, status=Delivery.Status.SENT)
        .order_by("-sent_at")
        .values_list("question_ids", flat=True)[:limit]
    )
    for ids in deliveries:
        question_ids.extend(reversed(ids))
    found = Question.objects.in_bulk(question_ids)
    return [found[i] for i in dict.fromkeys(question_ids) if i in found]


def sending_paused() -> bool:
    return SendingState.objects.filter(id=1, paused=True).exists()


@dataclass(frozen=True)
class Reputation:
    sample: int
    bounces: int
    complaints: int
    enough_data: bool

    @property
    def bounce_rate(self) -> float:
        return self.bounces / self.sample if self.sample else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sample if self.sample else 0.0


def reputation() -> Reputation:
    """Hard bounces and complaints among the last REPUTATION_WINDOW sent deliveries."""
    recent_ids = (
        Delivery.objects.filter(status=Delivery.Status.SENT)
        .order_by("-sent_at")
        .values_list("id", flat=True)[: settings.REPUTATION_WINDOW]
    )
    counts = Delivery.objects.filter(id__in=list(recent_ids)).aggregate(
        sample=Count("id"),
        bounces=Count("id", filter=Q(feedback=Delivery.Feedback.BOUNCED)),
        complaints=Count("id", filter=Q(feedback=Delivery.Feedback.COMPLAINED)),
    )
    return Reputation(
        sample=counts["sample"],
        bounces=counts["bounces"],
        complaints=counts["complaints"],
        enough_data=counts["sample"] >= settings.REPUTATION_MIN_SAMPLE,
    )
