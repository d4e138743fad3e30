"""The visitor's flows in a real chromium: subscribe, confirm, manage, unsubscribe.

pytest-django's live_server serves the site from a thread of this process, so
with `eager_tasks` the verification and welcome mails are sent during the
request and land in this process's locmem outbox (`django.core.mail.outbox`).
The code is read from the mail's subject, links from its text body.

SITE_URL is pointed at the live server (as it points at the site in any real
deployment), so the links in mail and the redirect after confirming lead back
to the server under test.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse
from playwright.sync_api import Page, Response, expect

from subscriptions import tokens
from subscriptions.models import Subscriber, Verification
from tests.browser.conftest import errors_of
from tests.factories import make_subscriber

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("eager_tasks"),
]

CODE = re.compile(r"\b(\d{6})\b")

# What a Korean visitor reads (locale/ko).
KO = {
    "email": "이메일",
    "backend": "백엔드",
    "frontend": "프론트엔드",
    # Each frequency's short name, then when its mail comes (the default schedule).
    "daily": "매일 · 월요일부터 금요일까지 한국 시간 오전 7시에 질문 하나",
    "weekly": "주간 모음 · 매주 월요일 한국 시간 오전 7시에 질문 5개를 한 번에",
    "consent": "개인정보 처리방침에 동의해요.",
    "subscribe": "구독하기",
    "check_mail": "메일을 확인해 주세요",
    "code": "6자리 인증 코드",
    "confirm": "인증하기",
    "wrong_code": "인증 코드가 틀렸거나 만료되었어요.",
    "your_subscription": "내 구독 정보",
    "subscribed": "구독이 완료되었어요. 첫 질문은 다음 발송일 한국 시간 오전 7시에 도착해요.",
    "subscribed_weekly": "구독이 완료되었어요. 첫 주간 모음은 다가오는 월요일 한국 시간 오전 7시에 도착해요.",
    "confirm_heading": "구독을 확인해 주세요",
    "confirm_button": "구독 확인하기",
    "save": "저장하기",
    "saved": "설정을 저장했어요.",
    "unsubscribe_all": "전체 구독 해지",
    "no_mail_now": "지금은 이 주소로 DailyQ 메일을 보내지 않아요.",
    "unsubscribe": "구독 해지",
    "unsubscribed": "구독 해지됨",
    "unsubscribed_lead": "완료되었어요. 앞으로 이 질문은 더 이상 보내드리지 않아요.",
    "please_wait": "잠시만 기다려 주세요",
    "too_many_codes": "인증 코드 요청이 너무 많아요. 잠시 후 다시 시도해 주세요.",
    "need_consent": "구독하려면 개인정보 처리방침에 동의해 주세요.",
    "too_long": "이메일 주소는 최대 254자까지 입력할 수 있어요.",
    "need_category": "분야를 하나 이상 선택해 주세요.",
    "need_category_manage": "분야를 하나 이상 선택하거나, 아래에서 구독을 해지해 주세요.",
    "change_language": "변경",
}


@pytest.fixture
def site(live_server, settings) -> str:
    """The live server's base URL, which is also SITE_URL (links in mail, the redirect after confirming)."""
    settings.SITE_URL = live_server.url
    return live_server.url


@pytest.fixture
def landing_url(site) -> str:
    return site + reverse("subscriptions:landing")


# --- Helpers -------------------------------------------------------------------------


def mails_to(address: str) -> list[mail.EmailMessage]:
    return [message for message in mail.outbox if message.to == [address]]


def code_for(address: str) -> str:
    """The code in the newest verification mail to `address`."""
    messages = [message for message in mails_to(address) if CODE.search(message.subject)]
    assert messages, f"no verification mail to {address}; outbox: {[(m.to, m.subject) for m in mail.outbox]}"
    return CODE.search(messages[-1].subject).group(1)


def link_in(message: mail.EmailMessage, site: str, kind: str) -> str:
    """The /<kind>/<token>/ link in a mail's text body, checked to lead to `site`."""
    match = re.search(rf"(https?://\S+?/{kind}/[^/\s]+/)", message.body)
    assert match, f"no /{kind}/ link in the mail {message.subject!r}:\n{message.body}"
    assert match.group(1).startswith(site + "/"), match.group(1)
    return match.group(1)


def page_status(page: Page, action, path: str) -> Response:
    """Run `action` (a click) and return the response to the POST to `path` it makes."""
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(path)) as info:
        action()
    return info.value


def fill_subscribe_form(
    page: Page,
    email: str,
    *,
    frontend: bool = False,
    weekly: bool = False,
    consent: bool = True,
    backend: bool = True,
    text: dict = KO,
) -> None:
    page.get_by_label(text["email"], exact=True).fill(email)
    backend_box = page.get_by_label(text["backend"], exact=True)
    expect(backend_box).to_be_checked()  # pre-checked
    if not backend:
        backend_box.uncheck()
    if frontend:
        page.get_by_label(text["frontend"], exact=True).check()
    expect(page.get_by_label(text["daily"], exact=True)).to_be_checked()  # the default
    if weekly:
        page.get_by_label(text["weekly"], exact=True).check()
    if consent:
        page.get_by_role("checkbox", name=text["consent"]).check()


def subscribe(page: Page, landing_url: str, email: str, **choices) -> Response:
    """Open the landing page, fill the form, submit; return the response to the POST."""
    page.goto(landing_url)
    fill_subscribe_form(page, email, **choices)
    return page_status(page, page.get_by_role("button", name=KO["subscribe"], exact=True).click, "/subscribe/")


def expect_verify_page(page: Page, email: str) -> None:
    expect(page).to_have_url(re.compile(r"/verify/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(KO["check_mail"])
    expect(page.locator("p.lead strong")).to_have_text(email)


def enter_code(page: Page, code: str) -> Response:
    page.get_by_label(KO["code"], exact=True).fill(code)
    return page_status(page, page.get_by_role("button", name=KO["confirm"], exact=True).click, "/verify/")


def expect_manage_page(page: Page, email: str, message: str | None = None) -> None:
    expect(page).to_have_url(re.compile(r"/manage/[^/]+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(KO["your_subscription"])
    expect(page.locator("p.lead")).to_have_text(email)
    if message is not None:
        expect(page.get_by_role("status")).to_have_text(message)


def errors_besides_status(page: Page, *statuses: int) -> list[str]:
    """errors_of(page) without chromium's report of the error statuses the test asked for.

    Chromium logs every 4xx document load as a console error ("Failed to load
    resource: ... status of 400"); a form answered with 400 is by design.
    """
    expected = tuple(
        f"console: Failed to load resource: the server responded with a status of {status} " for status in statuses
    )
    return [error for error in errors_of(page) if not error.startswith(expected)]


def active_categories(subscriber: Subscriber) -> set[str]:
    return set(subscriber.subscriptions.filter(is_active=True).values_list("category", flat=True))


def assert_no_horizontal_scroll(page: Page) -> None:
    """The content fits the screen's width.

    On a mobile viewport chromium widens the layout viewport to fit content
    that is too wide (zooming the page out), so window.innerWidth growing past
    the screen's width is the overflow just as much as scrollWidth > innerWidth.
    """
    screen_width = page.viewport_size["width"]
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width == screen_width, (
        f"horizontal scroll on {page.url}: {scroll_width}px of content, {inner_width}px layout viewport, "
        f"{screen_width}px screen"
    )


def manage_url(site: str, subscriber: Subscriber) -> str:
    return site + reverse("subscriptions:manage", args=[tokens.make_token(tokens.Purpose.MANAGE, {"s": subscriber.id})])


# --- Subscribing and confirming ------------------------------------------------------


def test_subscribe_and_confirm_with_the_code(page, landing_url):
    email = "minji@example.com"

    response = subscribe(page, landing_url, email, frontend=True, weekly=True)

    assert response.status == 302
    expect_verify_page(page, email)
    assert Subscriber.objects.get(email=email).status == Subscriber.Status.PENDING
    assert len(mails_to(email)) == 1, "exactly one verification mail"

    response = enter_code(page, code_for(email))

    assert response.status == 302
    expect_manage_page(page, email, KO["subscribed_weekly"])
    # The manage page shows what was chosen on the landing page.
    expect(page.get_by_label(KO["backend"], exact=True)).to_be_checked()
    expect(page.get_by_label(KO["frontend"], exact=True)).to_be_checked()
    expect(page.get_by_label(KO["weekly"], exact=True)).to_be_checked()
    subscriber = Subscriber.objects.get(email=email)
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.frequency == "weekly"
    assert subscriber.language == "ko"
    assert subscriber.consented_at is not None
    assert active_categories(subscriber) == {"backend", "frontend"}
    page.wait_for_load_state("networkidle")
    assert errors_of(page) == []


def test_a_wrong_code_is_refused_and_the_right_one_still_works(page, landing_url):
    email = "wrong.code@example.com"
    subscribe(page, landing_url, email)
    expect_verify_page(page, email)
    code = code_for(email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    response = enter_code(page, wrong)

    assert response.status == 400
    expect_verify_page(page, email)
    expect(page.get_by_role("alert")).to_contain_text(KO["wrong_code"])
    expect(page.get_by_label(KO["code"], exact=True)).to_have_attribute("aria-invalid", "true")
    subscriber = Subscriber.objects.get(email=email)
    assert subscriber.status == Subscriber.Status.PENDING
    assert not subscriber.subscriptions.exists()
    assert Verification.objects.get(subscriber=subscriber).attempts == 1

    # A typo is not the end: the right code still confirms.
    assert enter_code(page, code).status == 302
    expect_manage_page(page, email, KO["subscribed"])
    assert Subscriber.objects.get(email=email).status == Subscriber.Status.ACTIVE
    assert errors_besides_status(page, 400) == []


def test_the_confirm_link_shows_a_button_and_only_the_button_confirms(page, make_page, site, landing_url):
    email = "link.clicker@example.com"
    subscribe(page, landing_url, email, frontend=True)
    expect_verify_page(page, email)
    (verification_mail,) = mails_to(email)
    confirm_link = link_in(verification_mail, site, "confirm")
    # Opened from the mail app: another browser context, no cookies from the form.
    mail_browser = make_page()

    response = mail_browser.goto(confirm_link)

    assert response is not None and response.status == 200
    expect(mail_browser.get_by_role("heading", level=1)).to_have_text(KO["confirm_heading"])
    button = mail_browser.get_by_role("button", name=KO["confirm_button"], exact=True)
    expect(button).to_be_visible()
    # Opening the link (what a mail scanner does) changed nothing.
    subscriber = Subscriber.objects.get(email=email)
    assert subscriber.status == Subscriber.Status.PENDING
    assert not subscriber.subscriptions.exists()
    assert Verification.objects.get(subscriber=subscriber).confirmed_at is None

    assert page_status(mail_browser, button.click, confirm_link.removeprefix(site)).status == 302

    expect_manage_page(mail_browser, email, KO["subscribed"])
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert active_categories(subscriber) == {"backend", "frontend"}
    mail_browser.wait_for_load_state("networkidle")
    assert errors_of(mail_browser) == []
    assert errors_of(page) == []


# --- After subscribing -----------------------------------------------------------------


def test_manage_page_changes_settings_and_unsubscribes_from_everything(page, site):
    subscriber = make_subscriber("manager@example.com", categories=("backend",), frequency="daily")
    url = manage_url(site, subscriber)
    page.goto(url)
    expect_manage_page(page, subscriber.email)
    backend = page.get_by_label(KO["backend"], exact=True)
    frontend = page.get_by_label(KO["frontend"], exact=True)
    expect(backend).to_be_checked()
    expect(frontend).not_to_be_checked()
    expect(page.get_by_label(KO["daily"], exact=True)).to_be_checked()
    save = page.get_by_role("button", name=KO["save"], exact=True)

    # No category at all is refused, with a way out named.
    backend.uncheck()
    assert page_status(page, save.click, url.removeprefix(site)).status == 400
    expect(page.get_by_role("alert")).to_have_text(KO["need_category_manage"])
    assert active_categories(subscriber) == {"backend"}

    # Both categories, weekly.
    page.get_by_label(KO["backend"], exact=True).check()
    page.get_by_label(KO["frontend"], exact=True).check()
    page.get_by_label(KO["weekly"], exact=True).check()
    assert page_status(page, save.click, url.removeprefix(site)).status == 302

    expect_manage_page(page, subscriber.email, KO["saved"])
    expect(page.get_by_label(KO["frontend"], exact=True)).to_be_checked()
    expect(page.get_by_label(KO["weekly"], exact=True)).to_be_checked()
    subscriber.refresh_from_db()
    assert subscriber.frequency == "weekly"
    assert active_categories(subscriber) == {"backend", "frontend"}
    assert subscriber.status == Subscriber.Status.ACTIVE

    # Unsubscribe from everything.
    page.get_by_role("button", name=KO["unsubscribe_all"], exact=True).click()

    expect_manage_page(page, subscriber.email)
    expect(page.locator("main")).to_contain_text(KO["no_mail_now"])
    expect(page.get_by_role("button", name=KO["save"], exact=True)).to_have_count(0)
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribed_at is not None
    assert active_categories(subscriber) == set()
    assert errors_besides_status(page, 400) == []


def test_the_unsubscribe_link_in_the_welcome_mail(page, make_page, site, landing_url):
    email = "leaving@example.com"
    subscribe(page, landing_url, email, frontend=True)
    enter_code(page, code_for(email))
    expect_manage_page(page, email, KO["subscribed"])
    welcome = mails_to(email)[-1]
    assert not CODE.search(welcome.subject), "the newest mail should be the welcome mail"
    unsubscribe_link = link_in(welcome, site, "unsubscribe")
    mail_browser = make_page()

    response = mail_browser.goto(unsubscribe_link)

    assert response is not None and response.status == 200
    expect(mail_browser.get_by_role("heading", level=1)).to_have_text(KO["unsubscribe"])
    expect(mail_browser.locator("p.lead")).to_contain_text(email)
    assert Subscriber.objects.get(email=email).status == Subscriber.Status.ACTIVE, "GET must not unsubscribe"

    mail_browser.get_by_role("button", name=KO["unsubscribe"], exact=True).click()

    expect(mail_browser.get_by_role("heading", level=1)).to_have_text(KO["unsubscribed"])
    expect(mail_browser.locator("p.lead")).to_have_text(KO["unsubscribed_lead"])
    subscriber = Subscriber.objects.get(email=email)
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert active_categories(subscriber) == set()
    assert errors_of(mail_browser) == []


# --- Other browsers ------------------------------------------------------------------


def test_subscribing_on_a_phone(phone_page, landing_url):
    email = "phone.user@example.com"
    phone_page.goto(landing_url)
    expect(phone_page.get_by_role("button", name=KO["subscribe"], exact=True)).to_be_visible()
    assert_no_horizontal_scroll(phone_page)

    fill_subscribe_form(phone_page, email, frontend=True)
    phone_page.get_by_role("button", name=KO["subscribe"], exact=True).tap()

    expect_verify_page(phone_page, email)
    expect(phone_page.get_by_label(KO["code"], exact=True)).to_have_attribute("inputmode", "numeric")
    assert_no_horizontal_scroll(phone_page)
    assert code_for(email)
    assert errors_of(phone_page) == []


def test_subscribe_and_confirm_without_javascript(no_js_page, landing_url):
    email = "no.script@example.com"

    assert subscribe(no_js_page, landing_url, email, weekly=True).status == 302
    expect_verify_page(no_js_page, email)
    assert enter_code(no_js_page, code_for(email)).status == 302

    expect_manage_page(no_js_page, email, KO["subscribed_weekly"])
    subscriber = Subscriber.objects.get(email=email)
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.frequency == "weekly"
    assert active_categories(subscriber) == {"backend"}


@pytest.mark.parametrize(
    ("email", "choices", "error"),
    [
        ("no.consent@example.com", {"consent": False}, KO["need_consent"]),
        ("a" * 250 + "@example.com", {}, KO["too_long"]),
        ("no.category@example.com", {"backend": False}, KO["need_category"]),
    ],
    ids=["without-consent", "address-too-long", "no-category"],
)
def test_form_errors_are_shown_on_the_page(page, landing_url, email, choices, error):
    response = subscribe(page, landing_url, email, frontend=False, **choices)

    assert response.status == 400
    expect(page).to_have_url(re.compile(r"/subscribe/$"))
    expect(page.get_by_role("alert")).to_have_text(error)
    # What was typed is kept, so only the mistake needs fixing.
    expect(page.get_by_label(KO["email"], exact=True)).to_have_value(email)
    assert not Subscriber.objects.exists()
    assert mail.outbox == []
    assert errors_besides_status(page, 400) == []


# --- Language ----------------------------------------------------------------------------


def test_an_english_browser_gets_the_english_page(make_page, landing_url):
    page = make_page(locale="en-US")

    page.goto(landing_url)

    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Subscribe", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Subscribe", exact=True)).to_be_visible()
    expect(page.get_by_label("Email", exact=True)).to_be_visible()
    assert errors_of(page) == []


def test_the_language_menu_switches_to_english(page, site, landing_url):
    page.goto(landing_url)
    expect(page.get_by_role("button", name=KO["subscribe"], exact=True)).to_be_visible()

    page.locator("select[name=language]").select_option("en")
    page.get_by_role("button", name=KO["change_language"], exact=True).click()

    expect(page).to_have_url(landing_url)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Subscribe", exact=True)).to_be_visible()
    expect(page.locator("select[name=language]")).to_have_value("en")
    # The choice sticks on the next page.
    page.goto(site + reverse("subscriptions:privacy"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Privacy policy")
    assert errors_of(page) == []


# --- Limits --------------------------------------------------------------------------------


def test_too_many_codes_from_one_ip_get_the_please_wait_page(page, landing_url, settings):
    settings.VERIFICATION_CODES_PER_IP_PER_HOUR = 1
    assert subscribe(page, landing_url, "first@example.com").status == 302
    expect_verify_page(page, "first@example.com")

    response = subscribe(page, landing_url, "second@example.com")

    assert response.status == 429
    assert int(response.headers["retry-after"]) > 0
    expect(page.get_by_role("heading", level=1)).to_have_text(KO["please_wait"])
    expect(page.locator("p.lead")).to_have_text(KO["too_many_codes"])
    assert not Subscriber.objects.filter(email="second@example.com").exists()
    assert mails_to("second@example.com") == []
    assert len(mails_to("first@example.com")) == 1
    assert errors_besides_status(page, 429) == []
