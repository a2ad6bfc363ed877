"""How late this process's own clock runs while it measures: a monitor of timer overshoot.

Every mark of a turn is a ``perf_counter_ns`` the client takes when it gets to run. When the
machine's cores are busy with other work (``-n 8`` on two cores, a co-located simulator, a
test command), or another thread of the process holds the GIL, or the collector pauses, the
process gets to run late, and each mark is late by as much: the session's numbers look as
precise as ever and are not. Nothing in a turn's own events can tell.

:class:`LatenessMonitor` measures it from the side: a daemon thread sleeps a fixed interval
again and again and records by how much each wake-up overshot the moment it asked for. A
thread of this process that was due then (the client reading a stream) was held up as long.
It costs one short wake-up per interval: about 75 us of CPU on the 2-core development VM (most
of it the kernel's timer), so 0.4% of one core at the default 20 ms interval.

The bench starts it when its first session starts and stops it at
:meth:`~pytest_agentspeed.run.bench.Bench.close`; each session takes the overshoots of its own
time window (:meth:`LatenessMonitor.window`) and the machine's CPU load over it
(:func:`cpu_times`), into its :class:`~pytest_agentspeed.records.ClockRecord`. Under xdist
every worker runs its own monitor for its own sessions.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import os
import threading
import time
from array import array
from collections.abc import Callable, Iterator

from pytest_agentspeed.analysis.metrics import percentile
from pytest_agentspeed.records import ClockRecord

#: Between wake-ups. Short enough that a session of a few seconds (a scaled simulator run)
#: still has a hundred samples; long enough that the monitor costs little (see the module's
#: docstring) and that its own wake-ups hardly contend for the GIL with the client.
INTERVAL_S = 0.02
#: Where the kernel says how much CPU time every core has spent, and on what.
PROC_STAT = "/proc/stat"


class LatenessMonitor:
    """A thread that samples how late this process gets to run when it is due.

    :param interval_s: how long each sleep asks for.
    :param clock: the clock overshoots are read on (``perf_counter_ns``, the marks' clock).
    :param sleep: sleeps for seconds (``time.sleep``); tests inject a clock and a sleeper and
        call :meth:`sample` themselves, without the thread.
    :param marking: whether marks are being taken now (a response is being read); a wake-up is
        recorded only when they were, as it slept or as it woke. Lateness between streams (the
        agent's own work and tools, at the default GIL switch interval) moves no mark, and
        counting it would cry wolf. ``None``: every wake-up counts.
    """

    def __init__(
        self,
        interval_s: float = INTERVAL_S,
        *,
        clock: Callable[[], int] = time.perf_counter_ns,
        sleep: Callable[[float], None] = time.sleep,
        marking: Callable[[], bool] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self._marking = marking
        self._interval_ns = round(interval_s * 1e9)
        self._clock = clock
        self._sleep = sleep
        #: When each wake-up happened and how late it was (ns), in the order they happened:
        #: arrays of machine integers, 16 bytes a sample, as a session may run for an hour.
        self._woke: array[int] = array("q")
        self._late: array[int] = array("q")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling, if not started yet."""
        if self._thread is not None:
            return
        self._stopping.clear()
        # A daemon: a run that ends without closing its bench must not hang on it.
        self._thread = threading.Thread(target=self._run, name="agentspeed-lateness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling; the samples taken stay readable."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout=5 * self.interval_s + 1.0)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.sample()

    def sample(self) -> None:
        """Sleep one interval and record by how much the wake-up overshot it.

        Each sleep is planned from the moment it starts, so one long stall is one late sample,
        not a burst of catching-up ones that would count it again.
        """
        marking = self._marking
        planned = self._clock() + self._interval_ns
        was_marking = marking is None or marking()
        self._sleep(self.interval_s)
        woke = self._clock()
        if not (was_marking or marking is None or marking()):
            return
        with self._lock:
            self._woke.append(woke)
            # A sleep never ends early; a coarse clock may say it did by a tick.
            self._late.append(max(0, woke - planned))

    def now(self) -> int:
        """The monitor's clock now (ns): where a session's window starts and ends."""
        return self._clock()

    def window(self, start_ns: int, end_ns: int) -> list[int]:
        """The overshoots (ns) of the wake-ups from ``start_ns`` to ``end_ns`` (on the
        monitor's clock), in the order they happened."""
        with self._lock:
            low = bisect.bisect_left(self._woke, start_ns)
            high = bisect.bisect_right(self._woke, end_ns)
            return self._late[low:high].tolist()

    def forget_until(self, moment_ns: int) -> None:
        """Drop the samples up to ``moment_ns``: no session will ask for them again."""
        with self._lock:
            cut = bisect.bisect_right(self._woke, moment_ns)
            del self._woke[:cut]
            del self._late[:cut]


class SessionClock:
    """A run's monitor, read session by session: :meth:`start` when a session starts,
    :meth:`stop` when it ends gives its record; :meth:`close` when the run closes.

    Sessions of one bench run one after another, so the samples up to a session's end are
    dropped once it has its record: the monitor keeps no more than one session's worth.
    """

    def __init__(
        self,
        monitor: LatenessMonitor | None = None,
        *,
        cpu: Callable[[], tuple[int, int] | None] | None = None,
        load: Callable[[], float | None] | None = None,
    ) -> None:
        self.monitor = monitor if monitor is not None else LatenessMonitor()
        self._cpu = cpu or cpu_times
        self._load = load or load_average
        self._start_ns = 0
        self._cpu_start: tuple[int, int] | None = None

    def start(self) -> None:
        """A session starts now (the monitor too, with the run's first)."""
        self.monitor.start()
        self._cpu_start = self._cpu()
        self._start_ns = self.monitor.now()

    def stop(self) -> ClockRecord | None:
        """The session that started last ends now: its clock's record (``None`` when it was
        shorter than one of the monitor's intervals)."""
        end_ns = self.monitor.now()
        record = clock_record(
            self.monitor.window(self._start_ns, end_ns),
            cpu_before=self._cpu_start,
            cpu_after=self._cpu(),
            load_1m=self._load(),
            cpus=os.cpu_count(),
        )
        self.monitor.forget_until(end_ns)
        return record

    def close(self) -> None:
        """The run is over: stop the monitor."""
        self.monitor.stop()


def clock_record(
    late_ns: list[int],
    *,
    cpu_before: tuple[int, int] | None,
    cpu_after: tuple[int, int] | None,
    load_1m: float | None,
    cpus: int | None,
) -> ClockRecord | None:
    """A session's clock record from its window's overshoots and the CPU counters read at its
    start and end; ``None`` when the monitor woke not once in it (a session shorter than the
    interval says nothing about lateness)."""
    if not late_ns:
        return None
    late_ms = [v / 1e6 for v in late_ns]
    return ClockRecord(
        samples=len(late_ms),
        late_p50_ms=_ms(percentile(late_ms, 50)),
        late_p99_ms=_ms(percentile(late_ms, 99)),
        late_max_ms=_ms(max(late_ms)),
        cpu_busy=busy_share(cpu_before, cpu_after),
        load_1m=load_1m,
        cpus=cpus,
    )


def _ms(value: float | None) -> float:
    # Microseconds are all a run file needs of them; the rest is the clock's noise.
    return round(value or 0.0, 3)


def cpu_times(path: str = PROC_STAT) -> tuple[int, int] | None:
    """The machine's CPU time so far, all cores, in clock ticks: (busy, total); ``None`` where
    ``/proc/stat`` is not there (not Linux) or not readable."""
    try:
        with open(path, encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice]: the guest times are
    # already inside user and nice, so they are not added again.
    ticks = [int(v) for v in fields[1:9]]
    total = sum(ticks)
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return total - idle, total


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time that was busy between two :func:`cpu_times` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)


def load_average() -> float | None:
    """The 1-minute load average, ``None`` where the system has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


@contextlib.contextmanager
def collector_held() -> Iterator[None]:
    """No garbage collection of this process's heap while a session runs.

    A full collection scans every object the process holds (pytest's items, the simulator's
    state, the records of earlier sessions: some 200,000 in the example suite's run), and holds
    every thread up meanwhile: 100-160 ms, seen landing in the middle of a session's stream and
    moving its marks by as much. So what is alive when the session starts is frozen out of the
    collector's reach (``gc.freeze``: it stays alive anyway), automatic collection is off while
    the session runs (memory is still freed by reference counting; only garbage cycles wait),
    and after it, a collection of what the session left (its own objects only) runs outside
    any measured time.
    """
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect()
