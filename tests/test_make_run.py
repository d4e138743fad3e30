"""`make run` on nothing configured: the whole service comes up, and Ctrl-C stops it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
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


def start(env):
    return subprocess.Popen(
        ["make", "run"],
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
        "WEB_PORT": str(web_port),
        "SES_EMULATOR_PORT": str(ses_port),
        "PYTHON": sys.executable,
    }
    base = f"http://127.0.0.1:{web_port}"

    process = start(env)
    try:
        report = wait_for_health(base, process)
        assert report["checks"]["database"]["vendor"] == "sqlite"
        assert report["checks"]["broker"]["transport"] == "filesystem"
        assert report["checks"]["ses"]["endpoint"] == "emulator"
        status, page = get(f"{base}/")
        assert status == 200 and "DailyQ" in page

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

    # A second run on the same state starts cleanly too.
    process = start(env)
    try:
        wait_for_health(base, process)
    finally:
        second_output = stop(process)
    assert "Traceback" not in second_output, second_output
    assert "Error" not in second_output.split("DailyQ is starting")[0], second_output
