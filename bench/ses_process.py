"""bench.fake_ses.FakeSES in a process of its own, driven over a pipe.

The HTTP server runs on threads of a child process, so its CPU use is its
own (and measured), not the harness's. Its sockets use TCP_NODELAY (see
_serve), so the latency it adds is the one asked for. Arrival times are
FakeSES's `arrived`, stamped as each request has been read (before the
latency), which is when SES would count it against the rate. The parent
asks for counts, arrival times and CPU time, resets the counters between
phases, and stops it.

    with SESProcess(latency=0.05) as ses:
        ...  # AWS_SES_REGION_ENDPOINT_URL=ses.url
        ses.count()  # {"accepted": ..., "refused": ..., "calls": ...}
        ses.arrivals()  # sorted arrival times (time.time()) of accepted sends
"""

import multiprocessing
import resource


def _serve(conn, latency: float, host: str, port: int) -> None:
    import socketserver

    from bench.fake_ses import FakeSES

    # FakeSES answers with two writes (headers, then body); with Nagle's
    # algorithm on, the body waits for the client's delayed ACK of the
    # headers, which adds ~40 ms to every call (96 ms instead of 58 ms at a
    # 50 ms latency). TCP_NODELAY on its sockets (this process only) removes that.
    socketserver.StreamRequestHandler.disable_nagle_algorithm = True

    server = FakeSES(latency=latency, max_send_rate=100_000.0, max_24_hour_send=10_000_000.0).start(host, port)
    conn.send(server.url)
    while True:
        try:
            command = conn.recv()
        except EOFError:
            break
        if command == "count":
            with server.lock:
                conn.send({"accepted": len(server.accepted), "refused": len(server.refused), "calls": server.calls})
        elif command == "arrivals":
            with server.lock:
                conn.send(sorted(item["arrived"] for item in server.accepted))
        elif command == "sizes":
            with server.lock:
                conn.send([item["size"] for item in server.accepted])
        elif command == "recipients":
            with server.lock:
                conn.send([item["to"][0] if item["to"] else "" for item in server.accepted])
        elif command == "reset":
            with server.lock:
                server.accepted.clear()
                server.refused.clear()
                server.calls = 0
            conn.send(True)
        elif command == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(usage.ru_utime + usage.ru_stime)
        elif command == "stop":
            server.stop()
            conn.send(True)
            break
    conn.close()


class SESProcess:
    def __init__(self, *, latency: float = 0.05, host: str = "127.0.0.1", port: int = 0):
        self.latency = latency
        self.host = host
        self.port = port
        self.url = ""
        self._process = None
        self._conn = None

    def start(self) -> "SESProcess":
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self.latency, self.host, self.port), name="fake-ses", daemon=True
        )
        self._process.start()
        child.close()
        if not self._conn.poll(30):
            raise RuntimeError("the fake SES process did not start within 30 s")
        self.url = self._conn.recv()
        return self

    @property
    def pid(self) -> int:
        return self._process.pid

    def _ask(self, command: str):
        self._conn.send(command)
        return self._conn.recv()

    def count(self) -> dict:
        return self._ask("count")

    def arrivals(self) -> list[float]:
        return self._ask("arrivals")

    def sizes(self) -> list[int]:
        return self._ask("sizes")

    def recipients(self) -> list[str]:
        return self._ask("recipients")

    def reset(self) -> None:
        self._ask("reset")

    def cpu_seconds(self) -> float:
        return self._ask("cpu")

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            if self._process.is_alive():
                self._ask("stop")
        except (EOFError, BrokenPipeError, OSError):
            pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._process = None

    def __enter__(self) -> "SESProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
