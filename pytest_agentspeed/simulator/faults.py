"""Faults the simulated endpoint injects on request (``sim:PROFILE?faults=RATE``).

Real endpoints throw 429s and 529s, break streams off with an ``overloaded_error``, drop
connections and stall. Each request draws at most one fault, from its own seeded stream, so a
run is reproducible and a retried request draws again (it may be served the second time):

* ``429``: rate limited before the response starts, with ``retry-after`` (whole seconds, as
  HTTP has it) and ``retry-after-ms`` (both SDKs prefer it), scaled by the time scale;
* ``529``: overloaded before the response starts, no ``retry-after`` (the client's own
  back-off applies, as with the real API);
* ``error``: the stream starts, then an error event (``overloaded_error``) ends it;
* ``drop``: the stream starts, then the connection is closed without finishing the body;
* ``stall``: the stream pauses for :data:`STALL_S` (scaled) partway, then completes.

The three mid-stream kinds need a stream; a non-streamed request draws only ``429`` and
``529``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

#: Fault kinds, in the order their rates are laid out on the unit interval.
FAULT_KINDS = ("429", "529", "error", "drop", "stall")
#: Kinds that happen after the response started (need a stream).
MID_STREAM = frozenset({"error", "drop", "stall"})
#: ``retry-after`` of a simulated 429, before scaling.
RETRY_AFTER_S = 2.0
#: Length of a simulated stall, before scaling.
STALL_S = 30.0
#: Where in the stream a mid-stream fault strikes: this fraction of its writes, drawn uniformly.
CUT_RANGE = (0.3, 0.8)


def fault_rates(total: float | None, per_kind: Mapping[str, float]) -> dict[str, float]:
    """Per-kind rates: ``total`` split evenly over the kinds, then the per-kind ones set.

    :raises ValueError: for a rate outside [0, 1], an unknown kind, or rates summing above 1.
    """
    rates = dict.fromkeys(FAULT_KINDS, 0.0)
    if total is not None:
        _check_rate("faults", total)
        rates = dict.fromkeys(FAULT_KINDS, total / len(FAULT_KINDS))
    for kind, rate in per_kind.items():
        if kind not in rates:
            raise ValueError(f"unknown fault kind {kind!r}; accepted: {', '.join(FAULT_KINDS)}")
        _check_rate(f"fault_{kind}", rate)
        rates[kind] = rate
    if sum(rates.values()) > 1 + 1e-9:
        raise ValueError(f"fault rates add up to {sum(rates.values()):g}, more than 1")
    return {k: v for k, v in rates.items() if v > 0}


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be a rate between 0 and 1, not {rate:g}")


def draw_fault(rates: Mapping[str, float], rng: random.Random, *, stream: bool) -> str | None:
    """The fault this request suffers, or ``None``.

    One uniform draw per request whatever the rates, so adding a kind does not shift the
    draws of the others.
    """
    u = rng.random()
    edge = 0.0
    for kind in FAULT_KINDS:
        edge += rates.get(kind, 0.0)
        if u < edge:
            return kind if stream or kind not in MID_STREAM else None
    return None


def cut_index(writes: int, rng: random.Random) -> int:
    """The write a mid-stream fault replaces: after the start, before the end."""
    lo, hi = CUT_RANGE
    return min(max(1, int(writes * rng.uniform(lo, hi))), max(1, writes - 1))
