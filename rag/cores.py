"""How many of this process's CPU cores other work leaves free right now, from the kernel's own
counters (Linux /proc/stat), so that llama.cpp runs no more threads than there are free cores.

llama.cpp splits every step over its threads and waits for the slowest one. A thread that shares
its core with another program runs at half speed, and so does the whole step. On 2 cores with one
of them busy elsewhere, Qwen2.5-Coder-1.5B wrote answers in 4.8 s at p50 with the threads fitted (1)
against 6.6 s with 2 (`bench/generate.py --model qwen --threads 0,2 --busy 1`); on the quiet machine
both run 2 threads.

    >>> threads_for(2)                  # doctest: +SKIP
    1   # while another program keeps one of the two cores busy
"""

from __future__ import annotations

import os
import time

WINDOW_S = 0.05  # how long the counters are watched: 5 ticks of the kernel's 100 Hz clock per core
# A core counts as free when other work uses less than half of it.
FREE_SHARE = 0.5


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


def snapshot(cpus: set[int], stat: str | None = None) -> tuple[float, float, float] | None:
    """(wall clock s, busy s summed over these CPUs, this process's own CPU s), or None where the
    kernel does not say (not Linux). `stat`: the text of /proc/stat (read now when None)."""
    if stat is None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                stat = f.read()
        except OSError:
            return None
    busy = 0
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        # user nice system idle iowait irq softirq steal (guest time is inside user already)
        fields = [int(x) for x in rest.split()[:8]]
        busy += sum(fields) - fields[3] - fields[4]
    return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), time.process_time()


def busy_elsewhere(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """Cores' worth of work other processes did between two snapshots (this process's own excluded).

    >>> round(busy_elsewhere((0.0, 10.0, 1.0), (0.5, 10.6, 1.1)), 2)   # 0.6 s busy, 0.1 s ours, in 0.5 s
    1.0
    """
    wall = after[0] - before[0]
    if wall <= 0:
        return 0.0
    return max(0.0, (after[1] - before[1]) - (after[2] - before[2])) / wall


def threads_for(most: int, window: float = WINDOW_S) -> int:
    """How many threads to run, at most `most`: one per core other work leaves free (at least one),
    watched for `window` seconds. `most` where the kernel does not say."""
    if most <= 1:
        return 1
    cpus = allowed_cpus()
    before = snapshot(cpus)
    if before is None:
        return most
    time.sleep(window)
    after = snapshot(cpus)
    busy = busy_elsewhere(before, after)
    free = len(cpus) - int(busy + (1 - FREE_SHARE))  # a core more than half busy is taken
    return max(1, min(most, free))
