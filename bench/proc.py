"""Measuring processes and the machine from /proc, for the bench and the load test.

CPU figures are CPU-seconds (utime + stime; for the machine, all cores).
"""

import os
import socket
import time
from collections import defaultdict

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values, q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(min(rank, len(ordered))) - 1]


def _stat_fields(pid) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    except OSError:
        return None


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (one pass over /proc)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(entry)) is not None:
            children[int(fields[1])].append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def status_kb(pid: int, field: str) -> int:
    """A kB field of /proc/<pid>/status (VmHWM: peak RSS, VmRSS: RSS now); 0 if gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids) -> float:
    """CPU-seconds the processes have used (those gone count nothing)."""
    total = 0
    for pid in pids:
        if (fields := _stat_fields(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU-seconds of the whole machine since boot, all cores."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


def busy_share(before, after) -> float:
    """The share of the machine's CPU time that was busy between two machine_cpu() samples."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def busy_seconds(before, after) -> float:
    """CPU-seconds the machine spent busy (all cores) between two machine_cpu() samples."""
    return after[0] - before[0]


def wait_for_quiet(max_wait: float, *, seconds: int = 1, threshold: float = 0.25) -> float:
    """Wait (up to max_wait s) for `seconds` seconds in a row under `threshold` busy.

    The machine may be shared (test suites, other benchmarks); returns the busy
    share of the last second seen, which the reports print.
    """
    deadline = time.monotonic() + max_wait
    quiet = 0
    while True:
        before = machine_cpu()
        time.sleep(1)
        share = busy_share(before, machine_cpu())
        quiet = quiet + 1 if share < threshold else 0
        if quiet >= seconds or time.monotonic() > deadline:
            return share


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
