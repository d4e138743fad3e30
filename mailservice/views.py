from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from mailservice.selectors import service_health


@require_safe
@never_cache
def healthz(request):
    report = service_health()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
