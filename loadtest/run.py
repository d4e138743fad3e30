"""DailyQ load test: visitors subscribing and confirming at once, against gunicorn.

    .venv/bin/python -m loadtest.run --clients 50 --seconds 60

One command sets up everything on this machine and tears it down again:

1. a dedicated PostgreSQL database (dropped and migrated afresh), Redis
   database number and Celery queue, so nothing else on the machine is touched;
2. bench.fake_ses.FakeSES on a thread of this process (50 ms per send), so
   the visitors can read the codes it accepted;
3. gunicorn in production mode on a free loopback port, after collectstatic
   into a temporary STATIC_ROOT;
4. a Celery worker sending the code (and welcome) mails;
5. N simulated visitors (threads, http.client, one cookie jar and one
   X-Forwarded-For address per visit) looping for S seconds:
   GET / -> POST /subscribe/ -> GET /verify/ -> (code arrives at the fake
   SES) -> POST /verify/ -> GET /manage/<token>/;
6. per endpoint: requests, requests/s, p50/p99 latency and statuses; then
   checks that nothing answered 5xx and that every visitor who was shown the
   confirmation has an active subscriber with its categories in PostgreSQL.

Exits non-zero on any 5xx, any lost confirmed subscription, any code mail
that never arrived, or a per-IP limit that did not hold. See
loadtest/README.md for the figures on this machine.
"""

import argparse
import http.client
import itertools
import os
import random
import re
import resource
import secrets
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from bench.fake_ses import FakeSES
from bench.harness import Process, python_command, start_process, worker_command
from bench.proc import cpu_seconds, free_port, machine_cpu, percentile, process_tree, wait_for_quiet

BASE_DIR = Path(__file__).resolve().parent.parent

LANDING = "GET /"
SUBSCRIBE = "POST /subscribe/"
VERIFY_PAGE = "GET /verify/"
VERIFY = "POST /verify/"
MANAGE = "GET /manage/<token>/"
ENDPOINTS = [LANDING, SUBSCRIBE, VERIFY_PAGE, VERIFY, MANAGE]

CATEGORY_CHOICES = [["backend"], ["frontend"], ["backend", "frontend"]]
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CODE_SUBJECT = re.compile(r"(\d{6})\s*$")

# Settings the app reads that must not leak in from the caller's environment.
ENV_PREFIXES_DROPPED = ("AWS_", "SES_", "VERIFICATION_", "CELERY_", "SECURE_", "DB_", "REPUTATION_")
ENV_NAMES_DROPPED = {
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_KEY_PREFIX",
    "CSRF_TRUSTED_ORIGINS",
    "TRUSTED_PROXY_COUNT",
    "DEBUG",
    "DJANGO_ENV",
    "STATIC_ROOT",
    "ADMINS",
    "WEB_CONCURRENCY",
    "CONTENT_SECURITY_POLICY",
    "SEND_BATCH_SIZE",
    "DELIVERY_CLAIM_LEASE_SECONDS",
    "LOG_LEVEL",
    "VAR_DIR",
    "DEFAULT_FROM_EMAIL",
    "SERVER_EMAIL",
    "ADMIN_URL",
}


# --- measuring helpers ---------------------------------------------------------------------


def server_pids(database: str) -> dict[str, list[int]]:
    """PostgreSQL backends serving `database`, and redis-server (shared with whoever else uses it)."""
    found: dict[str, list[int]] = {"PostgreSQL (backends of the load-test database)": [], "Redis": []}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres:") and f" {database} " in command:
            found["PostgreSQL (backends of the load-test database)"].append(int(entry))
        elif command.startswith("redis-server"):
            found["Redis"].append(int(entry))
    return found


def cpu_by_pid(pids) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the services under test ---------------------------------------------------------------


def app_env(args, *, port: int, ses_url: str, static_root: str, var_dir: str) -> dict:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ENV_NAMES_DROPPED and not name.startswith(ENV_PREFIXES_DROPPED)
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "mailservice.settings",
            "DJANGO_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SITE_URL": f"http://127.0.0.1:{port}",
            # Plain http on loopback: no https redirect, cookies not https-only.
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_COOKIES": "false",
            # wait_for_health reads the worker heartbeat from /healthz.
            "HEALTHZ_PUBLIC_DETAILS": "true",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "CELERY_BROKER_URL": args.redis_url,
            "CELERY_QUEUE": args.queue,
            "CACHE_KEY_PREFIX": "dailyq-load",
            "AWS_SES_REGION_NAME": "us-east-1",
            "AWS_SES_REGION_ENDPOINT_URL": ses_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "SES_SANDBOX": "false",
            "SES_QUOTA_CAP": "false",
            "SES_MAX_SEND_RATE": "1000",
            "STATIC_ROOT": static_root,
            "VAR_DIR": var_dir,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if args.limiter == "real":
        # As behind one reverse proxy: the client address is the last entry of
        # X-Forwarded-For, and every simulated visitor sends its own. The
        # per-IP limit (10 codes an hour) stays as deployed and is counted for
        # real in Redis, per visitor.
        env["TRUSTED_PROXY_COUNT"] = "1"
    else:
        # Every visitor comes from 127.0.0.1: the per-IP limit must be lifted.
        env["TRUSTED_PROXY_COUNT"] = "0"
        env["VERIFICATION_CODES_PER_IP_PER_HOUR"] = "1000000000"
    return env


def reset_database(database_url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name or name in {"postgres", "template0", "template1"}:
        raise SystemExit(f"refusing to drop database {name!r}: give a dedicated one")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()


def reset_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


def manage_py(env: dict, *arguments: str) -> None:
    subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, "manage.py", *arguments], cwd=BASE_DIR, env=env, check=True
    )


class Service:
    """A child process (bench.harness) in a session of its own, logging to a file."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: Process | None = None

    def start(self) -> "Service":
        self.process = start_process(self.name, self.command, self.env, log=self.log_path, new_session=True)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def pids(self) -> list[int]:
        return process_tree(self.process.pid) if self.alive() else []

    def stop(self, timeout: float = 20) -> None:
        # SIGTERM: gunicorn stops its workers gracefully, Celery does a warm shutdown.
        if self.process is not None and self.process.stop(timeout):
            print(f"  {self.name} did not stop in {timeout:.0f} s; killed its process group", flush=True)

    def tail(self, lines: int = 30) -> str:
        return self.process.tail(lines) if self.process is not None else ""


# --- the mailbox: codes from the fake SES ---------------------------------------------------


class Mailbox:
    """Follows FakeSES.accepted as it grows and hands each visitor the code mailed to it."""

    def __init__(self, ses: FakeSES):
        self.ses = ses
        self.condition = threading.Condition()
        self.codes: dict[str, list[tuple[str, float]]] = {}  # recipient -> [(code, time.time() accepted)]
        self.other: Counter = Counter()  # recipient -> mails without a code (welcome, manage link)
        self.code_mails = 0
        self.other_mails = 0
        self._seen = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="mailbox", daemon=True)

    def start(self) -> "Mailbox":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _follow(self) -> None:
        while not self._stopping.is_set():
            with self.ses.lock:
                new = self.ses.accepted[self._seen :]
            if new:
                self._seen += len(new)
                with self.condition:
                    for mail in new:
                        recipient = (mail["to"][0] if mail["to"] else "").lower()
                        subject = str(make_header(decode_header(mail["subject"])))
                        found = CODE_SUBJECT.search(subject)
                        if found:
                            self.codes.setdefault(recipient, []).append((found.group(1), mail["at"]))
                            self.code_mails += 1
                        else:
                            self.other[recipient] += 1
                            self.other_mails += 1
                    self.condition.notify_all()
            self._stopping.wait(0.005)

    def has_code(self, email: str) -> bool:
        with self.condition:
            return bool(self.codes.get(email.lower()))

    def wait_for_code(self, email: str, timeout: float) -> tuple[str, float] | None:
        """The newest code mailed to `email` and when SES accepted it, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                codes = self.codes.get(email.lower())
                if codes:
                    return codes[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.condition.wait(remaining)


# --- the simulated visitors -----------------------------------------------------------------


@dataclass
class Record:
    endpoint: str
    status: int | str  # an HTTP status, or the name of a connection error
    latency: float  # seconds
    finished: float  # seconds since the run started
    expected: bool


@dataclass
class Confirmed:
    email: str
    categories: list[str]
    frequency: str


@dataclass
class Shared:
    """What all visitors share: where to go, the mailbox, and the counters."""

    host: str
    port: int
    mailbox: Mailbox
    args: argparse.Namespace
    started: float = 0.0
    deadline: float = 0.0
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    visit_numbers: itertools.count = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)
    confirmed: list[Confirmed] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    overlap: int = 0  # visits a client may leave waiting for mail (see Visitor)
    missing_codes: list[str] = field(default_factory=list)
    code_waits: list[float] = field(default_factory=list)
    retries: int = 0

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class Response:
    status: int
    location: str
    text: str
    retry_after: str


def forwarded_address(number: int) -> str:
    """A distinct client address per visit, in 10.0.0.0/8."""
    return f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}"


class Browser:
    """One visitor's browser: a keep-alive connection and a cookie jar."""

    def __init__(self, shared: Shared, records: list[Record], *, language: str, forwarded_for: str | None):
        self.shared = shared
        self.records = records
        self.language = language
        self.forwarded_for = forwarded_for
        self.cookies: dict[str, str] = {}
        self.connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()

    def get(self, endpoint: str, path: str, *, expect: int = 200) -> Response | None:
        return self._request(endpoint, "GET", path, None, None, expect, "")

    def post(
        self, endpoint: str, path: str, form: dict, *, referer: str, expect: int = 302, redirect_to: str = ""
    ) -> Response | None:
        """POST a form; a 302 counts as expected only when its Location contains `redirect_to`."""
        return self._request(endpoint, "POST", path, form, referer, expect, redirect_to)

    def _request(self, endpoint, method, path, form, referer, expect, redirect_to) -> Response | None:
        headers = {
            "User-Agent": "dailyq-loadtest",
            "Accept": "text/html",
            "Accept-Language": self.language,
        }
        if self.forwarded_for:
            headers["X-Forwarded-For"] = self.forwarded_for
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.shared.origin
            headers["Referer"] = self.shared.origin + referer
        started = time.perf_counter()
        for attempt in (1, 2):
            reused = self.connection is not None and self.connection.sock is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection(
                    self.shared.host, self.shared.port, timeout=self.shared.args.http_timeout
                )
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.connection.close()
                if reused and attempt == 1:
                    # The server closed an idle keep-alive connection as we
                    # reused it; browsers retry on a new connection, so do we.
                    with self.shared.lock:
                        self.shared.retries += 1
                    continue
                self._record(endpoint, type(exc).__name__, started, expected=False)
                return None
            except (OSError, http.client.HTTPException) as exc:
                self.connection.close()
                self._record(endpoint, type(exc).__name__, started, expected=False)
                return None
            break
        self._store_cookies(response.msg.get_all("Set-Cookie") or [])
        location = response.getheader("Location", "")
        expected = response.status == expect and redirect_to in location
        self._record(endpoint, response.status, started, expected=expected)
        return Response(
            response.status, location, data.decode("utf-8", errors="replace"), response.getheader("Retry-After", "")
        )

    def _record(self, endpoint, status, started, *, expected: bool) -> None:
        now = time.perf_counter()
        self.records.append(Record(endpoint, status, now - started, now - self.shared.started, expected))

    def _store_cookies(self, headers: list[str]) -> None:
        for header in headers:
            jar = SimpleCookie()
            try:
                jar.load(header)
            except CookieError:
                continue
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.coded_value


@dataclass
class Visit:
    """A visitor between subscribing and confirming: the browser, and what they chose."""

    browser: Browser
    email: str
    categories: list[str]
    frequency: str
    token: str  # csrfmiddlewaretoken of the verify page
    subscribed_at: float  # time.time() when POST /subscribe/ was answered


class Visitor(threading.Thread):
    """One client: loops through visits until the deadline; each visit is a new person.

    With overlap 0 (the default) a visit runs start to end: the client waits
    for its code before it starts the next visit. With overlap N the client
    parks up to N visits waiting for their mail and starts new ones meanwhile,
    so the web tier sees N clients busy all the time, whatever the mail takes.
    """

    def __init__(self, index: int, shared: Shared):
        super().__init__(name=f"visitor-{index}", daemon=True)
        self.index = index
        self.shared = shared
        self.records: list[Record] = []
        self.random = random.Random(index)  # noqa: S311 (test data, not secrets)

    def run(self) -> None:
        shared = self.shared
        waiting: deque[Visit] = deque()
        while True:
            before_deadline = time.perf_counter() < shared.deadline
            if not before_deadline and not waiting:
                return
            if waiting and (
                not before_deadline or len(waiting) > shared.overlap or shared.mailbox.has_code(waiting[0].email)
            ):
                outcome = self.finish(waiting.popleft())
            else:
                started = self.start_visit()
                if isinstance(started, Visit):
                    waiting.append(started)
                    continue
                outcome = started
            with shared.lock:
                shared.outcomes[outcome] += 1

    def start_visit(self) -> "Visit | str":
        """GET /, POST /subscribe/, GET /verify/; the Visit, or what went wrong."""
        shared = self.shared
        number = next(shared.visit_numbers)
        email = f"v{number}.{shared.run_id}@load.example.org"
        categories = self.random.choice(CATEGORY_CHOICES)
        frequency = self.random.choice(["daily", "weekly"])
        browser = Browser(
            shared,
            self.records,
            language="ko" if number % 2 else "en",
            forwarded_for=forwarded_address(number) if shared.args.limiter == "real" else None,
        )
        page = browser.get(LANDING, "/")
        if page is None or page.status != 200:
            browser.close()
            return "landing failed"
        token = CSRF_FIELD.search(page.text)
        if not token:
            browser.close()
            return "landing: no csrf token"
        form = {
            "csrfmiddlewaretoken": token.group(1),
            "email": email,
            "categories": categories,
            "frequency": frequency,
            "consent": "on",
        }
        answer = browser.post(SUBSCRIBE, "/subscribe/", form, referer="/", redirect_to="/verify/")
        if answer is None or answer.status != 302 or not answer.location.endswith("/verify/"):
            browser.close()
            return f"subscribe answered {answer.status if answer else 'nothing'}"
        subscribed_at = time.time()
        page = browser.get(VERIFY_PAGE, "/verify/")
        if page is None or page.status != 200:
            browser.close()
            return "verify page failed"
        token = CSRF_FIELD.search(page.text)
        if not token:
            browser.close()
            return "verify page: no csrf token"
        if shared.overlap:
            browser.close()  # a parked visitor holds no connection; the next request opens one
        return Visit(browser, email, sorted(categories), frequency, token.group(1), subscribed_at)

    def finish(self, visit: Visit) -> str:
        """Wait for the code, POST /verify/, GET the manage page; what happened."""
        shared = self.shared
        browser = visit.browser
        try:
            found = shared.mailbox.wait_for_code(visit.email, shared.args.code_timeout)
            if found is None:
                with shared.lock:
                    shared.missing_codes.append(visit.email)
                return "code not there in time"
            code, accepted_at = found
            with shared.lock:
                shared.code_waits.append(accepted_at - visit.subscribed_at)
            form = {"csrfmiddlewaretoken": visit.token, "code": code}
            answer = browser.post(VERIFY, "/verify/", form, referer="/verify/", redirect_to="/manage/")
            if answer is None or answer.status != 302 or "/manage/" not in answer.location:
                return f"verify answered {answer.status if answer else 'nothing'}"
            with shared.lock:
                shared.confirmed.append(Confirmed(visit.email, visit.categories, visit.frequency))
            page = browser.get(MANAGE, urlsplit(answer.location).path)
            if page is None or page.status != 200:
                return "manage page failed"
            if visit.email not in page.text:
                return "manage page: not this visitor's address"
            return "complete"
        finally:
            browser.close()


def run_visitors(shared: Shared, clients: int, seconds: float) -> tuple[list[Record], float]:
    """Start `clients` visitors for `seconds`; visits under way at the deadline finish.

    Returns every request's record and the wall time until the last visitor stopped.
    """
    shared.started = time.perf_counter()
    shared.deadline = shared.started + seconds
    visitors = [Visitor(index, shared) for index in range(clients)]
    for visitor in visitors:
        visitor.start()
    for visitor in visitors:
        visitor.join()
    elapsed = time.perf_counter() - shared.started
    return [record for visitor in visitors for record in visitor.records], elapsed


# --- the report -------------------------------------------------------------------------------


def is_5xx(status) -> bool:
    return isinstance(status, int) and status >= 500


def print_report(records: list[Record], elapsed: float, seconds: float) -> None:
    by_endpoint: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_endpoint[record.endpoint].append(record)
    print(f"\n{len(records)} requests in {elapsed:.1f} s (visits start for {seconds:.0f} s; those under way finish)")
    header = f"{'endpoint':<22}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  statuses"
    print(header)
    print("-" * len(header))
    rows = [(name, by_endpoint.get(name, [])) for name in ENDPOINTS] + [("all", records)]
    for name, group in rows:
        latencies = [r.latency * 1000 for r in group]
        statuses = Counter(r.status for r in group)
        shown = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items(), key=lambda i: str(i[0])))
        print(
            f"{name:<22}{len(group):>9}{len(group) / elapsed:>9.1f}{percentile(latencies, 50):>9.1f}"
            f"{percentile(latencies, 99):>9.1f}{max(latencies, default=float('nan')):>9.1f}  {shown}"
        )
    errors = Counter((r.endpoint, r.status) for r in records if not r.expected)
    fives = sum(1 for r in records if is_5xx(r.status))
    print(f"\nerrors (another status or redirect than the step expects, or no answer): {sum(errors.values())}")
    for (endpoint, status), count in sorted(errors.items(), key=lambda i: (i[0][0], str(i[0][1]))):
        print(f"  {endpoint} -> {status}: {count}")
    print(f"5xx: {fives}")
    in_window = sum(1 for r in records if r.finished <= seconds)
    print(f"requests finished within the first {seconds:.0f} s: {in_window} ({in_window / seconds:.1f} req/s)")
    windows = Counter(int(r.finished // 10) for r in records)
    timeline = " ".join(f"{windows[w] / 10:.0f}" for w in range(max(windows, default=-1) + 1))
    print(f"requests/s per 10 s window: {timeline}")


def check_database(database_url: str, confirmed: list[Confirmed]) -> tuple[int, list[str]]:
    """Every confirmed visitor must be an active subscriber with exactly its categories.

    Returns (active subscribers nobody saw confirmed, problems).
    """
    import psycopg2

    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT lower(s.email), s.status, s.frequency, s.confirmed_at IS NOT NULL,
                       coalesce(array_agg(sub.category ORDER BY sub.category)
                                FILTER (WHERE sub.is_active), '{}')
                FROM subscriptions_subscriber s
                LEFT JOIN subscriptions_subscription sub ON sub.subscriber_id = s.id
                GROUP BY s.id
                """
            )
            rows = {row[0]: row[1:] for row in cursor.fetchall()}
    finally:
        connection.close()
    problems = []
    for visitor in confirmed:
        row = rows.get(visitor.email.lower())
        if row is None:
            problems.append(f"{visitor.email}: no subscriber")
            continue
        status, frequency, has_confirmed_at, categories = row
        if status != "active" or not has_confirmed_at:
            problems.append(f"{visitor.email}: status {status}, confirmed_at set: {has_confirmed_at}")
        elif list(categories) != visitor.categories:
            problems.append(f"{visitor.email}: active categories {list(categories)}, chose {visitor.categories}")
        elif frequency != visitor.frequency:
            problems.append(f"{visitor.email}: frequency {frequency}, chose {visitor.frequency}")
    seen = {visitor.email.lower() for visitor in confirmed}
    unseen_active = sum(1 for email, row in rows.items() if row[0] == "active" and email not in seen)
    statuses = Counter(row[0] for row in rows.values())
    print(f"subscribers in the database: {dict(statuses)}")
    return unseen_active, problems


def probe_ip_limit(shared: Shared) -> tuple[bool, str]:
    """With the real limiter: 11 subscribe requests from one new address; the 11th must be a 429."""
    browser = Browser(shared, [], language="en", forwarded_for="192.0.2.77")
    statuses: list[int | str] = []
    retry_after = ""
    window = int(time.time() // 3600)  # the limiter counts in fixed one-hour windows
    try:
        page = browser.get(LANDING, "/")
        token = CSRF_FIELD.search(page.text) if page else None
        for n in range(11):
            form = {
                "csrfmiddlewaretoken": token.group(1) if token else "",
                "email": f"probe{n}.{shared.run_id}@load.example.org",
                "categories": ["backend"],
                "frequency": "daily",
                "consent": "on",
            }
            answer = browser.post(SUBSCRIBE, "/subscribe/", form, referer="/")
            statuses.append(answer.status if answer else "none")
            retry_after = answer.retry_after if answer else ""
    finally:
        browser.close()
    if statuses == [302] * 10 + [429]:
        verdict = "as configured"
    elif int(time.time() // 3600) != window:
        verdict = "inconclusive (the limiter's one-hour window turned during the probe)"
    else:
        verdict = "NOT as configured"
    return verdict != "NOT as configured", (
        f"per-IP limit probe, 11 subscribe requests from one new address: {statuses}"
        f" (last Retry-After: {retry_after or '-'} s): {verdict}"
    )


# --- main ---------------------------------------------------------------------------------


def wait_for_health(port: int, services: list[Service], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for service in services:
            if not service.alive():
                raise RuntimeError(f"{service.name} exited early:\n{service.tail()}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            last = response.read().decode(errors="replace")
            if response.status == 200 and '"last_heartbeat": null' not in last:
                return last
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.5)
    raise RuntimeError(f"not healthy within {timeout:.0f} s; last /healthz: {last}")


def wait_for_queue(args, mailbox: Mailbox, confirmed: list[Confirmed], timeout: float = 60) -> None:
    """Let the worker finish what the visits queued (welcome mails) before counting mail."""
    import redis

    client = redis.Redis.from_url(args.redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            welcomed = sum(1 for visitor in confirmed if mailbox.other.get(visitor.email.lower()))
            if client.llen(args.queue) == 0 and welcomed >= len(confirmed):
                return
            time.sleep(0.2)
    finally:
        client.close()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="simulated visitors at once (default 50)")
    parser.add_argument("--seconds", type=float, default=60, help="how long new visits start (default 60)")
    parser.add_argument("--gunicorn-workers", type=int, default=2, help="gunicorn --workers (default 2)")
    parser.add_argument(
        "--gunicorn-threads",
        type=int,
        default=8,
        help="gunicorn --threads; above 1 uses the gthread worker, 1 the sync worker (default 8)",
    )
    parser.add_argument("--celery-concurrency", type=int, default=8, help="Celery worker --concurrency (default 8)")
    parser.add_argument("--celery-pool", default="prefork", choices=["prefork", "threads"])
    parser.add_argument(
        "--limiter",
        default="real",
        choices=["real", "raised"],
        help="real: TRUSTED_PROXY_COUNT=1 and one X-Forwarded-For address per visit (default); "
        "raised: all from 127.0.0.1 with the per-IP limit lifted",
    )
    parser.add_argument("--ses-latency", type=float, default=0.05, help="seconds per SES send (default 0.05)")
    parser.add_argument(
        "--overlap",
        type=int,
        default=0,
        help="visits each client may leave waiting for their code while it starts new ones "
        "(default 0: one visit at a time, start to end)",
    )
    parser.add_argument(
        "--code-timeout", type=float, default=120, help="how long a visitor waits for its code (default 120)"
    )
    parser.add_argument("--http-timeout", type=float, default=30, help="socket timeout of each request")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up visits, not counted (default 3)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60,
        metavar="SECONDS",
        help="before the timed run, wait up to this long for the machine to be under 25%% busy (default 60)",
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/dailyq_load")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--queue", default="dailyq-load")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="dailyq-loadtest-"))
    static_root = scratch / "static"
    port = free_port()

    # FakeSES writes headers and body separately; without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK add ~40 ms to every send (see
    # bench/ses_process.py). Only this process's socketservers are affected.
    socketserver.StreamRequestHandler.disable_nagle_algorithm = True
    ses = FakeSES(latency=args.ses_latency, max_send_rate=100_000.0, max_24_hour_send=10_000_000.0).start()
    mailbox = Mailbox(ses).start()
    env = app_env(args, port=port, ses_url=ses.url, static_root=str(static_root), var_dir=str(scratch / "var"))

    gunicorn_command = python_command(
        "-m",
        "gunicorn",
        "mailservice.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.gunicorn_workers),
        "--no-control-socket",
        "--log-level",
        "warning",
    )
    if args.gunicorn_threads > 1:
        gunicorn_command += ["--worker-class", "gthread", "--threads", str(args.gunicorn_threads)]
    celery_command = worker_command(
        pool=args.celery_pool,
        concurrency=args.celery_concurrency,
        hostname="loadtest@%h",
        options=["--without-gossip", "--without-mingle"],
    )
    gunicorn = Service("gunicorn", gunicorn_command, env, scratch)
    worker = Service("celery", celery_command, env, scratch)
    services = [gunicorn, worker]
    failed = False
    try:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; logs in {scratch}")
        print(f"database {args.database_url} (recreated), redis {args.redis_url} (flushed), queue {args.queue}")
        reset_database(args.database_url)
        reset_redis(args.redis_url)
        manage_py(env, "migrate", "--noinput", "-v0")
        manage_py(env, "load_starter_questions")
        manage_py(env, "collectstatic", "--noinput", "-v0")
        print(f"fake SES at {ses.url}, {args.ses_latency * 1000:.0f} ms per send")
        print("gunicorn: " + " ".join(gunicorn_command[1:]))
        print("celery:   " + " ".join(celery_command[1:]))
        limiter = (
            "real (TRUSTED_PROXY_COUNT=1, one X-Forwarded-For address per visit)"
            if args.limiter == "real"
            else "raised (all from 127.0.0.1, VERIFICATION_CODES_PER_IP_PER_HOUR lifted)"
        )
        print(f"limiter: {limiter}")
        print(
            f"clients: {args.clients}, "
            + (f"each keeping up to {args.overlap} visits waiting for mail" if args.overlap else "one visit at a time")
        )
        for service in services:
            service.start()
        wait_for_health(port, services)
        print(f"healthy on http://127.0.0.1:{port}/")

        shared = Shared(host="127.0.0.1", port=port, mailbox=mailbox, args=args)
        if args.warmup > 0:
            # A few visits, one at a time each, to load code and open connections.
            run_visitors(shared, min(args.clients, 8), args.warmup)
            wait_for_queue(args, mailbox, shared.confirmed)
            print(f"warm-up: {sum(shared.outcomes.values())} visits ({dict(shared.outcomes)}), not counted")
            shared.outcomes.clear()
            shared.code_waits.clear()
            shared.retries = 0
        warmup_confirmed = len(shared.confirmed)

        shared.overlap = args.overlap
        share = wait_for_quiet(args.wait_quiet)
        print(f"machine busy before the run: {share * 100:.0f}% (load average {os.getloadavg()[0]:.2f})")
        print(f"running {args.clients} visitors for {args.seconds:.0f} s ...", flush=True)
        database = urlsplit(args.database_url).path.lstrip("/")
        pids = {service.name: service.pids() for service in services}
        cpu_before = {name: cpu_seconds(p) for name, p in pids.items()}
        servers_before = {name: cpu_by_pid(p) for name, p in server_pids(database).items()}
        own_before, machine_before = own_cpu(), machine_cpu()
        records, elapsed = run_visitors(shared, args.clients, args.seconds)
        own_after, machine_after = own_cpu(), machine_cpu()
        cpu_after = {name: cpu_seconds(p) for name, p in pids.items()}
        # Backends opened during the run count from 0; those closed during it are missed.
        servers = {
            name: sum(cpu - servers_before.get(name, {}).get(pid, 0.0) for pid, cpu in cpu_by_pid(p).items())
            for name, p in server_pids(database).items()
        }

        print_report(records, elapsed, args.seconds)
        visits = sum(shared.outcomes.values())
        confirmed_now = len(shared.confirmed) - warmup_confirmed
        print(f"visits: {visits} ({dict(shared.outcomes)}); confirmed subscriptions/s: {confirmed_now / elapsed:.1f}")
        waits = [wait * 1000 for wait in shared.code_waits]
        print(
            f"code mail latency (subscribe answered -> code accepted by SES): p50 {percentile(waits, 50):.0f} ms,"
            f" p99 {percentile(waits, 99):.0f} ms, max {max(waits, default=float('nan')):.0f} ms"
        )
        print(f"keep-alive connections closed under a request and retried once: {shared.retries}")
        busy = machine_after[0] - machine_before[0]
        total = machine_after[1] - machine_before[1]
        parts = {name: cpu_after[name] - cpu_before[name] for name in pids}
        parts["load generator + fake SES (this process)"] = own_after - own_before
        parts.update(servers)
        parts["rest (other users of the machine, the kernel)"] = busy - sum(parts.values())
        print(f"CPU: machine {busy / total * 100:.0f}% busy ({busy:.0f} CPU-s over {elapsed:.0f} s);")
        for name, value in parts.items():
            print(f"  {name}: {value:.0f} CPU-s ({value / elapsed * 100:.0f}% of one core)")

        wait_for_queue(args, mailbox, shared.confirmed)
        print(
            f"mail accepted by the fake SES: {mailbox.code_mails} with a code,"
            f" {mailbox.other_mails} others (welcome); refused: {len(ses.refused)}"
        )

        fives = sum(1 for r in records if is_5xx(r.status))
        print("\n--- checks ---")
        unseen_active, problems = check_database(args.database_url, shared.confirmed)
        print(
            f"confirmed by visitors (incl. {warmup_confirmed} in the warm-up): {len(shared.confirmed)};"
            f" lost or wrong in PostgreSQL: {len(problems)};"
            f" active without a confirmation seen by its visitor: {unseen_active}"
        )
        for problem in problems[:20]:
            print(f"  LOST: {problem}")
        late = [email for email in shared.missing_codes if mailbox.has_code(email)]
        never = [email for email in shared.missing_codes if not mailbox.has_code(email)]
        if late:
            print(f"codes that came later than --code-timeout ({args.code_timeout:.0f} s): {len(late)}")
        if never:
            print(f"code mails that never arrived: {len(never)}")
            for email in never[:10]:
                print(f"  {email}")
        limiter_ok = True
        if args.limiter == "real":
            limiter_ok, text = probe_ip_limit(shared)
            print(text)
        failed = bool(fives or problems or never or not limiter_ok)
        print(f"5xx: {fives}; lost confirmed subscriptions: {len(problems)}; code mails never sent: {len(never)}")
        print("RESULT: " + ("FAIL" if failed else "PASS"))
        if fives:
            print(f"\ngunicorn log (last lines, {gunicorn.log_path}):\n{gunicorn.tail()}")
    except (Exception, KeyboardInterrupt):
        for service in services:
            if service.process is not None:
                print(f"\n{service.name} log (last lines, {service.log_path}):\n{service.tail()}")
        raise
    finally:
        print("\nstopping gunicorn, Celery and the fake SES ...", flush=True)
        for service in services:
            service.stop()
        mailbox.stop()
        ses.stop()
        shutil.rmtree(static_root, ignore_errors=True)
        print(f"logs kept in {scratch}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
