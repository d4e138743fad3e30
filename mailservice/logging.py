import hashlib
import logging
import threading
import time
import traceback

from cachetools import TTLCache
from django.core.cache import cache
from django.utils.log import AdminEmailHandler

from mailservice import ratelimit
from mailservice.ratelimit import Rate

logger = logging.getLogger(__name__)


class SkipUnavailableAnswers(logging.Filter):
    """Drop django.request records of 503 answers (see LOGGING in settings).

    DailyQ answers 503 on purpose (/healthz while a dependency is down, the
    subscribe form while SES cannot be reached) and logs the cause as a
    warning. Left in, each would be an ERROR that mails ADMINS, through the
    very SES that is down, on every probe or visitor. An exception's 500 stays.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != 503


# Error mail goes out through SES, whose daily quota the daily send is capped
# at, and anyone can cause errors (a request naming a foreign host is one), so
# ADMINS hear of each kind of error at one place once per window, and of at
# most a few errors an hour in all. Every error is still logged.
ERROR_MAIL_WINDOW_SECONDS = 15 * 60
ERROR_MAILS = Rate(limit=10, period=3600)


def error_signature(record: logging.LogRecord) -> str:
    """The kind of error and where it was raised: the same bug gives the same signature."""
    if record.exc_info and record.exc_info[0] is not None:
        kind = f"{record.exc_info[0].__module__}.{record.exc_info[0].__qualname__}"
        frames = traceback.extract_tb(record.exc_info[2])
        place = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else f"{record.pathname}:{record.lineno}"
    else:
        kind = f"{record.name}: {record.msg}"
        place = f"{record.pathname}:{record.lineno}"
    return hashlib.sha256(f"{kind}|{place}".encode()).hexdigest()[:32]


class _LocalLimits:
    """The same limits for one process, for when the shared cache cannot be reached."""

    def __init__(self):
        self.lock = threading.Lock()
        self.signatures = TTLCache(maxsize=1024, ttl=ERROR_MAIL_WINDOW_SECONDS, timer=time.monotonic)
        self.sent: list[float] = []

    def allow(self, signature: str) -> bool:
        now = time.monotonic()
        with self.lock:
            if signature in self.signatures:
                return False
            self.signatures[signature] = True
            self.sent = [t for t in self.sent if now - t < ERROR_MAILS.period]
            if len(self.sent) >= ERROR_MAILS.limit:
                return False
            self.sent.append(now)
            return True


_local_limits = _LocalLimits()


def may_mail_admins_about(record: logging.LogRecord) -> bool:
    signature = error_signature(record)
    try:
        if not cache.add(f"admin-error-mail:{signature}", True, ERROR_MAIL_WINDOW_SECONDS):
            return False
        ratelimit.hit("admin-error-mails", "all", ERROR_MAILS)
        return True
    except ratelimit.RateLimited:
        return False
    except Exception:
        return _local_limits.allow(signature)


class ThrottledAdminEmailHandler(AdminEmailHandler):
    """Django's error mail to ADMINS, sent only as may_mail_admins_about allows."""

    def emit(self, record: logging.LogRecord) -> None:
        if may_mail_admins_about(record):
            super().emit(record)
