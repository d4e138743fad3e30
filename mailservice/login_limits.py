"""Password guessing at the admin login, limited with django-axes in the shared cache.

A client may get a username's password wrong AXES_FAILURE_LIMIT times, and
any passwords wrong ADMIN_LOGIN_FAILURES_PER_CLIENT times, per cool-off
period; then that client is refused. Nothing is counted per username alone,
so someone else's guesses never lock the real admin out of their own
address. A username is counted the way Django's login form reads it (NFKC),
case-folded, so no other spelling of a locked name gets in; an IPv6 client
is its /64 network, which one machine commonly holds whole.
"""

import ipaddress
import json
import unicodedata

from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cache, get_client_cache_keys, get_cool_off
from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _

from mailservice.http import client_ip


def login_username(request, credentials: dict | None) -> str:
    value = credentials.get("username") if credentials else request.POST.get("username")
    name = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", str(value or "")).casefold()).strip()
    # Axes keys a (username, client) pair by the two strings joined; quoting the
    # name keeps "admin1" + "2.3.4.5" apart from "admin" + "12.3.4.5".
    return json.dumps(name[:150])


def login_client(request) -> str:
    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginFailures(AxesCacheHandler):
    """Axes' cache handler with a limit per (username, client) and a higher one per client.

    Axes compares the largest of its counts with one limit, so the client's
    count is reported on the pair's scale.
    """

    def __init__(self):
        pass

    @property
    def cache(self):
        # Looked up on use, not kept from startup: Django's cache connections are per thread.
        return get_cache()

    def get_failures(self, request, credentials: dict | None = None) -> int:
        pair_key, client_key = get_client_cache_keys(request, credentials)
        pair = self.cache.get(pair_key, default=0)
        client = self.cache.get(client_key, default=0)
        return max(pair, client * settings.AXES_FAILURE_LIMIT // settings.ADMIN_LOGIN_FAILURES_PER_CLIENT)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and getattr(request, "axes_locked_out", False):
            # Axes decided on the raw counts; decide again on the scaled ones.
            request.axes_locked_out = self.is_locked(request, credentials)


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    seconds = int(get_cool_off(request).total_seconds())
    response = HttpResponse(
        _("Too many failed logins from your address. Try again in %(minutes)d minutes.")
        % {"minutes": max(1, seconds // 60)},
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(seconds)
    return response
