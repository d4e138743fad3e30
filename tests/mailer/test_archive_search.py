"""Search in the archive (/archive/<category>/?q=), through the page and the selector.

This module runs on whichever database the suite uses (PostgreSQL in CI);
test_archive_search_backends.py runs it again on SQLite in a subprocess, so
both of mailer.archive's paths answer the same questions.
"""

import os

import pytest
from django.db import connection
from django.urls import reverse

from mailer.archive import SEARCH_MAX_LENGTH, SEARCH_MAX_WORDS, search_questions, search_words
from mailer.models import Question

pytestmark = pytest.mark.django_db


def add(category, position, title, *, answer="", question="", published=True):
    return Question.objects.create(
        category=category,
        position=position,
        title=title,
        question_md=question,
        answer_md=answer or f"{title}의 답.",
        is_published=published,
        source_key=f"search:{category}/{position}",
    )


@pytest.fixture
def bank():
    return {
        "isolation": add(
            "backend",
            1,
            "트랜잭션 격리 수준을 설명해 주세요",
            answer="트랜잭션은 MVCC와 락으로 격리됩니다. READ COMMITTED는 PostgreSQL의 기본값입니다.",
        ),
        "index": add(
            "backend",
            2,
            "데이터베이스 Index는 언제 쓰나요?",
            answer="B-Tree 인덱스는 범위 검색에 강합니다. 100% 커버링 인덱스라면 테이블을 읽지 않습니다.",
        ),
        "http": add(
            "backend",
            3,
            "HTTP와 HTTPS의 차이",
            question="TLS 핸드셰이크를 중심으로 말해 보세요.",
            answer="HTTPS는 TLS 위의 HTTP입니다. snake_case 헤더는 없습니다.",
        ),
        "hidden": add("backend", 4, "격리 수준 초안", answer="아직 공개하지 않은 트랜잭션 문서.", published=False),
        "frontend": add("frontend", 1, "브라우저 렌더링과 트랜잭션", answer="프론트엔드의 트랜잭션 이야기."),
    }


def titles(category, query):
    return [question.title for question in search_questions(category=category, query=query)]


def page_of(client, category, query):
    return client.get(reverse("mailer:archive", args=[category]), {"q": query})


def test_the_suite_searches_on_the_database_it_was_asked_for():
    # Set by test_archive_search_backends.py, which runs this module on SQLite.
    assert connection.vendor == os.environ.get("DAILYQ_EXPECT_DB_VENDOR", connection.vendor)


def test_a_korean_word_finds_titles_and_answers_inside_longer_words(bank):
    # 트랜잭션 is inside 트랜잭션은 (answer) and a title; the unpublished and the frontend one stay out.
    assert titles("backend", "트랜잭션") == [bank["isolation"].title]
    assert set(titles("backend", "인덱스")) == {bank["index"].title}
    assert titles("frontend", "트랜잭션") == [bank["frontend"].title]


def test_an_english_word_matches_in_any_case_in_titles_answers_and_question_details(bank):
    assert titles("backend", "mvcc") == [bank["isolation"].title]
    assert titles("backend", "INDEX") == [bank["index"].title]
    assert titles("backend", "handshake") == []
    assert titles("backend", "tls") == [bank["http"].title]


def test_every_word_must_match_and_title_matches_come_first(bank):
    assert titles("backend", "격리 MVCC") == [bank["isolation"].title]
    assert titles("backend", "격리 B-Tree") == []
    # "HTTP" is in the title of one and in the answer of none other; "PostgreSQL" only in an answer.
    add("backend", 5, "PostgreSQL의 VACUUM", answer="죽은 튜플을 치웁니다.")
    assert titles("backend", "postgresql") == ["PostgreSQL의 VACUUM", bank["isolation"].title]


def test_wildcards_are_matched_literally(bank):
    assert titles("backend", "%") == [bank["index"].title]  # only the answer with "100%"
    assert titles("backend", "100%") == [bank["index"].title]
    assert titles("backend", "_") == [bank["http"].title]  # only "snake_case"
    assert titles("backend", "snake_case") == [bank["http"].title]
    assert titles("backend", "snake%case") == []
    assert titles("backend", "\\") == []


def test_an_empty_query_lists_the_whole_archive_in_order(client, bank):
    for query in ["", "   "]:
        page = page_of(client, "backend", query)
        assert page.status_code == 200
        listed = [bank[key].title for key in ("isolation", "index", "http")]
        text = page.content.decode()
        assert all(title in text for title in listed)
        assert text.index(listed[0]) < text.index(listed[1]) < text.index(listed[2])
        assert bank["hidden"].title not in text
    assert titles("backend", "") == []


def test_the_page_shows_the_matches_and_keeps_the_query(client, bank):
    page = page_of(client, "backend", "트랜잭션").content.decode()
    assert bank["isolation"].title in page and bank["index"].title not in page
    assert 'value="트랜잭션"' in page
    assert 'name="q"' in page


def test_a_query_too_long_is_refused_with_its_reason_and_kept(client, bank):
    longest = "가" * SEARCH_MAX_LENGTH
    assert page_of(client, "backend", longest).status_code == 200
    too_long = "가" * (SEARCH_MAX_LENGTH + 1)
    response = page_of(client, "backend", too_long)
    assert response.status_code == 400
    page = response.content.decode()
    assert str(SEARCH_MAX_LENGTH + 1) in page  # says how long it was
    assert f'value="{too_long}"' in page
    assert bank["isolation"].title not in page


def test_a_query_with_a_nul_character_is_refused_not_an_error(client, bank):
    assert page_of(client, "backend", "격리\x00").status_code == 400


def test_the_selector_bounds_the_words_and_the_length(bank):
    words = [f"w{i}" for i in range(SEARCH_MAX_WORDS + 5)]
    assert search_words(" ".join(words)) == words[:SEARCH_MAX_WORDS]
    assert search_words("격리  격리 MVCC") == ["격리", "MVCC"]
    # The selector itself never searches for more than SEARCH_MAX_LENGTH characters.
    assert titles("backend", "격리" + " " * SEARCH_MAX_LENGTH + "없는말") == [bank["isolation"].title]


def test_search_results_page_keeps_the_query_in_the_pager(client):
    for position in range(1, 26):
        add("backend", position, f"캐시 질문 {position}")
    page = page_of(client, "backend", "캐시").content.decode()
    assert "q=%EC%BA%90%EC%8B%9C&amp;page=2" in page
    second = client.get(reverse("mailer:archive", args=["backend"]), {"q": "캐시", "page": 2}).content.decode()
    assert "캐시 질문 25<" in second and "캐시 질문 1<" not in second
