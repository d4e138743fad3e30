"""The public pages, through the test client: what a visitor and a mail client see."""

import logging
import re

import pytest
from django.urls import reverse

from mailer import ses as mailer_ses
from subscriptions import links
from subscriptions.models import Subscriber, Subscription
from tests.conftest import free_port
from tests.factories import make_subscriber
from tests.subscriptions.conftest import code_from, confirm_link_from, mails_to

pytestmark = pytest.mark.django_db(transaction=True)

FORM = {"categories": ["backend"], "frequency": "daily", "consent": "on"}


def post_subscribe(client, email, *, remote_addr="192.0.2.10", headers=None, **fields):
    return client.post(
        reverse("subscriptions:subscribe"),
        {**FORM, "email": email, **fields},
        REMOTE_ADDR=remote_addr,
        **(headers or {}),
    )


def page_text(response) -> str:
    # Compare pages without the per-response CSRF token.
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_subscribe_then_confirm_with_the_mailed_code(client):
    response = post_subscribe(client, "reader@example.org")
    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:verify")

    page = client.get(reverse("subscriptions:verify"))
    assert "reader@example.org" in page.content.decode()

    code = code_from(mails_to("reader@example.org")[0])
    confirmed = client.post(reverse("subscriptions:verify"), {"code": code})
    assert confirmed.status_code == 302
    assert "/manage/" in confirmed["Location"]
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    # The welcome mail arrives.
    assert "/manage/" in mails_to("reader@example.org")[-1].body


def test_wrong_code_is_a_clear_error_and_counts(client):
    post_subscribe(client, "reader@example.org")
    response = client.post(reverse("subscriptions:verify"), {"code": "000000"})
    if code_from(mails_to("reader@example.org")[0]) == "000000":
        pytest.skip("the mailed code happened to be 000000")
    assert response.status_code == 400
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert client.post(reverse("subscriptions:verify"), {"code": "12ab"}).status_code == 400


def test_too_many_codes_answer_429_with_retry_after(client, settings):
    settings.VERIFICATION_CODES_PER_IP_PER_HOUR = 2
    post_subscribe(client, "a@example.org", remote_addr="203.0.113.5")
    post_subscribe(client, "b@example.org", remote_addr="203.0.113.5")
    response = post_subscribe(client, "c@example.org", remote_addr="203.0.113.5")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0 <= 3600
    assert not Subscriber.objects.filter(email="c@example.org").exists()


def test_resend_before_the_cooldown_answers_429(client):
    post_subscribe(client, "reader@example.org")
    response = client.post(reverse("subscriptions:resend"), REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0 <= 60
    assert len(mails_to("reader@example.org")) == 1


def test_client_ip_is_read_from_the_trusted_proxy_only(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.VERIFICATION_CODES_PER_IP_PER_HOUR = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    first = client.post(
        reverse("subscriptions:subscribe"), {**FORM, "email": "a@example.org"}, HTTP_X_FORWARDED_FOR="1.1.1.1", **proxy
    )
    # A spoofed left-most entry does not make a new client.
    second = client.post(
        reverse("subscriptions:subscribe"),
        {**FORM, "email": "b@example.org"},
        HTTP_X_FORWARDED_FOR="9.9.9.9, 1.1.1.1",
        **proxy,
    )
    other = client.post(
        reverse("subscriptions:subscribe"), {**FORM, "email": "c@example.org"}, HTTP_X_FORWARDED_FOR="2.2.2.2", **proxy
    )
    assert (first.status_code, second.status_code, other.status_code) == (302, 429, 302)


def test_answers_are_identical_for_new_pending_active_and_unsubscribed_addresses(client, settings):
    settings.VERIFICATION_RESEND_COOLDOWN_SECONDS = 0
    # An active and an unsubscribed subscriber, and a pending one.
    for email in ["active@example.org", "gone@example.org"]:
        post_subscribe(client, email)
        client.post(reverse("subscriptions:verify"), {"code": code_from(mails_to(email)[-1])})
    Subscription.objects.filter(subscriber__email="gone@example.org").update(is_active=False)
    Subscriber.objects.filter(email="gone@example.org").update(status=Subscriber.Status.UNSUBSCRIBED)
    post_subscribe(client, "pending@example.org")

    answers = []
    for email in ["new@example.org", "pending@example.org", "active@example.org", "gone@example.org"]:
        visitor = client.__class__()
        posted = post_subscribe(visitor, email)
        landing = visitor.get(posted["Location"])
        text = page_text(landing).replace(email, "EMAIL")
        answers.append((posted.status_code, posted["Location"], landing.status_code, text))
    assert all(answer == answers[0] for answer in answers[1:])
    # The active subscriber was sent a way to manage, not a second subscription.
    assert Subscription.objects.filter(subscriber__email="active@example.org").count() == 1
    assert "/manage/" in mails_to("active@example.org")[-1].body


def test_invalid_form_input_gets_clear_messages(client):
    response = client.post(reverse("subscriptions:subscribe"), {"email": "x" * 300 + "@example.org"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "254" in body  # the length limit is named
    assert not Subscriber.objects.exists()
    response = client.post(reverse("subscriptions:subscribe"), {**FORM, "email": "ok@example.org", "consent": ""})
    assert response.status_code == 400
    assert not Subscriber.objects.exists()


def test_confirm_link_get_shows_a_button_and_post_confirms(client):
    post_subscribe(client, "reader@example.org")
    link = confirm_link_from(mails_to("reader@example.org")[0])
    path = link.split("://", 1)[1].split("/", 1)[1]

    page = client.get("/" + path)
    assert page.status_code == 200
    assert '<form method="post"' in page.content.decode()
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING  # a scanner's GET does nothing

    done = client.post("/" + path)
    assert done.status_code == 302
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    assert client.get("/" + path).status_code == 404  # used


def test_unsubscribe_link_from_the_welcome_mail_works_by_one_click_post(client):
    post_subscribe(client, "reader@example.org")
    client.post(reverse("subscriptions:verify"), {"code": code_from(mails_to("reader@example.org")[0])})
    welcome = mails_to("reader@example.org")[-1]
    header = welcome.extra_headers["List-Unsubscribe"]
    url = re.fullmatch(r"<(https?://[^>]+)>", header).group(1)
    assert url in welcome.body
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]

    mail_client = client.__class__(enforce_csrf_checks=True)  # no cookie, no token
    assert mail_client.get(path).status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE

    response = mail_client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED
    assert mail_client.post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200  # harmless again


def test_manage_page_changes_preferences_and_unsubscribes_one_category(client):
    post_subscribe(client, "reader@example.org", categories=["backend", "frontend"])
    confirmed = client.post(reverse("subscriptions:verify"), {"code": code_from(mails_to("reader@example.org")[0])})
    manage = confirmed["Location"]

    page = client.get(manage)
    assert page.status_code == 200 and "reader@example.org" in page.content.decode()

    client.post(manage, {"action": "save", "categories": ["frontend"], "frequency": "weekly"})
    subscriber = Subscriber.objects.get()
    assert subscriber.frequency == "weekly"
    assert list(subscriber.subscriptions.filter(is_active=True).values_list("category", flat=True)) == ["frontend"]

    assert client.post(manage, {"action": "save", "categories": [], "frequency": "weekly"}).status_code == 400

    client.post(manage, {"action": "unsubscribe", "category": "frontend"})
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED


@pytest.mark.parametrize("door", ["manage page", "unsubscribe link"])
def test_a_category_dailyq_does_not_have_unsubscribes_from_everything(client, door):
    # A retired category in an old link, or a forged form: in doubt, all mail stops.
    subscriber = make_subscriber("reader@example.org", categories=("backend", "frontend"))
    if door == "manage page":
        response = client.post(
            path_of(links.manage_url(subscriber.id)), {"action": "unsubscribe", "category": "retired"}
        )
        assert response.status_code == 302
    else:
        path = path_of(links.unsubscribe_url(subscriber.id, "retired"))
        page = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
        assert "retired" not in page.content.decode()
        assert client.post(path).status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert not subscriber.subscriptions.filter(is_active=True).exists()


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_manage_page_needs_csrf(client):
    post_subscribe(client, "reader@example.org")
    manage = client.post(reverse("subscriptions:verify"), {"code": code_from(mails_to("reader@example.org")[0])})[
        "Location"
    ]
    strict = client.__class__(enforce_csrf_checks=True)
    assert strict.post(manage, {"action": "unsubscribe"}).status_code == 403
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE


@pytest.mark.parametrize("name", ["manage", "unsubscribe", "confirm"])
def test_forged_links_show_a_friendly_404(client, name):
    response = client.get(reverse(f"subscriptions:{name}", args=["eyJzIjoxfQ:forged:signature"]))
    assert response.status_code == 404
    assert b"DailyQ" in response.content


def test_unsubscribe_token_cannot_open_the_manage_page(client):
    post_subscribe(client, "reader@example.org")
    client.post(reverse("subscriptions:verify"), {"code": code_from(mails_to("reader@example.org")[0])})
    url = re.search(r"https?://\S+/unsubscribe/(\S+)/", mails_to("reader@example.org")[-1].body).group(1)
    assert client.get(reverse("subscriptions:manage", args=[url])).status_code == 404


def unsubscribe_path(message) -> str:
    url = re.fullmatch(r"<(https?://[^>]+)>", message.extra_headers["List-Unsubscribe"]).group(1)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_the_unsubscribe_link_opens_no_way_to_manage_the_subscription(client):
    post_subscribe(client, "reader@example.org", categories=["backend", "frontend"])
    client.post(reverse("subscriptions:verify"), {"code": code_from(mails_to("reader@example.org")[0])})
    path = unsubscribe_path(mails_to("reader@example.org")[-1])
    # Someone holding only the List-Unsubscribe URL: a mail provider, a forwarded mail's reader.
    holder = client.__class__(HTTP_ACCEPT_LANGUAGE="en")

    page = holder.get(path)
    assert page.status_code == 200
    assert "/manage/" not in page.content.decode()

    done = holder.post(path)
    assert done.status_code == 200
    body = done.content.decode()
    assert "/manage/" not in body
    assert re.search(rf'<a href="{reverse("subscriptions:landing")}">Changed your mind\? Subscribe again</a>', body)
    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED


# --- SES's sandbox question, when SES does not answer ---------------------------------


@pytest.fixture
def ses_auto(ses, settings):
    """Production's SES_SANDBOX=auto against the emulator, whose quota of 200 reads as the sandbox."""
    settings.SES_EMULATOR = False
    settings.SES_SANDBOX = "auto"
    return ses


def stop_answering(settings) -> None:
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"


def test_subscribe_while_ses_is_unreachable_answers_503_and_keeps_the_form(client, ses_auto, settings, caplog):
    stop_answering(settings)
    with caplog.at_level(logging.WARNING, logger="subscriptions.services"):
        response = post_subscribe(
            client,
            "reader@example.org",
            categories=["frontend"],
            frequency="weekly",
            headers={"HTTP_ACCEPT_LANGUAGE": "en"},
        )

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    body = response.content.decode()
    assert "cannot be reached right now" in body and "try again" in body
    # Nothing the visitor typed is lost.
    assert re.search(r'<input type="email" name="email" value="reader@example.org"', body)
    assert re.search(r'<input type="checkbox" name="categories" value="frontend"[^>]* checked>', body)
    assert not re.search(r'<input type="checkbox" name="categories" value="backend"[^>]* checked>', body)
    assert re.search(r'<input type="radio" name="frequency" value="weekly"[^>]* checked>', body)
    assert re.search(r'<input type="checkbox" name="consent"[^>]* checked>', body)
    assert not Subscriber.objects.exists()
    assert any("SES did not answer" in record.getMessage() for record in caplog.records)


def test_an_ses_outage_answers_subscribers_and_strangers_alike(client, ses_auto, settings):
    ses_auto.verify("known@example.org", "stranger@example.org")
    make_subscriber("known@example.org")
    # The daily send asked SES about its subscribers, so their verdicts are cached.
    assert mailer_ses.allowed_recipients(["known@example.org"]) == {"known@example.org"}
    stop_answering(settings)

    answers = []
    for n, email in enumerate(["known@example.org", "stranger@example.org"]):
        response = post_subscribe(client.__class__(), email, remote_addr=f"192.0.2.{50 + n}")
        answers.append((response.status_code, page_text(response).replace(email, "EMAIL")))
    assert answers[0][0] == 503
    assert answers[0] == answers[1]


def test_rate_limits_apply_before_ses_is_asked(client, ses_auto, settings):
    settings.VERIFICATION_CODES_PER_IP_PER_HOUR = 1
    stop_answering(settings)
    assert post_subscribe(client, "a@example.org", remote_addr="203.0.113.7").status_code == 503
    # The next request from that client never reaches SES: the limit answers first.
    assert post_subscribe(client, "b@example.org", remote_addr="203.0.113.7").status_code == 429


def test_after_an_ses_outage_the_visitor_can_try_again_at_once(client, ses_auto, settings):
    ses_auto.verify("reader@example.org")
    stop_answering(settings)
    assert post_subscribe(client, "reader@example.org").status_code == 503

    settings.AWS_SES_REGION_ENDPOINT_URL = ses_auto.url
    response = post_subscribe(client, "reader@example.org")

    assert response.status_code == 302  # no resend cooldown: no code had been sent
    assert [m.to for m in ses_auto.messages()] == ["reader@example.org"]


def test_language_follows_the_browser_or_the_switch_and_the_mail_follows_the_subscriber(client):
    post_subscribe(client, "en@example.org", headers={"HTTP_ACCEPT_LANGUAGE": "en"})
    assert Subscriber.objects.get(email="en@example.org").language == "en"
    assert "Confirm your DailyQ subscription" in mails_to("en@example.org")[0].body

    switched = client.__class__()
    switched.post(reverse("set_language"), {"language": "en", "next": "/"})
    post_subscribe(switched, "switch@example.org", remote_addr="192.0.2.11")
    assert Subscriber.objects.get(email="switch@example.org").language == "en"

    post_subscribe(client.__class__(), "ko@example.org", remote_addr="192.0.2.12")
    assert Subscriber.objects.get(email="ko@example.org").language == "ko"
    html = mails_to("ko@example.org")[0].alternatives[0][0]
    assert '<html lang="ko">' in html


def test_privacy_page_exists(client):
    assert client.get(reverse("subscriptions:privacy")).status_code == 200
