"""Reads for the public archive: search, the feed's items, the landing page's facts.

Search matches each word of the query, anywhere in a question's title, its
details or its answer (a substring, so Korean words match inside longer
ones: 트랜잭션 finds 트랜잭션은). Which database runs it is decided in one place,
`_rank`: PostgreSQL answers from pg_trgm indexes and ranks by trigram
similarity, SQLite scans and ranks title matches first. Both find the same rows.
"""

from dataclasses import dataclass
from datetime import date
from functools import reduce
from operator import and_, or_

from django.contrib.postgres.search import TrigramWordSimilarity
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Greatest

from mailer.emails import plain_text
from mailer.markdown import render_markdown
from mailer.models import Question
from mailer.selectors import question_text
from subscriptions import tracks
from subscriptions.models import Subscriber, Subscription

# Bounds a query's cost: the longest query and the most words matched.
SEARCH_MAX_LENGTH = 100
SEARCH_MAX_WORDS = 8
SEARCHED_FIELDS = ("title", "question_md", "answer_md", "title_en", "question_md_en", "answer_md_en")
FEED_SIZE = 50
SUMMARY_LENGTH = 300
# The landing page's facts are read from the cache for this long, so a busy
# landing page costs the database nothing.
LANDING_CACHE_SECONDS = 300


def search_words(query: str) -> list[str]:
    """The distinct words of `query` that are searched for, at most SEARCH_MAX_WORDS."""
    return list(dict.fromkeys(query.split()))[:SEARCH_MAX_WORDS]


def archive_questions(*, category: str, query: str) -> QuerySet[Question]:
    """What a category's archive lists: its published questions in order, or those matching `query`."""
    if not query.strip():
        return Question.objects.filter(category=category, is_published=True).order_by("position")
    return search_questions(category=category, query=query)


def search_questions(*, category: str, query: str) -> QuerySet[Question]:
    """Published questions of `category` holding every word of `query`, best first.

    A word is matched literally: `%` and `_` are escaped by Django's
    `icontains`, which on PostgreSQL is served by the trigram indexes of
    migrations 0012 and 0016. An empty query matches nothing.
    """
    words = search_words(query[:SEARCH_MAX_LENGTH])
    questions = Question.objects.filter(category=category, is_published=True)
    if not words:
        return questions.none()
    return _rank(questions.filter(matching(words)), words)


def matching(words: list[str]) -> Q:
    """Each word somewhere in the title, the question or the answer."""
    each_word = (reduce(or_, (Q(**{f"{field}__icontains": word}) for field in SEARCHED_FIELDS)) for word in words)
    return reduce(and_, each_word)


def _rank(questions: QuerySet[Question], words: list[str]) -> QuerySet[Question]:
    """The one place where the database matters: how matches are ordered."""
    if connection.vendor == "postgresql":
        # How closely each word matches some part of the title (pg_trgm's word_similarity).
        scores = [TrigramWordSimilarity(word, title) for word in words for title in ("title", "title_en")]
        rank = Greatest(*scores) if len(scores) > 1 else scores[0]
        return questions.annotate(rank=rank).order_by("-rank", "position")
    in_title = reduce(and_, (Q(title__icontains=word) | Q(title_en__icontains=word) for word in words))
    rank = Case(When(in_title, then=Value(1)), default=Value(0), output_field=IntegerField())
    return questions.annotate(rank=rank).order_by("-rank", "position")


def question_summary(question: Question, *, language: str = "ko", length: int = SUMMARY_LENGTH) -> str:
    """The question in `language` as plain text on one line (its details, else its title), never its answer."""
    shown = question_text(question, language)
    text = plain_text(render_markdown(shown.question_md)) or shown.title
    if len(text) <= length:
        return text
    return text[: length - 1].rstrip() + "…"


def feed_questions(*, category: str) -> list[Question]:
    """A category's newest published questions (last added first), for its feed."""
    return list(
        Question.objects.filter(category=category, is_published=True)
        .order_by("-created_at", "-position")
        .only(
            "id",
            "category",
            "position",
            "title",
            "question_md",
            "title_en",
            "question_md_en",
            "created_at",
            "updated_at",
        )[:FEED_SIZE]
    )


def active_readers() -> int:
    """People who get mail: active subscribers with at least one active subscription (cached)."""
    return cache.get_or_set("landing:active-readers", _count_active_readers, LANDING_CACHE_SECONDS)


def _count_active_readers() -> int:
    return (
        Subscription.objects.filter(is_active=True, subscriber__status=Subscriber.Status.ACTIVE)
        .values("subscriber_id")
        .distinct()
        .count()
    )


@dataclass(frozen=True)
class SampleQuestion:
    id: int
    category: str
    title: str
    summary: str
    language: str

    @property
    def category_label(self) -> str:
        return tracks.label(self.category)


def sample_question(*, day: date, language: str = "ko") -> SampleQuestion | None:
    """The day's sample question in `language` (cached), or None while nothing is published."""
    return cache.get_or_set(
        f"landing:sample:{day.isoformat()}:{language}",
        lambda: pick_sample_question(day=day, language=language),
        LANDING_CACHE_SECONDS,
    )


def pick_sample_question(*, day: date, language: str = "ko") -> SampleQuestion | None:
    """One published question per day, in turn through the bank: the same all day for everyone."""
    ids = list(Question.objects.filter(is_published=True).order_by("category", "position").values_list("id", flat=True))
    if not ids:
        return None
    question = Question.objects.get(id=ids[day.toordinal() % len(ids)])
    shown = question_text(question, language)
    return SampleQuestion(
        id=question.id,
        category=question.category,
        title=shown.title,
        summary=question_summary(question, language=language),
        language=shown.language,
    )


def landing_facts(*, day: date, language: str = "ko") -> dict:
    """What the landing page shows besides the form: how many read DailyQ, and the day's sample question."""
    return {"active_readers": active_readers(), "sample_question": sample_question(day=day, language=language)}
