"""An operator adds a track and retires another in a real chromium, and the subscribe form follows."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from subscriptions.models import Track
from tests.browser.conftest import errors_of
from tests.browser.test_admin_schedule import log_in
from tests.factories import make_questions

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_adds_a_track_and_retires_one_and_the_form_follows(page: Page, live_server):
    make_questions("devops", 3)
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/subscriptions/track/add/")
    page.fill("input[name=slug]", "devops")
    page.fill("input[name=name_ko]", "데브옵스")
    page.fill("input[name=name_en]", "DevOps")
    page.fill("input[name=position]", "3")
    page.fill("input[name=start_position]", "2")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_be_visible()
    assert Track.objects.get(slug="devops").start_position == 2

    # Retire frontend from the list, as an operator would: untick "offered" and save.
    frontend = Track.objects.get(slug="frontend")
    page.goto(f"{live_server.url}/admin/subscriptions/track/")
    row = page.locator("tr", has=page.locator(f"a[href$='/track/{frontend.pk}/change/']"))
    row.locator("input[name$='is_active']").uncheck()
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_be_visible()
    assert not Track.objects.get(slug="frontend").is_active

    page.goto(live_server.url + "/")
    offered = page.locator("input[name=categories]")
    assert [offered.nth(i).get_attribute("value") for i in range(offered.count())] == ["backend", "devops"]
    expect(page.locator("label:has(input[value=devops])")).to_contain_text("데브옵스")
    # A retired track's archive is still there to browse.
    expect(page.locator(".browse a[href*='/archive/frontend/']")).to_be_visible()
    assert errors_of(page) == []
