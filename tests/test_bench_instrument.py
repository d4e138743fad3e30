"""bench.instrument wraps the send path's steps by name: a rename in the app must not leave it behind."""

import os
import subprocess
import sys

from tests.conftest import BASE_DIR

LOAD = """
import django
django.setup()
import bench.instrument
from mailer import emails, gate, pacing, selectors
from mailer.sending import batch
wrapped = [gate.send_message, batch.build_daily_email, selectors.render_markdown, emails.render_email]
print(all(getattr(f, "__bench_wrapped__", False) for f in wrapped))
"""


def test_the_bench_workers_instrumentation_loads_and_wraps_every_step():
    env = dict(os.environ, DAILYQ_BENCH="1", DJANGO_SETTINGS_MODULE="mailservice.settings")
    done = subprocess.run(
        [sys.executable, "-c", LOAD], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"
