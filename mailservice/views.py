from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from mailservice import ratelimit
from mailservice.http import client_ip
from mailservice.ratelimit import Rate
from mailservice.selectors import service_health


@require_safe
@never_cache
def healthz(request):
    report = service_health()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


# Password guessing against the admin: a few tries per client and per
# username, counted in the shared cache for every web process.
ADMIN_LOGIN_RATE_PER_IP = Rate(limit=20, period=15 * 60)
ADMIN_LOGIN_RATE_PER_USER = Rate(limit=10, period=15 * 60)


def admin_login(request, extra_context=None):
    if request.method == "POST":
        try:
            ratelimit.hit("admin-login-ip", client_ip(request), ADMIN_LOGIN_RATE_PER_IP)
            username = (request.POST.get("username") or "").strip().lower()[:150]
            ratelimit.hit("admin-login-user", username, ADMIN_LOGIN_RATE_PER_USER)
        except ratelimit.RateLimited as exc:
            response = HttpResponse(
                f"Too many login attempts. Try again in {exc.retry_after} seconds.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(exc.retry_after)
            return response
    return admin.site.login(request, extra_context)
