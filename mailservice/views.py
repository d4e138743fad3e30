from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from mailservice.selectors import may_see_health_details, public_health, service_health


@require_safe
@never_cache
def healthz(request):
    report = service_health()
    status = 200 if report["status"] == "ok" else 503
    if not may_see_health_details(authorization=request.headers.get("Authorization", "")):
        report = public_health(report)
    return JsonResponse(report, status=status)
