import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils.safestring import SafeString

from mailer.markdown import render_markdown
from mailer.models import CategorySettings, Delivery, Question, SendingState, SendRun, Suppression
from subscriptions.addresses import canonical_email
from subscriptions.models import Category, Frequency, Subscriber, Subscription


def is_suppressed(*, email: str) -> bool:
    """Whether a suppression in force holds `email`, in any spelling."""
    return bool(suppressed_addresses(emails=[email]))


def suppressed_addresses(*, emails: Iterable[str]) -> set[str]:
    """Those of `emails` a suppression in force holds, in any spelling (one query)."""
    keys = {email: address_key(email) for email in emails}
    if not keys:
        return set()
    held = set(
        Suppression.objects.filter(email__in=set(keys.values()), lifted_at__isnull=True).values_list("email", flat=True)
    )
    return {email for email, key in keys.items() if key in held}


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
    settings_row = CategorySettings.objects.filter(category=category).first()
    return settings_row.start_position if settings_row else 1


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
    sequences = {category: Sequence([], []) for category in Category.values}
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


def is_send_day(day: date) -> bool:
    return day.weekday() < 5


def due_subscriptions(*, day: date, cutoff):
    """Active subscriptions that get mail on `day`: daily ones Monday to Friday,
    weekly ones on Monday; only those active since before the cut-off."""
    frequencies = [Frequency.DAILY] + ([Frequency.WEEKLY] if day.weekday() == 0 else [])
    if not is_send_day(day):
        frequencies = []
    return Subscription.objects.filter(
        is_active=True,
        activated_at__lte=cutoff,
        subscriber__status=Subscriber.Status.ACTIVE,
        subscriber__frequency__in=frequencies,
    )


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
