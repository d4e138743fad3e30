"""The settings module, loaded in a fresh interpreter per environment."""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import BASE_DIR, free_port

PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "dailyq.example.com",
    "SITE_URL": "https://dailyq.example.com",
    "DATABASE_URL": "postgres://dailyq@db.internal:5432/dailyq",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "AWS_SES_REGION_NAME": "ap-northeast-2",
    "OPERATOR_NAME": "Example Labs Inc.",
    "PRIVACY_OFFICER_NAME": "Kim Minji",
    "PRIVACY_CONTACT_EMAIL": "privacy@example.com",
}

DUMP = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "PRODUCTION": settings.PRODUCTION,
    "ENGINE": settings.DATABASES["default"]["ENGINE"],
    "BROKER": settings.CELERY_BROKER_URL,
    "CACHE": settings.CACHES["default"]["BACKEND"],
    "EMAIL_BACKEND": settings.EMAIL_BACKEND,
    "SES_EMULATOR": settings.SES_EMULATOR,
    "SES_ENDPOINT": settings.AWS_SES_REGION_ENDPOINT_URL,
    "SES_REGION": settings.AWS_SES_REGION_NAME,
    "TIME_ZONE": settings.TIME_ZONE,
    "USE_TZ": settings.USE_TZ,
    "SITE_URL": settings.SITE_URL,
    "HEALTHZ_PUBLIC_DETAILS": settings.HEALTHZ_PUBLIC_DETAILS,
}))
"""


def run_python(args, env, tmp_path):
    # A developer's .env never reaches these processes; a test names its own file.
    clean = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "VAR_DIR": str(tmp_path / "var"),
        "DAILYQ_ENV_FILE": os.devnull,
        **env,
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env={"DJANGO_SETTINGS_MODULE": "mailservice.settings", **clean},
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_settings(env, tmp_path) -> dict:
    result = run_python(["-c", DUMP], env, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def settings_error(env, tmp_path) -> str:
    result = run_python(["-c", DUMP], env, tmp_path)
    assert result.returncode != 0, f"settings loaded but should have refused: {result.stdout}"
    return result.stderr


def test_nothing_configured_runs_on_the_embedded_defaults(tmp_path):
    loaded = load_settings({}, tmp_path)
    assert loaded["DEBUG"] is True
    assert loaded["PRODUCTION"] is False
    assert loaded["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["BROKER"].startswith("filesystem://")
    assert loaded["CACHE"].endswith("FileBasedCache")
    assert loaded["EMAIL_BACKEND"] == "django_ses.SESBackend"
    assert loaded["SES_EMULATOR"] is True
    assert loaded["SES_ENDPOINT"] == "http://127.0.0.1:4579"
    assert loaded["TIME_ZONE"] == "Asia/Seoul"
    assert loaded["USE_TZ"] is True
    assert loaded["HEALTHZ_PUBLIC_DETAILS"] is True  # make run's /healthz shows what failed
    # The embedded default keeps its state under VAR_DIR.
    assert (tmp_path / "var" / "celery" / "queue").is_dir()


def test_urls_switch_each_part_to_a_real_service(tmp_path):
    loaded = load_settings(
        {
            "DATABASE_URL": "postgres://u@127.0.0.1:5432/dailyq",
            "REDIS_URL": "redis://127.0.0.1:6379/3",
            "AWS_SES_REGION_NAME": "eu-west-1",
        },
        tmp_path,
    )
    assert loaded["ENGINE"] == "django.db.backends.postgresql"
    assert loaded["BROKER"] == "redis://127.0.0.1:6379/3"
    assert loaded["CACHE"] == "django.core.cache.backends.redis.RedisCache"
    assert loaded["SES_EMULATOR"] is False
    assert loaded["SES_ENDPOINT"] is None  # boto3 picks the regional SES endpoint
    assert loaded["SES_REGION"] == "eu-west-1"


def test_celery_broker_url_overrides_redis_url_for_the_broker_only(tmp_path):
    loaded = load_settings(
        {"REDIS_URL": "redis://127.0.0.1:6379/3", "CELERY_BROKER_URL": "amqp://guest@127.0.0.1//"}, tmp_path
    )
    assert loaded["BROKER"] == "amqp://guest@127.0.0.1//"
    assert loaded["CACHE"] == "django.core.cache.backends.redis.RedisCache"


def test_production_is_valid_with_every_required_setting(tmp_path):
    loaded = load_settings(PRODUCTION_ENV, tmp_path)
    assert loaded["PRODUCTION"] is True
    assert loaded["DEBUG"] is False
    assert loaded["SES_EMULATOR"] is False
    assert loaded["HEALTHZ_PUBLIC_DETAILS"] is False


def test_production_refuses_to_start_and_names_every_missing_setting(tmp_path):
    error = settings_error({"DJANGO_ENV": "production"}, tmp_path)
    for name in ["SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL", "DATABASE_URL", "REDIS_URL", "AWS_SES_REGION_NAME"]:
        assert name in error


def test_debug_off_alone_means_production(tmp_path):
    error = settings_error({"DEBUG": "false"}, tmp_path)
    assert "SECRET_KEY" in error


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"DATABASE_URL": "sqlite:////tmp/x.sqlite3"}, "DATABASE_URL"),
        ({"CELERY_BROKER_URL": "filesystem://localhost//"}, "CELERY_BROKER_URL (a broker server)"),
        # Redis holds the shared limits even when the broker is another server.
        ({"REDIS_URL": "", "CELERY_BROKER_URL": "amqp://guest@rabbit//"}, "REDIS_URL"),
        ({"AWS_SES_REGION_NAME": ""}, "AWS_SES_REGION_NAME"),
    ],
)
def test_production_refuses_embedded_stand_ins(tmp_path, override, named):
    error = settings_error({**PRODUCTION_ENV, **override}, tmp_path)
    assert named in error


def test_production_refuses_debug_on(tmp_path):
    error = settings_error({**PRODUCTION_ENV, "DEBUG": "true"}, tmp_path)
    assert "DEBUG must be off" in error


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"TRUSTED_PROXY_COUNT": "two"}, "TRUSTED_PROXY_COUNT='two' is not an integer"),
        ({"DJANGO_ENV": "staging"}, "DJANGO_ENV='staging'"),
        ({"SITE_URL": "dailyq.example.com"}, "must be an absolute http(s) URL"),
        ({"ADMIN_LOGIN_FAILURES_PER_CLIENT": "2"}, "ADMIN_LOGIN_FAILURES_PER_CLIENT must be at least"),
        ({"PRIVACY_CONTACT_EMAIL": "Privacy <p@example.com>"}, "is not a plain email address"),
    ],
)
def test_malformed_values_get_a_clear_error(tmp_path, env, message):
    assert message in settings_error(env, tmp_path)


def test_check_deploy_is_clean_in_production(tmp_path):
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_site_url_is_not_https(tmp_path):
    env = {**PRODUCTION_ENV, "SITE_URL": "http://dailyq.example.com"}
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode != 0
    assert "dailyq.W001" in result.stdout + result.stderr


@pytest.mark.parametrize("unset", ["OPERATOR_NAME", "PRIVACY_OFFICER_NAME", "PRIVACY_CONTACT_EMAIL"])
def test_production_warns_while_the_privacy_policy_names_no_contact(tmp_path, unset):
    env = {**PRODUCTION_ENV, unset: ""}
    result = run_python(["manage.py", "check", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode != 0
    assert "dailyq.W002" in result.stderr and unset in result.stderr


def test_development_needs_no_privacy_contact(tmp_path):
    result = run_python(["manage.py", "check", "--fail-level", "WARNING"], {}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_empty_values_count_as_unset(tmp_path):
    loaded = load_settings({"DJANGO_ENV": "", "DEBUG": "", "DATABASE_URL": "", "SITE_URL": ""}, tmp_path)
    assert loaded["PRODUCTION"] is False
    assert loaded["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["SITE_URL"] == "http://127.0.0.1:8000"


STATIC_HEADERS = """
import json, django
from django.conf import settings
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("collectstatic", interactive=False, verbosity=0)
from django.contrib.staticfiles.storage import staticfiles_storage
response = Client().get(staticfiles_storage.url("css/site.css"), secure=True, headers={"host": "dailyq.example.com"})
print(json.dumps({"status": response.status_code, **{name: response.get(name) for name in HEADERS}}))
"""


def test_static_files_in_production_carry_the_security_headers(tmp_path):
    # WhiteNoise answers static files from inside the middleware stack, before the views'.
    headers = ["X-Frame-Options", "Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"]
    env = {**PRODUCTION_ENV, "STATIC_ROOT": str(tmp_path / "static")}
    result = run_python(["-c", f"HEADERS = {headers!r}\n" + STATIC_HEADERS], env, tmp_path)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    assert answer["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in answer["Content-Security-Policy"]
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Referrer-Policy"] == "same-origin"


# --- The .env file -------------------------------------------------------------------


def write_env_file(tmp_path, text: str) -> str:
    path = tmp_path / "dailyq.env"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_settings_read_the_env_file(tmp_path):
    env_file = write_env_file(tmp_path, 'SITE_URL=http://from-file.test:9000\nDEFAULT_FROM_EMAIL="Q <q@file.test>"\n')
    loaded = load_settings({"DAILYQ_ENV_FILE": env_file}, tmp_path)
    assert loaded["SITE_URL"] == "http://from-file.test:9000"


def test_the_real_environment_wins_over_the_env_file(tmp_path):
    env_file = write_env_file(tmp_path, "SITE_URL=http://from-file.test\nREDIS_URL=redis://127.0.0.1:6379/7\n")
    loaded = load_settings({"DAILYQ_ENV_FILE": env_file, "SITE_URL": "http://from-shell.test"}, tmp_path)
    assert loaded["SITE_URL"] == "http://from-shell.test"
    assert loaded["BROKER"] == "redis://127.0.0.1:6379/7"


def test_a_named_env_file_that_does_not_exist_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere.env"
    result = run_python(["manage.py", "check"], {"DAILYQ_ENV_FILE": str(missing)}, tmp_path)
    assert result.returncode != 0
    assert f"DAILYQ_ENV_FILE='{missing}': no such file." in result.stderr


def test_manage_py_commands_reach_the_emulator_the_env_file_names(tmp_path, ses, settings):
    """`outbox` and `ses_status` talk to the port .env gives, not the default one."""
    from django.core.mail import send_mail

    send_mail("Moved port", "body", settings.DEFAULT_FROM_EMAIL, ["reader@example.org"])
    port = ses.url.rsplit(":", 1)[1]
    env = {"DAILYQ_ENV_FILE": write_env_file(tmp_path, f"SES_EMULATOR_PORT={port}\n")}

    outbox = run_python(["manage.py", "outbox"], env, tmp_path)
    assert outbox.returncode == 0, outbox.stderr
    assert "1 message(s) in the local outbox." in outbox.stdout
    assert "Moved port" in outbox.stdout

    status = run_python(["manage.py", "ses_status"], env, tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"Endpoint: http://127.0.0.1:{port}" in status.stdout
    assert "dailyq@example.com" in status.stdout


def test_celery_reads_the_env_file(tmp_path):
    env_file = write_env_file(tmp_path, "CELERY_BROKER_URL=redis://127.0.0.1:6379/9\nSITE_URL=http://celery.test\n")
    result = run_python(["-m", "celery", "-A", "mailservice", "report"], {"DAILYQ_ENV_FILE": env_file}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CELERY_BROKER_URL: 'redis://127.0.0.1:6379/9'" in result.stdout
    assert "SITE_URL: 'http://celery.test'" in result.stdout


@pytest.mark.slow
def test_gunicorn_reads_the_env_file(tmp_path):
    port = free_port()
    env_file = write_env_file(tmp_path, "SITE_URL=http://links.example:8123\n")
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "VAR_DIR": str(tmp_path / "var")}
    # The landing page reads the question bank, so its database needs its tables.
    migrated = run_python(["manage.py", "migrate", "--no-input"], {"DAILYQ_ENV_FILE": env_file}, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mailservice.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=BASE_DIR,
        env={**clean, "DAILYQ_ENV_FILE": env_file},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn never answered"
                time.sleep(0.3)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    # The link preview's URL is built on SITE_URL, which only the .env file gave.
    assert '<meta property="og:url" content="http://links.example:8123/">' in page


# --- SITE_URL in development ---------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "site_url"),
    [
        ({"WEB_PORT": "8200"}, "http://127.0.0.1:8200"),
        ({"WEB_HOST": "0.0.0.0", "WEB_PORT": "8201"}, "http://127.0.0.1:8201"),  # noqa: S104
        ({"WEB_HOST": "::", "WEB_PORT": "8202"}, "http://127.0.0.1:8202"),
        ({"WEB_HOST": "localhost", "WEB_PORT": "8203"}, "http://localhost:8203"),
        ({"WEB_HOST": "::1", "WEB_PORT": "8204"}, "http://[::1]:8204"),
        ({"WEB_PORT": "8205", "SITE_URL": "https://tunnel.example"}, "https://tunnel.example"),
    ],
)
def test_site_url_follows_the_served_address_in_development(tmp_path, env, site_url):
    assert load_settings(env, tmp_path)["SITE_URL"] == site_url


def test_site_url_follows_a_port_from_the_env_file(tmp_path):
    env_file = write_env_file(tmp_path, "WEB_PORT=8206\n")
    assert load_settings({"DAILYQ_ENV_FILE": env_file}, tmp_path)["SITE_URL"] == "http://127.0.0.1:8206"


def test_a_malformed_web_port_gets_a_clear_error(tmp_path):
    assert "WEB_PORT='80000' is not a port" in settings_error({"WEB_PORT": "80000"}, tmp_path)
