"""`make run` on nothing configured: the whole service comes up, and Ctrl-C stops it."""

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import BASE_DIR, free_port

pytestmark = pytest.mark.slow


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None, ""


def last_heartbeat(base):
    status, body = get(f"{base}/healthz")
    return json.loads(body)["worker"]["last_heartbeat"] if status == 200 else None


def wait_for_health(base, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "make run exited early"
        status, body = get(f"{base}/healthz")
        if status == 200:
            report = json.loads(body)
            if report["worker"]["last_heartbeat"]:
                return report
        time.sleep(0.5)
    raise AssertionError(f"/healthz never reported healthy with a worker: {status} {body}")


def stop(process):
    """Ctrl-C, as a user would: SIGINT to the whole foreground process group."""
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    # Every process make run started is gone.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return output
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError("processes were left running after Ctrl-C:\n" + output)


def subscribe(base, email):
    """Submit the landing page's form as a browser would (CSRF cookie and token)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(f"{base}/", timeout=10) as response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode()).group(1)
    form = {
        "csrfmiddlewaretoken": token,
        "email": email,
        "categories": "backend",
        "frequency": "daily",
        "consent": "on",
    }
    request = urllib.request.Request(f"{base}/subscribe/", data=urllib.parse.urlencode(form).encode(), method="POST")
    request.add_header("Referer", f"{base}/")
    with opener.open(request, timeout=10) as response:
        assert response.status == 200, response.status


def confirm_link_mailed_to(email, env, timeout=60):
    """The confirm link in the verification mail the worker sent, read with `manage.py outbox`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = subprocess.run(
            [f"{BASE_DIR}/.venv/bin/python", "manage.py", "outbox"],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        ids = re.findall(rf"^(\S+)  .*\n  to {re.escape(email)}$", listing.stdout, flags=re.MULTILINE)
        if ids:
            shown = subprocess.run(
                [f"{BASE_DIR}/.venv/bin/python", "manage.py", "outbox", "--show", ids[0]],
                cwd=BASE_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            return re.search(r"https?://\S+/confirm/\S+/", shown.stdout).group(0)
        time.sleep(1)
    raise AssertionError(f"no verification mail to {email}: {listing.stdout} {listing.stderr}")


def start(env, *make_args):
    return subprocess.Popen(
        ["make", "run", *make_args],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_make_run_serves_the_site_on_embedded_defaults_twice(tmp_path):
    web_port, ses_port = free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "VAR_DIR": str(tmp_path / "var"),
        "SES_EMULATOR_PORT": str(ses_port),
        "PYTHON": sys.executable,
        "DAILYQ_ENV_FILE": os.devnull,
    }
    base = f"http://127.0.0.1:{web_port}"

    # The port as the README says to move it: on make's command line.
    process = start(env, f"WEB_PORT={web_port}")
    try:
        report = wait_for_health(base, process)
        assert report["checks"]["database"]["vendor"] == "sqlite"
        assert report["checks"]["broker"]["transport"] == "filesystem"
        assert report["checks"]["ses"]["endpoint"] == "emulator"
        status, page = get(f"{base}/")
        assert status == 200 and "DailyQ" in page

        # The worker builds mail links on the port actually served.
        subscribe(base, "first@example.org")
        assert confirm_link_mailed_to("first@example.org", env).startswith(f"{base}/confirm/")

        # A task published by another process reaches the worker through the
        # filesystem broker.
        before = report["worker"]["last_heartbeat"]
        subprocess.run(
            [
                f"{BASE_DIR}/.venv/bin/python",
                "-c",
                "import django; django.setup(); "
                "from mailservice.tasks import record_heartbeat; record_heartbeat.delay()",
            ],
            cwd=BASE_DIR,
            env={**env, "DJANGO_SETTINGS_MODULE": "mailservice.settings"},
            check=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while last_heartbeat(base) in (before, None):
            assert time.monotonic() < deadline, "the worker never ran the published task"
            time.sleep(0.5)
    finally:
        first_output = stop(process)
    assert "Traceback" not in first_output, first_output
    banner = first_output.split("DailyQ is starting")[1]
    for url in (f"{base}/", f"{base}/admin/", f"{base}/healthz", f"{base}/dev/outbox/"):
        assert url in banner, banner
    assert ":8000" not in banner, banner

    # A second run on the same state starts cleanly too, this time with the
    # web and emulator ports in a .env file: every process reads it.
    web_port, ses_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    env_file = tmp_path / "dailyq.env"
    env_file.write_text(f"WEB_PORT={web_port}\nSES_EMULATOR_PORT={ses_port}\n")
    env = {**env, "DAILYQ_ENV_FILE": str(env_file)}
    del env["SES_EMULATOR_PORT"]
    process = start(env)
    try:
        report = wait_for_health(base, process)
        assert report["checks"]["ses"]["endpoint"] == "emulator"
        subscribe(base, "second@example.org")
        assert confirm_link_mailed_to("second@example.org", env).startswith(f"{base}/confirm/")
    finally:
        second_output = stop(process)
    assert "Traceback" not in second_output, second_output
    assert "Error" not in second_output.split("DailyQ is starting")[0], second_output
    assert f"  site        {base}/" in second_output, second_output
