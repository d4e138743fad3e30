"""The one way tests, `bench/` and `loadtest/` start the app's processes.

Celery workers, gunicorn, the SES event webhook and the SES emulator all run
as children started here: our own interpreter, the repository as working
directory, the caller's environment, and a stop that always reaps them.

It lives in `bench/` because that is the package all three already import
(tests and the load test use `bench.fake_ses` and `bench.proc`), so the
dependency runs one way: tests -> bench <- loadtest. It is not in the app
(`mailservice/`), which ships to production and must not carry test tools.

    worker = start_worker(env, pool="threads", concurrency=8, hostname="send0@%h")
    try:
        wait_until(lambda: cache.get(HEARTBEAT_CACHE_KEY), processes=[worker], what="worker heartbeat")
        ...
    finally:
        stop_all([worker])
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


class Process(subprocess.Popen):
    """A child process of the app: a Popen that knows its name and log, and how to stop."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        env: dict,
        *,
        log: Path | None = None,
        output: int | None = subprocess.DEVNULL,
        new_session: bool = False,
        **popen,
    ):
        self.name = name
        self.log_path = log
        self._log = None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(log, "w")  # noqa: SIM115 (closed in stop)
            popen.setdefault("stdout", self._log)
            popen.setdefault("stderr", subprocess.STDOUT)
        elif output is not None:
            popen.setdefault("stdout", output)
            popen.setdefault("stderr", subprocess.STDOUT if output == subprocess.PIPE else output)
        self.new_session = new_session
        super().__init__(list(command), cwd=BASE_DIR, env=env, start_new_session=new_session, **popen)

    def alive(self) -> bool:
        return self.poll() is None

    def terminate_softly(self) -> None:
        """SIGTERM: a Celery worker does a warm shutdown, gunicorn stops its workers gracefully."""
        if self.poll() is None:
            self.send_signal(signal.SIGTERM)

    def reap(self, timeout: float = 30) -> bool:
        """Wait for the process to end after terminate_softly; past `timeout`, kill it
        (its whole process group when it has a session of its own, so no pool child
        outlives it). True if it had to be killed."""
        killed = False
        try:
            self.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            killed = True
            if self.new_session:
                os.killpg(self.pid, signal.SIGKILL)
            else:
                self.kill()
            self.wait()
        if self._log is not None:
            self._log.close()
        return killed

    def stop(self, timeout: float = 30) -> bool:
        self.terminate_softly()
        return self.reap(timeout)

    def tail(self, lines: int = 30) -> str:
        """The last lines of its log file ("" without one)."""
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_process(name: str, command: Sequence[str], env: dict, **options) -> Process:
    """Any child process of the app (`options` as for Process)."""
    return Process(name, command, env, **options)


def python_command(*arguments: str) -> list[str]:
    """Our own interpreter with `arguments` (`-m module ...`, `manage.py ...`)."""
    return [sys.executable, *arguments]


def worker_command(
    *,
    pool: str | None = None,
    concurrency: int | None = None,
    hostname: str | None = None,
    loglevel: str = "WARNING",
    include: Iterable[str] = (),
    options: Iterable[str] = (),
) -> list[str]:
    """`celery -A mailservice worker` with these options (Celery's defaults where None)."""
    command = python_command("-m", "celery", "-A", "mailservice", "worker")
    for module in include:
        command += ["-I", module]
    if pool is not None:
        command.append(f"--pool={pool}")
    if concurrency is not None:
        command.append(f"--concurrency={concurrency}")
    command.append(f"--loglevel={loglevel}")
    if hostname is not None:
        command.append(f"--hostname={hostname}")
    return [*command, *options]


def start_worker(
    env: dict,
    *,
    pool: str | None = None,
    concurrency: int | None = None,
    hostname: str | None = None,
    loglevel: str = "WARNING",
    include: Iterable[str] = (),
    options: Iterable[str] = (),
    name: str = "celery",
    **process_options,
) -> Process:
    """One Celery worker of the app on the broker and queue `env` names (CELERY_QUEUE).

    It returns at once: a caller that needs the worker consuming waits for a
    sign of it with wait_until (a heartbeat, a ready signal, /healthz).
    """
    command = worker_command(
        pool=pool, concurrency=concurrency, hostname=hostname, loglevel=loglevel, include=include, options=options
    )
    return Process(name, command, env, **process_options)


def stop_all(processes: Iterable[Process], timeout: float = 30) -> None:
    """SIGTERM to every process first, so their warm shutdowns overlap, then reap each."""
    processes = list(processes)
    for process in processes:
        process.terminate_softly()
    for process in processes:
        process.reap(timeout)


class NotReady(RuntimeError):
    """A process did not become ready, or exited while it was awaited."""


def wait_until(
    ready: Callable[[], object],
    *,
    timeout: float = 60,
    interval: float = 0.2,
    processes: Iterable[Process] = (),
    what: str = "ready",
) -> None:
    """Poll `ready()` until it is true; raise NotReady if one of `processes` exits first or time runs out."""
    processes = list(processes)
    deadline = time.monotonic() + timeout
    while not ready():
        for process in processes:
            if process.poll() is not None:
                raise NotReady(f"{process.name} exited ({process.returncode}) before {what}\n{process.tail()}")
        if time.monotonic() > deadline:
            raise NotReady(f"not {what} within {timeout:.0f} s")
        time.sleep(interval)
