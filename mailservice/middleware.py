from django.conf import settings

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
