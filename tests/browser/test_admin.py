"""The admin's lists in a real chromium, at an operator's screen width."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.factories import make_subscriber

pytestmark = pytest.mark.browser


def logged_in(make_page, live_server, *, width: int):
    user = get_user_model().objects.create_superuser("ops", "ops@example.org", "x-long-password-1")
    client = Client()
    client.force_login(user)
    page = make_page(viewport={"width": width, "height": 900})
    host = live_server.url.split("//", 1)[1].split(":")[0]
    page.context.add_cookies(
        [{"name": name, "value": morsel.value, "domain": host, "path": "/"} for name, morsel in client.cookies.items()]
    )
    return page


def test_the_preview_and_test_send_link_is_on_screen_at_1400_px(make_page, live_server):
    # Long addresses are what pushed the column off the right edge.
    for n in range(3):
        make_subscriber(
            f"a-rather-long-address-of-a-reader-{n}@subdomain.example-company.co.kr", categories=["backend"]
        )
    page = logged_in(make_page, live_server, width=1400)

    page.goto(live_server.url + reverse("admin:subscriptions_subscription_changelist"))

    links = page.locator("td.field-preview a, th.field-preview a")
    assert links.count() == 3
    box = links.first.bounding_box()
    line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('td.field-preview a')).lineHeight)")
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1400
    # Readable at a glance: one line, next to the reader it belongs to (it was squeezed into a
    # narrow last column, broken over lines, beside the list's filters).
    assert box["height"] <= line * 1.5
    assert box["x"] < page.locator("td.field-category").first.bounding_box()["x"]
