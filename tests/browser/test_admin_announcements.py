"""An operator's announcement in a real chromium: write it, preview it, test-send
it, then send it after a confirmation that states how many people it reaches."""

from __future__ import annotations

import pytest
from django.core import mail
from playwright.sync_api import expect

from mailer.models import Announcement, Delivery, SendRun
from tests.browser.conftest import errors_of
from tests.browser.test_admin_schedule import log_in
from tests.factories import make_subscriber

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("eager_tasks"),
]


def test_operator_writes_previews_test_sends_and_sends_an_announcement(make_page, live_server, settings):
    settings.ADMINS = []
    make_subscriber("both@example.org", categories=["backend", "frontend"])
    make_subscriber("back@example.org")
    make_subscriber("front@example.org", categories=["frontend"])
    mail.outbox.clear()
    page = make_page(viewport={"width": 1400, "height": 900})
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/mailer/announcement/add/")
    page.fill("input[name=subject]", "새 도메인으로 옮깁니다")
    page.fill("textarea[name=body_md]", "이제 **new.example**에서 보냅니다.")
    page.select_option("select[name=category]", "backend")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_be_visible()
    announcement = Announcement.objects.get()

    page.click("text=미리보기와 테스트 발송")
    frame = page.frame_locator("iframe")
    expect(frame.locator("strong")).to_have_text("new.example")
    expect(page.locator("#text-part")).to_contain_text("**new.example**")
    page.fill("input[name=to]", "me@example.org, you@example.org")
    page.click("#test-send input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("you@example.org")
    assert sorted(m.to[0] for m in mail.outbox) == ["me@example.org", "you@example.org"]
    assert all(m.subject.startswith("[TEST] ") for m in mail.outbox)
    mail.outbox.clear()

    page.goto(f"{live_server.url}/admin/mailer/announcement/{announcement.pk}/change/")
    page.click("text=보내기…")
    expect(page.locator("#confirm-text")).to_contain_text("2명")
    assert not SendRun.objects.exists()  # the confirmation page alone sends nothing
    page.click("#confirm")
    expect(page.locator(".messagelist")).to_be_visible()

    assert sorted(m.to[0] for m in mail.outbox) == ["back@example.org", "both@example.org"]
    run = SendRun.objects.get()
    assert run.kind == SendRun.Kind.ANNOUNCEMENT and run.status == SendRun.Status.DONE
    assert Delivery.objects.filter(run=run, status=Delivery.Status.SENT).count() == 2
    # Sent: the page links to its run, and the send button is gone.
    expect(page.locator(f"a[href='/admin/mailer/sendrun/{run.pk}/change/']")).to_be_visible()
    expect(page.locator("text=보내기…")).to_have_count(0)
    assert errors_of(page) == []
