import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    """The client's address, trusting X-Forwarded-For only as far as our own proxies.

    Each of TRUSTED_PROXY_COUNT proxies appends the address it received the
    request from, so the client is the TRUSTED_PROXY_COUNT-th entry from the
    right; anything further left was written by the client and is ignored.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < count:
        return remote
    candidate = forwarded[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
