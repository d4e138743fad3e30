import logging

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpResponseBadRequest
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

# Django admin sets a few inline style attributes; everything else is held to
# the strict policy in settings.CONTENT_SECURITY_POLICY.
ADMIN_POLICY_EXTRA = {"style-src": "'self' 'unsafe-inline'"}


def _with_overrides(policy: str, overrides: dict[str, str]) -> str:
    directives = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            directives[name] = value
    directives.update(overrides)
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    """Adds Content-Security-Policy to every response that has none.

    A view that needs another policy (the dev outbox shows mail HTML) sets
    the header itself and is left alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY
        self.admin_policy = _with_overrides(self.policy, ADMIN_POLICY_EXTRA)
        self.admin_prefix = "/" + settings.ADMIN_URL

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            admin = request.path.startswith(self.admin_prefix)
            response["Content-Security-Policy"] = self.admin_policy if admin else self.policy
        return response


class RejectUnreadableFormsMiddleware:
    """Answers 400 to a form POST that Django cannot read, before anything reads it.

    Django raises BadRequest for a urlencoded body declaring a charset other
    than UTF-8, but its 400 handler reads the POST again (for the CSRF token),
    so the error escaped as a 500 from every door, and each 500 mails ADMINS.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            try:
                request.POST  # noqa: B018 (parsed here, once, so that no later reader raises)
            except BadRequest as exc:
                logger.warning("Unreadable form POST to %s: %s", request.path, exc)
                return HttpResponseBadRequest(
                    _("The form could not be read. Send it again from the page."),
                    content_type="text/plain; charset=utf-8",
                )
        return self.get_response(request)
