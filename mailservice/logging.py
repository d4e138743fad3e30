import logging


class SkipHealthChecks(logging.Filter):
    """Drop django.request records for /healthz (see LOGGING in settings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return getattr(request, "path", None) != "/healthz"
