from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_safe

from mailservice.selectors import may_see_health_details, public_health, service_health
from mailservice.source import source_archive


@require_safe
@never_cache
def healthz(request):
    report = service_health()
    status = 200 if report["status"] == "ok" else 503
    if not may_see_health_details(authorization=request.headers.get("Authorization", "")):
        report = public_health(report)
    return JsonResponse(report, status=status)


@require_safe
@cache_control(public=True, max_age=3600)
def source_code(request):
    """The source of the DailyQ this server runs (AGPL-3.0 section 13)."""
    response = HttpResponse(source_archive(), content_type="application/gzip")
    response["Content-Disposition"] = 'attachment; filename="dailyq-source.tar.gz"'
    return response
