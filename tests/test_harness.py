"""bench.harness: how tests, the bench and the load test start and stop the app's processes."""

import os
import subprocess

import pytest

from bench.harness import NotReady, python_command, start_process, stop_all, wait_until, worker_command

# Ignores SIGTERM in itself and in a child of its own, then says so.
STUBBORN = """
import signal, subprocess, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
signal.pause()
"""


def gone(pid: int) -> bool:
    """No such process, or only its zombie (this container's init may not reap orphans)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_process_deaf_to_sigterm_is_killed_with_its_whole_session():
    process = start_process(
        "stubborn", python_command("-c", STUBBORN), dict(os.environ), output=subprocess.PIPE, new_session=True
    )
    child = int(process.stdout.readline())

    assert process.stop(timeout=1) is True  # it had to be killed
    assert process.returncode == -9
    assert gone(child)


def test_a_process_that_ends_on_sigterm_is_not_killed(tmp_path):
    log = tmp_path / "logs" / "quiet.log"
    script = "import signal, sys; print('one'); print('two', flush=True); signal.pause()"
    process = start_process("quiet", python_command("-c", script), dict(os.environ), log=log)
    wait_until(lambda: "two" in log.read_text(), timeout=60, processes=[process], what="logging")

    stop_all([process], timeout=60)

    assert process.returncode == -15  # SIGTERM, not SIGKILL
    assert process.tail(1) == "two"


def test_waiting_for_a_process_that_exits_says_so_at_once(tmp_path):
    log = tmp_path / "early.log"
    process = start_process("early", python_command("-c", "print('bad config'); raise SystemExit(3)"), {}, log=log)

    with pytest.raises(NotReady, match=r"early exited \(3\) before consuming\nbad config"):
        wait_until(lambda: False, timeout=600, processes=[process], what="consuming")
    process.stop()


def test_a_worker_command_is_celery_on_the_app_with_the_callers_options():
    command = worker_command(
        pool="threads", concurrency=8, hostname="w@%h", include=["bench.instrument"], options=["--without-mingle"]
    )
    assert command[1:] == [
        "-m", "celery", "-A", "mailservice", "worker", "-I", "bench.instrument",
        "--pool=threads", "--concurrency=8", "--loglevel=WARNING", "--hostname=w@%h", "--without-mingle",
    ]  # fmt: skip
