"""CSRF on every POST: every URL the project routes, walked from the resolver,
refuses a POST without a valid token (403), except the two that must work
without one: the RFC 8058 one-click unsubscribe and the SES webhook."""

import re
import secrets

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from hypothesis import given
from hypothesis import strategies as st

from subscriptions import links
from subscriptions.models import Subscriber
from tests.factories import make_subscriber
from tests.properties.strategies import fuzz, unique

pytestmark = pytest.mark.django_db

EXEMPT_ROUTES = {"ses/events/", "unsubscribe/<str:token>/"}
CONVERTER_SAMPLES = {"int": "1", "path": "1", "str": "x", "slug": "x", "uuid": "00000000-0000-0000-0000-000000000000"}
# Regex routes get a sample by hand; a new one fails test_every_route_has_a_sample until added here.
REGEX_SAMPLES = {
    "^(?P<app_label>auth|subscriptions|mailer)/$": "subscriptions/",
    "(?P<url>.*)$": "no-such-page/",
}


def walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def concrete(route: str) -> str | None:
    for regex, sample in REGEX_SAMPLES.items():
        if route.endswith(regex):
            return "/" + route[: -len(regex)] + sample
    if "(?P" in route or route.startswith("^"):
        return None
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: CONVERTER_SAMPLES[m.group(1) or "str"], route)


ROUTES = [(route, pattern, concrete(route)) for route, pattern in walk(get_resolver().url_patterns)]
PATHS = sorted({(route, path) for route, _pattern, path in ROUTES if path})


def test_every_route_has_a_sample_that_reaches_it():
    assert len(ROUTES) > 50  # the admin's too
    for number, (route, _pattern, path) in enumerate(ROUTES):
        assert path is not None, f"add a sample for {route!r} to REGEX_SAMPLES"
        match = resolve(path)
        # A route may stand behind an earlier one with the same path (a project view put
        # before one of the admin's; the admin's catch-all behind everything).
        shadowed = any(earlier == path for _r, _p, earlier in ROUTES[:number]) or route.endswith("(?P<url>.*)$")
        assert match.route == route.replace("/^", "/") or shadowed, (route, path, match.route)


def test_only_one_click_unsubscribe_and_the_webhook_are_csrf_exempt():
    exempt = {route for route, pattern, _path in ROUTES if getattr(pattern.callback, "csrf_exempt", False)}
    assert exempt == EXEMPT_ROUTES


def csrf_token() -> str:
    return secrets.token_urlsafe(24)[:32].ljust(32, "a")


@fuzz(120)
@given(
    target=st.sampled_from(PATHS),
    body=st.dictionaries(
        st.sampled_from(["email", "code", "action", "categories", "language", "username", "password", "x"]),
        st.text(max_size=20),
        max_size=4,
    ),
    csrf=st.sampled_from(["none", "cookie only", "mismatched", "header mismatched", "token only", "garbage cookie"]),
)
def test_posts_without_a_valid_token_are_refused(target, body, csrf):
    route, path = target
    client = Client(enforce_csrf_checks=True)
    extra = {}
    if csrf in {"cookie only", "mismatched", "header mismatched"}:
        client.cookies["csrftoken"] = csrf_token()
    if csrf == "garbage cookie":
        client.cookies["csrftoken"] = "<script>\r\n"
    if csrf in {"mismatched", "token only"}:
        body = {**body, "csrfmiddlewaretoken": csrf_token()}
    if csrf == "header mismatched":
        extra["HTTP_X_CSRFTOKEN"] = csrf_token()

    response = client.post(path, body, **extra)

    if route in EXEMPT_ROUTES:
        assert response.status_code in {400, 404}  # refused for what it is (bad body or token), not for CSRF
    else:
        assert response.status_code == 403, (path, response.status_code)


def test_one_click_unsubscribe_works_without_a_token_and_the_webhook_without_csrf():
    subscriber = make_subscriber(f"{unique('c')}@example.org")
    mail_client = Client(enforce_csrf_checks=True)
    url = links.unsubscribe_url(subscriber.id).split("://", 1)[1]
    path = "/" + url.split("/", 1)[1]
    response = mail_client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert mail_client.post("/ses/events/", b"not json", content_type="text/plain").status_code == 400


@pytest.mark.usefixtures("eager_tasks", "relaxed_limits")
def test_the_same_posts_with_a_valid_token_get_through():
    """The 403s above are CSRF's: a visitor with the form's token is served."""
    visitor = Client(enforce_csrf_checks=True)
    visitor.get("/")
    token = visitor.cookies["csrftoken"].value
    form = {"email": f"{unique('c')}@example.org", "categories": ["backend"], "frequency": "daily", "consent": "on"}
    assert visitor.post("/subscribe/", {**form, "csrfmiddlewaretoken": token}).status_code == 302
    assert visitor.post("/subscribe/", form).status_code == 403

    subscriber = make_subscriber(f"{unique('c')}@example.org")
    manage = links.manage_path(subscriber.id)
    assert visitor.post(manage, {"action": "unsubscribe", "csrfmiddlewaretoken": token}).status_code == 302
    assert visitor.post("/i18n/setlang/", {"language": "en", "csrfmiddlewaretoken": token}).status_code == 302
    login = {"username": "x", "password": "y", "csrfmiddlewaretoken": token}
    assert visitor.post("/admin/login/", login).status_code == 200  # the form again, with its error


@fuzz(60)
@given(
    target=st.sampled_from(PATHS),
    # Not empty: the test client sends no content type with an empty body.
    body=st.one_of(st.binary(min_size=1, max_size=60), st.text(max_size=30).map(lambda text: text.encode("utf-16"))),
    charset=st.sampled_from(["utf-16", "UTF-16LE", "utf-32", "latin-1", "shift_jis", "utf8"]),
    token=st.booleans(),
)
def test_a_form_declaring_another_charset_is_a_400_on_every_route(target, body, charset, token):
    # Django reads a urlencoded form as UTF-8 only; its 400 for another charset used to end as a 500.
    _route, path = target
    client = Client(enforce_csrf_checks=True)
    if token:
        client.cookies["csrftoken"] = csrf_token()
    response = client.generic("POST", path, body, content_type=f"application/x-www-form-urlencoded; charset={charset}")
    assert response.status_code == 400, (path, response.status_code)
