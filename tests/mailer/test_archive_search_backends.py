"""The search's two database paths: PostgreSQL's trigram indexes, and SQLite's scan."""

import os
import subprocess
import sys

import pytest
from django.db import connection

from mailer.archive import matching, search_questions
from mailer.models import Question
from tests.conftest import BASE_DIR
from tests.mailer.test_archive_search import add


@pytest.mark.slow
def test_the_search_tests_pass_on_sqlite_too(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(VAR_DIR=str(tmp_path), DAILYQ_EXPECT_DB_VENDOR="sqlite")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/mailer/test_archive_search.py"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-1000:]


def test_postgresql_answers_a_search_from_the_trigram_indexes(postgres):
    Question.objects.bulk_create(
        Question(category="backend", position=n, title=f"질문 {n}", answer_md=f"답 {n}", source_key=f"bulk:{n}")
        for n in range(1, 1001)
    )
    add("backend", 1001, "트랜잭션 격리 수준", answer="MVCC로 격리합니다.")
    # The words' condition alone: on a small table the planner rightly prefers
    # the category's index, so the whole search would not show the trigram ones.
    query = Question.objects.filter(matching(["격리"])).order_by()
    with connection.cursor() as cursor:
        # With sequential scans priced out, the plan shows whether the indexes fit
        # the expression Django writes (UPPER(column::text) LIKE UPPER(...)).
        cursor.execute("ANALYZE mailer_question")
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = query.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for field in ("title", "question_md", "answer_md", "title_en", "question_md_en", "answer_md_en"):
        assert f"question_{field}_trgm" in plan, plan
    assert [question.title for question in search_questions(category="backend", query="격리")] == ["트랜잭션 격리 수준"]
