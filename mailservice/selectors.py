"""Reads about the service itself: health of the parts it depends on."""

import hmac
import logging
import os
import time
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from mailservice.services import HEARTBEAT_CACHE_KEY

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 3


@dataclass
class Check:
    ok: bool
    duration_ms: float
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"status": "ok" if self.ok else "error", "duration_ms": round(self.duration_ms, 1), **self.info}


def _timed(name: str, probe) -> Check:
    started = time.perf_counter()
    try:
        info = probe() or {}
        ok = True
    except Exception as exc:
        # The cause goes to the log; the public answer names only its type,
        # so /healthz never shows hostnames or credentials.
        logger.warning("health check %s failed: %r", name, exc)
        info = {"error": type(exc).__name__}
        ok = False
    return Check(ok=ok, duration_ms=(time.perf_counter() - started) * 1000, info=info)


def _probe_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _probe_broker() -> dict:
    from mailservice.celery import app

    with app.connection_for_write(connect_timeout=HEALTH_TIMEOUT_SECONDS) as conn:
        transport = conn.transport_cls
        if transport == "filesystem":
            folder = conn.transport_options["data_folder_out"]
            if not os.access(folder, os.W_OK):
                raise PermissionError("queue folder is not writable")
        else:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=HEALTH_TIMEOUT_SECONDS)
            _ = conn.default_channel  # opening a channel is what makes the Redis transport ping
    return {"transport": transport}


def _probe_ses() -> dict:
    from mailer.ses import account_status

    # Asked afresh (the gate in _check_ses keeps that to once a period), and
    # kept in the cache the sender and the dashboard read the account from.
    account_status(refresh=True, timeout=HEALTH_TIMEOUT_SECONDS)
    if settings.SES_EMULATOR:
        endpoint = "emulator"
    elif settings.AWS_SES_REGION_ENDPOINT_URL:
        endpoint = "custom"
    else:
        endpoint = "aws"
    return {"endpoint": endpoint, "region": settings.AWS_SES_REGION_NAME}


# /healthz is public and not rate-limited, while SES allows GetSendQuota about
# once a second for the whole account (the sender needs it too). So all web
# processes together ask SES at most once per period: whoever adds the gate
# key to the shared cache asks; every other request reports that verdict.
SES_CHECK_SECONDS = 60
SES_RECHECK_AFTER_FAILURE_SECONDS = 10  # an outage's end shows soon
SES_GATE_KEY = "health:ses:asking"
SES_VERDICT_KEY = "health:ses:verdict"


def _check_ses() -> Check:
    if cache.add(SES_GATE_KEY, True, SES_CHECK_SECONDS):
        check = _timed("ses", _probe_ses)
        check.info["checked_at"] = timezone.now().isoformat()
        cache.set(SES_VERDICT_KEY, asdict(check), None)
        if not check.ok:
            cache.set(SES_GATE_KEY, True, SES_RECHECK_AFTER_FAILURE_SECONDS)
        return check
    verdict = cache.get(SES_VERDICT_KEY)
    if verdict is None:
        # Another request is asking SES for the first time right now.
        return Check(ok=False, duration_ms=0, info={"error": "NotCheckedYet"})
    return Check(**verdict)


def _last_heartbeat() -> str | None:
    try:
        return cache.get(HEARTBEAT_CACHE_KEY)
    except Exception as exc:
        logger.warning("cannot read the worker heartbeat: %r", exc)
        return None


def service_health() -> dict:
    """Reachability of the database, the Celery broker and SES.

    `healthy` is true only when all three answer; SES's answer may be up to
    a minute old (its `checked_at` says when). The worker's last heartbeat is
    reported for operators but does not decide health: a web process can
    serve while workers restart.
    """
    checks = {
        "database": _timed("database", _probe_database),
        "broker": _timed("broker", _probe_broker),
        "ses": _check_ses(),
    }
    healthy = all(check.ok for check in checks.values())
    return {
        "status": "ok" if healthy else "error",
        "checks": {name: check.as_dict() for name, check in checks.items()},
        "worker": {"last_heartbeat": _last_heartbeat()},
    }


def may_see_health_details(*, authorization: str) -> bool:
    """Whether a /healthz request, by its Authorization header, is shown what failed and the heartbeat."""
    if settings.HEALTHZ_PUBLIC_DETAILS:
        return True
    scheme, _, token = authorization.partition(" ")
    expected = settings.HEALTHZ_TOKEN
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode())


def public_health(report: dict) -> dict:
    return {"status": report["status"]}
