import re
from pathlib import Path

import pytest
from django.urls import reverse

# A page needs `db`: its footer says the send schedule in force (mailer.schedule_text).


def test_landing_page_says_what_dailyq_is(client, db):
    response = client.get(reverse("subscriptions:landing"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "DailyQ" in page
    assert '<meta name="viewport"' in page


def test_pages_carry_the_security_headers(client, db):
    response = client.get(reverse("subscriptions:landing"))
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_admin_login_is_served_at_the_configured_path(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert "'unsafe-inline'" in response["Content-Security-Policy"]


def test_dev_outbox_lists_each_mail_once_in_its_table(client, ses, settings, db):
    from django.core.mail import send_mail

    send_mail("Only-in-the-table", "body", settings.DEFAULT_FROM_EMAIL, ["reader@example.org"])

    page = client.get(reverse("dev:outbox")).content.decode()

    # The site's flash messages (base.html) and the outbox's mails are different lists.
    assert 'class="messages"' not in page
    assert "OutboxMessage" not in page
    assert page.count("Only-in-the-table") == 1
    assert "<td>reader@example.org</td>" in page


@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_admin_is_branded_dailyq(client, admin_user, language):
    client.force_login(admin_user)
    for path in ("/admin/login/", "/admin/"):
        page = client.get(path, HTTP_ACCEPT_LANGUAGE=language, follow=True).content.decode()
        assert "Django" not in page, path
        title = re.search(r"<title>(.*?)</title>", page, flags=re.S).group(1)
        assert "DailyQ" in title, title
        header = re.search(r'id="site-name"><a href="/admin/">(.*?)</a>', page, flags=re.S).group(1)
        assert "DailyQ" in header, header


# --- The privacy policy ----------------------------------------------------------------


def privacy_page(client, language="en"):
    response = client.get(reverse("subscriptions:privacy"), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response.content.decode()


def test_privacy_policy_names_the_operator_the_officer_and_the_transfer_abroad(client, settings, db):
    settings.OPERATOR_NAME = "Example Labs Inc."
    settings.PRIVACY_OFFICER_NAME = "Kim Minji"
    settings.PRIVACY_CONTACT_EMAIL = "privacy@example.kr"
    settings.AWS_SES_REGION_NAME = "ap-northeast-2"
    settings.VERIFICATION_CODE_TTL_SECONDS = 900
    settings.DELIVERY_RETENTION_DAYS = 365
    settings.SES_EVENT_RETENTION_DAYS = 90
    settings.VERIFICATION_RETENTION_DAYS = 3

    page = privacy_page(client)

    assert "Example Labs Inc." in page
    assert "Kim Minji" in page
    assert '<a href="mailto:privacy@example.kr">privacy@example.kr</a>' in page
    assert "Amazon Web Services, Inc." in page
    assert "ap-northeast-2 (Asia Pacific (Seoul))" in page
    # What is kept and for how long, as the code does it today.
    assert "15 minutes" in page
    assert "deleted automatically after 365 days" in page
    assert "reports on it after 90 days" in page
    assert "deleted 3 days after it was confirmed" in page
    assert "a keyed hash of it instead of the address" in page
    assert "contact the operator" not in page.lower()


def test_privacy_policy_falls_back_to_the_sender_when_no_contact_is_set(client, settings, db):
    settings.OPERATOR_NAME = ""
    settings.PRIVACY_OFFICER_NAME = ""
    settings.PRIVACY_CONTACT_EMAIL = ""
    settings.DEFAULT_FROM_EMAIL = "DailyQ <hello@dailyq.example>"

    page = privacy_page(client, "ko")

    assert '<a href="mailto:hello@dailyq.example">hello@dailyq.example</a>' in page
    assert "개인정보 보호책임자" in page
    assert "Amazon Web Services, Inc." in page


# --- Link previews -------------------------------------------------------------------


def meta_tags(page: str) -> dict[str, str]:
    return dict(re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)"', page))


@pytest.mark.parametrize(("language", "locale"), [("ko", "ko_KR"), ("en", "en_US")])
def test_pages_carry_link_preview_tags_with_absolute_urls(client, settings, language, locale, db):
    from django.contrib.staticfiles import finders

    settings.SITE_URL = "https://dailyq.example"
    page = client.get(reverse("subscriptions:privacy"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    tags = meta_tags(page)

    assert tags["og:site_name"] == "DailyQ"
    assert tags["og:title"] and tags["og:description"] and tags["description"] == tags["og:description"]
    assert tags["og:url"] == "https://dailyq.example/privacy/"
    assert tags["og:locale"] == locale
    assert tags["twitter:card"] == "summary_large_image"
    image = tags["og:image"]
    assert image.startswith("https://dailyq.example/static/") and image.endswith(".png"), image
    # The image is a 1200x630 PNG, the size link previews ask for.
    png = Path(finders.find(image.removeprefix("https://dailyq.example/static/"))).read_bytes()[:24]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20]), int.from_bytes(png[20:24])) == (1200, 630)
    assert (tags["og:image:width"], tags["og:image:height"]) == ("1200", "630")


def test_a_question_page_previews_with_its_own_title(client, settings, db):
    from tests.factories import make_questions

    [question] = make_questions("backend", 1)
    page = client.get(reverse("mailer:question", args=[question.pk])).content.decode()
    assert meta_tags(page)["og:title"] == question.title


def test_favicon_ico_leads_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.ico"
