"""The Atom feed per category and sitemap.xml, parsed as a reader and a crawler would."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from mailer.models import Question
from tests.factories import make_questions

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
SITE = "https://dailyq.example"


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE


@pytest.fixture
def backend():
    questions = make_questions("backend", 3)
    questions[0].answer_md = "The secret answer: ACID."
    questions[0].save()
    # Added on three different days, the last one first in the sequence.
    added = datetime(2026, 11, 1, tzinfo=UTC)
    for days, question in zip([2, 0, 1], questions, strict=True):
        Question.objects.filter(pk=question.pk).update(created_at=added + timedelta(days=days))
        question.refresh_from_db()
    make_questions("backend", 1, start=4, published=False)
    make_questions("frontend", 1)
    return questions


def feed(client, category="backend", host="testserver"):
    response = client.get(reverse("mailer:feed", args=[category]), HTTP_HOST=host)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    return ET.fromstring(response.content)  # noqa: S314 (our own response)


def test_the_feed_is_atom_with_the_required_elements(client, backend):
    root = feed(client)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{name}").text, name
    assert root.find(f"{ATOM}link[@rel='alternate']").get("href") == f"{SITE}/archive/backend/"
    assert root.find(f"{ATOM}link[@rel='self']").get("href") == f"{SITE}/archive/backend/feed/"
    entries = root.findall(f"{ATOM}entry")
    assert entries
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert entry.find(f"{ATOM}{name}").text, name
        datetime.fromisoformat(entry.find(f"{ATOM}updated").text)


def test_the_feed_lists_published_questions_newest_first_linking_their_pages(client, backend):
    entries = feed(client).findall(f"{ATOM}entry")
    first, second, third = backend
    assert [entry.find(f"{ATOM}title").text for entry in entries] == [first.title, third.title, second.title]
    links = [entry.find(f"{ATOM}link[@rel='alternate']").get("href") for entry in entries]
    assert links == [f"{SITE}/questions/{question.pk}/" for question in (first, third, second)]


def test_an_entry_summarises_the_question_in_plain_text_without_the_answer(client, backend):
    entry = feed(client).findall(f"{ATOM}entry")[0]
    summary = entry.find(f"{ATOM}summary")
    assert summary.get("type") == "text"
    assert summary.text == "Explain topic 1."  # the Markdown's text, not its markup
    assert "ACID" not in ET.tostring(entry, encoding="unicode")


def test_entry_ids_are_unique_and_stable_whoever_asks(client, backend):
    ids = [entry.find(f"{ATOM}id").text for entry in feed(client).findall(f"{ATOM}entry")]
    assert len(ids) == len(set(ids)) == 3
    assert ids == [entry.find(f"{ATOM}id").text for entry in feed(client, host="127.0.0.1").findall(f"{ATOM}entry")]
    # Editing a question changes its updated time, not its id.
    backend[1].title = "Retitled"
    backend[1].save()
    again = feed(client).findall(f"{ATOM}entry")
    assert [entry.find(f"{ATOM}id").text for entry in again] == ids


def test_an_unknown_category_has_no_feed(client, backend):
    assert client.get(reverse("mailer:feed", args=["cooking"])).status_code == 404


def test_an_empty_category_still_gives_a_valid_feed(client):
    root = feed(client, "frontend")
    assert root.tag == f"{ATOM}feed" and root.find(f"{ATOM}updated").text
    assert root.findall(f"{ATOM}entry") == []


def test_the_sitemap_lists_the_public_pages_on_site_url(client, backend):
    response = client.get("/sitemap.xml", HTTP_HOST="127.0.0.1")
    assert response.status_code == 200
    root = ET.fromstring(response.content)  # noqa: S314 (our own response)
    assert root.tag == f"{SITEMAP}urlset"
    locations = [url.find(f"{SITEMAP}loc").text for url in root.findall(f"{SITEMAP}url")]
    published = Question.objects.filter(is_published=True)
    expected = [f"{SITE}/", f"{SITE}/privacy/", f"{SITE}/archive/backend/", f"{SITE}/archive/frontend/"] + [
        f"{SITE}/questions/{question.pk}/" for question in published
    ]
    assert sorted(locations) == sorted(expected)
    assert len(locations) == len(set(locations))
    hidden = Question.objects.get(is_published=False)
    assert f"{SITE}/questions/{hidden.pk}/" not in locations
    question_urls = [url for url in root.findall(f"{SITEMAP}url") if "/questions/" in url.find(f"{SITEMAP}loc").text]
    assert all(url.find(f"{SITEMAP}lastmod").text for url in question_urls)
