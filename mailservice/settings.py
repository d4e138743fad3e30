"""DailyQ settings: one module, read from the environment.

With nothing configured the service runs on an embedded default (SQLite, a
filesystem Celery broker and a file cache under VAR_DIR, and the local SES
emulator). Setting DATABASE_URL, REDIS_URL / CELERY_BROKER_URL and the AWS
variables switches each part to a real service. Production mode
(DJANGO_ENV=production, or DEBUG off) refuses to start while a value it needs
is missing. `.env.example` documents every variable; a `.env` file is read
before this module loads (mailservice/envfile.py), the real environment first.
"""

import hashlib
import hmac
import os
from datetime import timedelta
from email.utils import getaddresses, parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from botocore.config import Config as BotoConfig
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    # An empty value counts as unset, so `KEY=` in .env keeps the default.
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name).lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false).")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_float(name: str, default: float) -> float:
    value = env_str(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = env_str(name)
    if not value:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


# --- Environment -------------------------------------------------------------

DJANGO_ENV = env_str("DJANGO_ENV", "development").lower()
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV={DJANGO_ENV!r}: use development or production.")
DEBUG = env_bool("DEBUG", DJANGO_ENV != "production")
PRODUCTION = DJANGO_ENV == "production" or not DEBUG
if DJANGO_ENV == "production" and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production.")

# Everything the embedded default writes (SQLite, broker queue, cache, beat's
# schedule) lives here; it is git-ignored.
VAR_DIR = Path(env_str("VAR_DIR") or BASE_DIR / "var").resolve()

# Production needs these; collected first so the error names all of them at once.
_missing: list[str] = []


def _require(name: str, value):
    if PRODUCTION and not value:
        _missing.append(name)
    return value


# --- Core ----------------------------------------------------------------------

SECRET_KEY = _require("SECRET_KEY", env_str("SECRET_KEY")) or "dev-only-insecure-key-do-not-use-in-production"
# Where the development server listens (Procfile: runserver WEB_HOST:WEB_PORT).
# Without SITE_URL a development run's links point there, in every process,
# so moving the port moves the links in mail with it.
WEB_HOST = env_str("WEB_HOST", "127.0.0.1")
WEB_PORT = env_int("WEB_PORT", 8000)
if not 0 < WEB_PORT < 65536:
    raise ImproperlyConfigured(f"WEB_PORT={env_str('WEB_PORT')!r} is not a port (1-65535).")
_served_host = "127.0.0.1" if WEB_HOST in {"0.0.0.0", "::", "[::]"} else WEB_HOST.strip("[]")  # noqa: S104
_served_host = f"[{_served_host}]" if ":" in _served_host else _served_host
DEV_SERVER_URL = f"http://{_served_host}:{WEB_PORT}"
SITE_URL = (_require("SITE_URL", env_str("SITE_URL")) or DEV_SERVER_URL).rstrip("/")
if urlsplit(SITE_URL).scheme not in {"http", "https"} or not urlsplit(SITE_URL).netloc:
    raise ImproperlyConfigured(f"SITE_URL={SITE_URL!r} must be an absolute http(s) URL.")
# In development the host the links point at is served too.
ALLOWED_HOSTS = _require("ALLOWED_HOSTS", env_list("ALLOWED_HOSTS")) or list(
    dict.fromkeys(["127.0.0.1", "localhost", "[::1]", urlsplit(SITE_URL).netloc.rsplit(":", 1)[0]])
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL])

# Behind N reverse proxies the client address is the N-th address from the
# right of X-Forwarded-For; with 0 only REMOTE_ADDR is trusted.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",  # its sitemap.xml template
    "axes",
    "mailservice",
    "subscriptions",
    "mailer",
]

# The header middleware comes first: WhiteNoise (production) answers static
# files from its place below them, and those need the headers too.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mailservice.middleware.ContentSecurityPolicyMiddleware",
    # Before anything reads a form: an unreadable one is a 400 here, not a 500 later.
    "mailservice.middleware.RejectUnreadableFormsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Last: turns a login refused for too many failures into its 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mailservice.urls"
WSGI_APPLICATION = "mailservice.wsgi.application"
ADMIN_URL = env_str("ADMIN_URL", "admin/").strip("/") + "/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "mailservice.context_processors.site",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Database --------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
if PRODUCTION and (not DATABASE_URL or DATABASE_URL.startswith("sqlite")):
    _missing.append("DATABASE_URL (PostgreSQL)")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # Web, worker and beat share this file: WAL lets readers run beside
            # the writer, IMMEDIATE avoids lock upgrades that fail mid-transaction.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

# --- Redis, cache and Celery -------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost//"
if PRODUCTION and not REDIS_URL:
    # The cache, the request limits and the SES send-rate limiter are shared
    # by every process through Redis.
    _missing.append("REDIS_URL")
if PRODUCTION and CELERY_BROKER_URL.split(":", 1)[0] in {"filesystem", "memory"}:
    _missing.append("CELERY_BROKER_URL (a broker server)")

if CELERY_BROKER_URL.startswith("filesystem:"):
    # kombu's filesystem transport: every process reads and writes one folder,
    # so web, beat and any number of workers on this machine share the queue.
    _queue_dir = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    _queue_dir.mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task not acknowledged within this time goes back to the queue (acks_late).
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    }

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "dailyq"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / "cache",
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "dailyq"),
        }
    }

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "dailyq")
# A task is acknowledged after it ran, so a worker that dies mid-task leaves it
# to be redelivered; tasks are written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 180)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection before and after each
# task unless this is set: a send batch then paid for a new PostgreSQL
# connection, a backend with cold caches. With it set the
# fixup closes them only every this many tasks, and mailservice/celery.py gives
# tasks Django's request lifecycle instead: CONN_MAX_AGE and health checks.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "Asia/Seoul"

# --- Email and Amazon SES --------------------------------------------------------------

# Tests swap this for Django's in-memory outbox; every other mode sends through SES.
EMAIL_BACKEND = "django_ses.SESBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "DailyQ <dailyq@example.com>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
ADMINS = [(name, addr) for name, addr in getaddresses(env_list("ADMINS")) if addr]
if not parseaddr(DEFAULT_FROM_EMAIL)[1]:
    raise ImproperlyConfigured(f"DEFAULT_FROM_EMAIL={DEFAULT_FROM_EMAIL!r} has no address.")

AWS_SES_REGION_NAME = env_str("AWS_SES_REGION_NAME")
AWS_SES_REGION_ENDPOINT_URL = env_str("AWS_SES_REGION_ENDPOINT_URL") or None
SES_EMULATOR_HOST = env_str("SES_EMULATOR_HOST", "127.0.0.1")
SES_EMULATOR_PORT = env_int("SES_EMULATOR_PORT", 4579)
# With no SES configured, a development run talks to the local emulator
# (`manage.py ses_emulator`, started by `make run`).
SES_EMULATOR = not PRODUCTION and not AWS_SES_REGION_NAME and not AWS_SES_REGION_ENDPOINT_URL
if SES_EMULATOR:
    AWS_SES_REGION_NAME = "us-east-1"
    AWS_SES_REGION_ENDPOINT_URL = f"http://{SES_EMULATOR_HOST}:{SES_EMULATOR_PORT}"
_require("AWS_SES_REGION_NAME", AWS_SES_REGION_NAME)

# Credentials: from these variables, or boto3's own chain (instance role, profile)
# when they are empty. The emulator accepts any key.
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or ("local" if SES_EMULATOR else None)
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or ("local" if SES_EMULATOR else None)
AWS_SESSION_TOKEN = env_str("AWS_SESSION_TOKEN") or None
AWS_SES_CONFIGURATION_SET = env_str("AWS_SES_CONFIGURATION_SET") or None
# auto asks SES whether the account is in the sandbox; true/false decides.
# The local emulator reports a sandbox-sized quota, so a local run says false
# (rehearse the sandbox with SES_SANDBOX=true and `manage.py ses_verify`).
SES_SANDBOX = env_str("SES_SANDBOX", "false" if SES_EMULATOR else "auto").lower()
if SES_SANDBOX not in {"auto", "true", "false"}:
    raise ImproperlyConfigured(f"SES_SANDBOX={SES_SANDBOX!r}: use auto, true or false.")
# Every send, from every process, is paced by one limiter in Redis at this
# fraction of SES's max send rate, or at SES_MAX_SEND_RATE (messages/second).
SES_RATE_FRACTION = env_float("SES_RATE_FRACTION", 0.8)
SES_MAX_SEND_RATE = env_float("SES_MAX_SEND_RATE", 50.0 if SES_EMULATOR else 0.0) or None
# Cap each run at what is left of SES's 24-hour quota (deferring the rest).
# The emulator's quota (200) is not a real limit, so a local run does not.
SES_QUOTA_CAP = env_bool("SES_QUOTA_CAP", not SES_EMULATOR)
# The reputation guard pauses the daily send when, over the last
# REPUTATION_WINDOW deliveries (once at least REPUTATION_MIN_SAMPLE are in),
# bounces reach 5% or complaints 0.1%, the rates at which SES reviews accounts.
REPUTATION_WINDOW = env_int("REPUTATION_WINDOW", 2000)
REPUTATION_MIN_SAMPLE = env_int("REPUTATION_MIN_SAMPLE", 200)
REPUTATION_MAX_BOUNCE_RATE = env_float("REPUTATION_MAX_BOUNCE_RATE", 0.05)
REPUTATION_MAX_COMPLAINT_RATE = env_float("REPUTATION_MAX_COMPLAINT_RATE", 0.001)
# SNS topics whose SES events the webhook (/ses/events/) accepts.
AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS = env_list("AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS")
AWS_SES_VERIFY_EVENT_SIGNATURES = True
# Where SES returns bounces for the daily mail (a verified address), if not the sender.
AWS_SES_RETURN_PATH = env_str("AWS_SES_RETURN_PATH") or None

# Mail goes out through SESv2 SendEmail (the raw MIME message, in JSON). SES
# v1's SendRawEmail form-encodes the base64 message byte by byte in Python:
# about 1 ms of CPU per mail more. AWS_SES_V2=false goes back.
USE_SES_V2 = env_bool("AWS_SES_V2", True)
# django-ses's throttle only sees its own process (and asks SESv2 GetAccount,
# which the emulator lacks); DailyQ paces sends with its own shared limiter.
AWS_SES_AUTO_THROTTLE = None
# One attempt per call ("max_attempts" would count retries): DailyQ decides
# what is worth retrying, and builds a fresh message for each attempt.
# A worker process shares one SES client among its threads (mailer/ses.py:
# reusable_connection); its pool must hold a connection per thread, or the
# rest open a new TCP connection for every mail (botocore's default is 10).
AWS_SES_CONFIG = BotoConfig(
    connect_timeout=env_int("AWS_SES_CONNECT_TIMEOUT", 5),
    read_timeout=env_int("AWS_SES_READ_TIMEOUT", 15),
    retries={"total_max_attempts": 1, "mode": "standard"},
    max_pool_connections=env_int("AWS_SES_MAX_POOL_CONNECTIONS", 64),
)

# --- Privacy policy ----------------------------------------------------------------------

# /privacy/ names who runs this DailyQ and whom to ask about personal data, as
# Korea's Personal Information Protection Act (PIPA) expects. Unset, the page
# says "DailyQ" and gives the sender's address; production warns (dailyq.W002).
OPERATOR_NAME = env_str("OPERATOR_NAME")
PRIVACY_OFFICER_NAME = env_str("PRIVACY_OFFICER_NAME")
PRIVACY_CONTACT_EMAIL = env_str("PRIVACY_CONTACT_EMAIL")
if PRIVACY_CONTACT_EMAIL and (
    "@" not in PRIVACY_CONTACT_EMAIL or parseaddr(PRIVACY_CONTACT_EMAIL)[1] != PRIVACY_CONTACT_EMAIL
):
    raise ImproperlyConfigured(f"PRIVACY_CONTACT_EMAIL={PRIVACY_CONTACT_EMAIL!r} is not a plain email address.")

# --- Retention and erasure --------------------------------------------------------------

# How long DailyQ keeps what it records about mail (manage.py purge_expired and
# beat, daily; the privacy page states them): delivery rows and SES events by
# their day, verifications after they died (confirmed, revoked or expired).
DELIVERY_RETENTION_DAYS = env_int("DELIVERY_RETENTION_DAYS", 400)
SES_EVENT_RETENTION_DAYS = env_int("SES_EVENT_RETENTION_DAYS", 400)
VERIFICATION_RETENTION_DAYS = env_int("VERIFICATION_RETENTION_DAYS", 7)
# The key of the hash an erased address's suppression is kept as (HMAC-SHA256 of
# the canonical address). Changing it forgets the suppressions of erased addresses.
SUPPRESSION_HASH_KEY = (
    env_str("SUPPRESSION_HASH_KEY")
    or hmac.new(SECRET_KEY.encode(), b"dailyq.suppression-hash", hashlib.sha256).hexdigest()
)

# --- Subscriptions ---------------------------------------------------------------------

# A mailed code (and its confirm link) lives this long and allows this many
# wrong tries; a client can ask for a new one for an address after the
# cooldown, a few per hour, and an address gets at most a larger number from
# all clients together (subscriptions.services._limit_code_requests).
VERIFICATION_CODE_TTL_SECONDS = env_int("VERIFICATION_CODE_TTL_SECONDS", 600)
VERIFICATION_MAX_ATTEMPTS = env_int("VERIFICATION_MAX_ATTEMPTS", 5)
VERIFICATION_RESEND_COOLDOWN_SECONDS = env_int("VERIFICATION_RESEND_COOLDOWN_SECONDS", 60)
VERIFICATION_CODES_PER_ADDRESS_AND_CLIENT_PER_HOUR = env_int("VERIFICATION_CODES_PER_ADDRESS_AND_CLIENT_PER_HOUR", 5)
VERIFICATION_CODES_PER_ADDRESS_PER_HOUR = env_int("VERIFICATION_CODES_PER_ADDRESS_PER_HOUR", 20)
VERIFICATION_CODES_PER_IP_PER_HOUR = env_int("VERIFICATION_CODES_PER_IP_PER_HOUR", 10)

# --- The reader's loop ------------------------------------------------------------------

# A question rated "partly" or "again" comes back as a review after this many
# send days, then the next, ...; the last interval repeats until it is rated
# "knew" (subscriptions/reviews.py).
try:
    REVIEW_INTERVALS = [int(n) for n in env_list("REVIEW_INTERVALS", ["3", "7", "21"])]
except ValueError:
    REVIEW_INTERVALS = []
if not REVIEW_INTERVALS or min(REVIEW_INTERVALS) < 1:
    raise ImproperlyConfigured("REVIEW_INTERVALS must be a comma-separated list of whole numbers of at least 1.")
# Requests per minute one client may make to the answer and unsubscribe-reason pages.
READER_PAGE_REQUESTS_PER_CLIENT_PER_MINUTE = env_int("READER_PAGE_REQUESTS_PER_CLIENT_PER_MINUTE", 60)

# --- The daily send --------------------------------------------------------------------

# The send time until an admin saves the send schedule (admin -> Send schedule),
# which then rules: time, weekdays, skip dates, Korean public holidays.
DAILY_SEND_HOUR = env_int("DAILY_SEND_HOUR", 7)
DAILY_SEND_MINUTE = env_int("DAILY_SEND_MINUTE", 0)
# A send day whose run has not started this many minutes after its send time
# is missed: ADMINS are told once, and the admin shows it with a button.
MISSED_SEND_GRACE_MINUTES = env_int("MISSED_SEND_GRACE_MINUTES", 30)
# ADMINS are told once when a category's readers will start again from its
# first question within this many send days (mailer/bank_wraps.py).
BANK_WRAP_NOTICE_SEND_DAYS = env_int("BANK_WRAP_NOTICE_SEND_DAYS", 5)
# What a missed day does by itself: "send" starts it late, as soon as it is
# noticed; "skip" leaves it to an admin's "send today's questions now".
LATE_SEND_POLICY = env_str("LATE_SEND_POLICY", "send")
if LATE_SEND_POLICY not in ("send", "skip"):
    raise ImproperlyConfigured("LATE_SEND_POLICY must be send or skip")
# Deliveries per Celery task: small enough to spread over workers and to
# lose little to a crash, large enough to amortise the queries per task.
SEND_BATCH_SIZE = env_int("SEND_BATCH_SIZE", 100)
# How many batches the workers run at once (workers x concurrency): the last
# batches of a run are made smaller so that all of them are busy to the end.
SEND_PARALLELISM = env_int("SEND_PARALLELISM", 16)
# A batch starts no send after this many seconds; the rest go back to the
# queue. This is the time limit of the thread pool, which enforces none of its own.
SEND_BATCH_SECONDS = env_int("SEND_BATCH_SECONDS", max(1, int(CELERY_TASK_SOFT_TIME_LIMIT * 0.8)))
WEEKLY_DIGEST_SIZE = 5
# How long a claimed delivery may stay unrecorded before the sweeper lists it
# as "fate unknown". Default: the task's hard time limit plus a minute.
DELIVERY_CLAIM_LEASE_SECONDS = env_int("DELIVERY_CLAIM_LEASE_SECONDS", 0) or None
# Set it when the SES configuration set publishes Send events to /ses/events/:
# a delivery whose fate is unknown (its worker died mid-send) is marked sent
# by its Send event, and sent again when none came this many seconds after
# it was claimed (docs/reliability.md). Without it such a delivery waits for an admin.
SES_SEND_EVENTS = env_bool("SES_SEND_EVENTS", False)
SEND_EVENT_GRACE_SECONDS = env_int("SEND_EVENT_GRACE_SECONDS", 900)

# --- Time ----------------------------------------------------------------------------

# Send days and the 07:00 send are counted in Korean time.
TIME_ZONE = "Asia/Seoul"
USE_TZ = True

# --- Languages --------------------------------------------------------------------

LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", "한국어"), ("en", "English")]
USE_I18N = True
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Source code --------------------------------------------------------------------

# DailyQ is AGPL-3.0-or-later: a modified DailyQ run as a public service must
# offer its users the modified source. The site footer links SOURCE_CODE_URL,
# or, unset, /source.tar.gz: the code this server runs (mailservice/source.py).
SOURCE_CODE_URL = env_str("SOURCE_CODE_URL")
if SOURCE_CODE_URL and (
    urlsplit(SOURCE_CODE_URL).scheme not in {"http", "https"} or not urlsplit(SOURCE_CODE_URL).netloc
):
    raise ImproperlyConfigured(f"SOURCE_CODE_URL={SOURCE_CODE_URL!r} must be an absolute http(s) URL.")

# --- Static files -------------------------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "static")
if PRODUCTION:
    # Static files straight from the app server; runserver serves them in development.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("mailservice.middleware.ContentSecurityPolicyMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security ---------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    # Answers show https images from where their authors put them (README: Questions).
    "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Health -------------------------------------------------------------------------------

# /healthz is public and answers only whether DailyQ is up (200 or 503). Which
# part failed, and the workers' heartbeat, go to requests bearing
# "Authorization: Bearer <HEALTHZ_TOKEN>", and to everyone in development.
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN")
HEALTHZ_PUBLIC_DETAILS = env_bool("HEALTHZ_PUBLIC_DETAILS", not PRODUCTION)

# --- Admin login -----------------------------------------------------------------------

# Password guessing is counted per client (an IPv6 client by its /64) and per
# (username, client) in the shared cache, never per username alone: someone
# else's guesses must not lock the real admin out (mailservice/login_limits.py).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "mailservice.login_limits.LoginFailures"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURES_PER_USERNAME", 5)
ADMIN_LOGIN_FAILURES_PER_CLIENT = env_int("ADMIN_LOGIN_FAILURES_PER_CLIENT", 20)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOGIN_LOCKOUT_MINUTES", 15))
AXES_USERNAME_CALLABLE = "mailservice.login_limits.login_username"
AXES_CLIENT_IP_CALLABLE = "mailservice.login_limits.login_client"
AXES_LOCKOUT_CALLABLE = "mailservice.login_limits.lockout_response"
# The cache handler keeps no records in the database for the admin to show.
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False  # no banner at every start; failures are still logged
if AXES_FAILURE_LIMIT < 1 or ADMIN_LOGIN_FAILURES_PER_CLIENT < AXES_FAILURE_LIMIT:
    raise ImproperlyConfigured(
        "ADMIN_LOGIN_FAILURES_PER_CLIENT must be at least ADMIN_LOGIN_FAILURES_PER_USERNAME, which must be at least 1."
    )

# --- Logging -------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # A 503 (/healthz, the subscribe form while SES is down) is an answer, not an
    # error: its cause is already logged as a warning, and it must not mail ADMINS.
    "filters": {
        "not_unavailable_answers": {"()": "mailservice.logging.SkipUnavailableAnswers"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        # Errors mail ADMINS through SES: once per kind and place per 15 minutes,
        # at most 10 an hour (mailservice/logging.py), so no request can spend the quota.
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "mailservice.logging.ThrottledAdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.request": {"level": "ERROR", "filters": ["not_unavailable_answers"]},
        "botocore": {"level": "WARNING"},
        # moto's server logs every request of the local SES emulator.
        "werkzeug": {"level": "WARNING"},
    },
}

if _missing:
    raise ImproperlyConfigured(
        "Production mode (DJANGO_ENV=production or DEBUG off) needs these settings: "
        + ", ".join(_missing)
        + ". See .env.example."
    )

if not PRODUCTION:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
