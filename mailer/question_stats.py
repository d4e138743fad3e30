"""The reader's loop in figures, per question: how many mails carried it, how
many readers opened it from the mail, wrote an answer and rated it, and how many
reviews of it went out (docs/reader-loop.md).

The admin's question list and the dashboard's "Readers' answers" read these.
Everything here only reads, in a few grouped queries for any number of questions.
"""

from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Q, Sum

from mailer.models import Delivery, Question
from subscriptions.models import Answer


@dataclass(frozen=True)
class QuestionFigures:
    mailed: int = 0
    opened: int = 0  # readers who followed its link from a mail
    answers_written: int = 0
    knew: int = 0
    partly: int = 0
    again: int = 0
    reviews_sent: int = 0

    @property
    def rated(self) -> int:
        return self.knew + self.partly + self.again

    @property
    def again_share(self) -> float:
        return self.again / self.rated if self.rated else 0.0


# Counting mailed questions reads every sent delivery; admin pages share one count for this long.
MAILED_COUNTS_CACHE_SECONDS = 600


def mailed_counts(*, question_ids: list[int] | None = None) -> dict[int, int]:
    """How many sent mails carried each question, as counted at most MAILED_COUNTS_CACHE_SECONDS ago."""
    if question_ids is not None and not question_ids:
        return {}
    counts = cache.get("stats:mailed-counts")
    if counts is None:
        counts = _count_mailed()
        cache.set("stats:mailed-counts", counts, MAILED_COUNTS_CACHE_SECONDS)
    if question_ids is None:
        return counts
    return {question_id: counts[question_id] for question_id in question_ids if question_id in counts}


def _count_mailed() -> dict[int, int]:
    """One grouped query unnesting the question ids of every sent delivery."""
    table = Delivery._meta.db_table
    if connection.vendor == "postgresql":
        element = "(e.value #>> '{}')::bigint"
        source = f"{table} d CROSS JOIN LATERAL jsonb_array_elements(d.question_ids) e"
    else:
        element = "CAST(e.value AS INTEGER)"
        source = f"{table} d, json_each(d.question_ids) e"
    sql = f"SELECT {element} AS q, COUNT(*) FROM {source} WHERE d.status = %s"  # noqa: S608 (names are ours)
    sql += " GROUP BY 1"
    with connection.cursor() as cursor:
        cursor.execute(sql, [Delivery.Status.SENT])
        return {int(question_id): count for question_id, count in cursor.fetchall()}


def _answer_figures(answers) -> dict[int, dict]:
    rows = (
        answers.order_by()
        .values("question_id")
        .annotate(
            opened=Count("id", filter=Q(opened_from_mail_at__isnull=False)),
            answers_written=Count("id", filter=~Q(text="")),
            knew=Count("id", filter=Q(rating="knew")),
            partly=Count("id", filter=Q(rating="partly")),
            again=Count("id", filter=Q(rating="again")),
            reviews_sent=Sum("reviews_sent"),
        )
    )
    return {row.pop("question_id"): {**row, "reviews_sent": row["reviews_sent"] or 0} for row in rows}


def question_figures(*, question_ids: list[int] | None = None) -> dict[int, QuestionFigures]:
    """Per question: mailed, opened from the mail, answers written, ratings and reviews sent (two grouped queries)."""
    answers = Answer.objects.all() if question_ids is None else Answer.objects.filter(question_id__in=question_ids)
    by_answers = _answer_figures(answers)
    mailed = mailed_counts(question_ids=question_ids)
    return {
        question_id: QuestionFigures(mailed=mailed.get(question_id, 0), **by_answers.get(question_id, {}))
        for question_id in set(mailed) | set(by_answers)
    }


@dataclass(frozen=True)
class HardQuestion:
    question_id: int
    title: str
    category: str
    figures: QuestionFigures


def hardest_questions(*, min_ratings: int = 5, limit: int = 10) -> list[HardQuestion]:
    """The questions readers most often did not know: the highest share of "again" among at least `min_ratings`."""
    rated = Answer.objects.exclude(rating="")
    candidates = (
        rated.order_by()
        .values("question_id")
        .annotate(n=Count("id"), again=Count("id", filter=Q(rating="again")))
        .filter(n__gte=min_ratings, again__gt=0)
        .order_by(-F("again") * 1.0 / F("n"), "-n", "question_id")
        .values_list("question_id", flat=True)[:limit]
    )
    ids = list(candidates)
    figures = question_figures(question_ids=ids)
    questions = Question.objects.in_bulk(ids)
    return [
        HardQuestion(question_id=i, title=questions[i].title, category=questions[i].category, figures=figures[i])
        for i in ids
        if i in questions
    ]
