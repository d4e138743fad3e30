"""Licensing as a reader sees it in chromium: the footer's source link, the
credit under a bundled answer, none under an imported one, and an imported
answer's https image shown under the site's Content-Security-Policy. Also
the setting behind the footer's link, which refuses what is no address."""

import struct
import zlib
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Route, expect

from mailer.models import Question
from mailer.questions import import_questions, load_starter_questions
from tests.browser.conftest import errors_of
from tests.mailservice.test_settings import run_python

IMAGE_URL = "https://images.example/handshake.png"


def png(width: int, height: int) -> bytes:
    """A valid, plain grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("value", ["javascript:alert(1)", "github.com/someone/dailyq", "/source.tar.gz"])
def test_source_code_url_must_be_an_absolute_http_address(tmp_path, value):
    result = run_python(["-c", "import django; django.setup()"], {"SOURCE_CODE_URL": value}, tmp_path)
    assert result.returncode != 0
    assert "SOURCE_CODE_URL" in result.stderr and "must be an absolute http(s) URL" in result.stderr


@pytest.mark.browser
def test_every_page_footer_links_the_source_code_the_site_runs(page, live_server, settings):
    settings.SOURCE_CODE_URL = "https://code.example/our-dailyq"
    page.goto(live_server.url + reverse("subscriptions:landing"))

    link = page.locator("footer").get_by_role("link", name="소스 코드 (AGPL-3.0)")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", "https://code.example/our-dailyq")
    assert errors_of(page) == []


@pytest.mark.browser
def test_bundled_answers_carry_the_cc_by_sa_credit_and_imported_ones_none(page, live_server, tmp_path: Path):
    load_starter_questions()
    bundled = Question.objects.filter(source_key__startswith="starter:backend").order_by("position").first()
    (tmp_path / "a.md").write_text(
        '---\ntitle: "가져온 질문"\norder: 1\n---\n핸드셰이크는 그림과 같습니다.\n\n'
        f'<img width="320" src="{IMAGE_URL}">\n',
        encoding="utf-8",
    )
    import_questions(path=tmp_path, category="backend")
    imported = Question.objects.get(title="가져온 질문")

    page.goto(live_server.url + reverse("mailer:question", args=[bundled.pk]))
    credit = page.locator("p.credit")
    expect(credit).to_be_visible()
    expect(credit).to_contain_text("DailyQ contributors")
    license_link = credit.get_by_role("link", name="CC BY-SA 4.0")
    expect(license_link).to_have_attribute("href", "https://creativecommons.org/licenses/by-sa/4.0/")

    def serve_image(route: Route) -> None:
        route.fulfill(status=200, content_type="image/png", body=png(64, 32))

    page.route(IMAGE_URL, serve_image)
    page.goto(live_server.url + reverse("mailer:question", args=[imported.pk]))
    image = page.locator("article.answer img")
    image.scroll_into_view_if_needed()  # loading="lazy": fetched once near the viewport
    expect(image).to_have_attribute("loading", "lazy")
    expect(image).to_have_attribute("alt", "이미지")
    page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=image.element_handle())
    expect(page.locator("p.credit")).to_have_count(0)
    page.wait_for_load_state("networkidle")
    assert errors_of(page) == []  # no Content-Security-Policy violation for the outside image
