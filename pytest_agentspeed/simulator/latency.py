"""When each byte of a simulated response goes out: the latency model as a pure function.

:func:`plan_response` turns a profile, the session's draws, the request's cache accounting and
the response's token counts into a :class:`ResponsePlan`: when the headers go out, when the
first token does, and when each later decode step emits how many tokens. The server only
sleeps until those offsets. The mechanisms are those of ``research/latency-model.md``
sections 9 and 10: RTT, queue (times the session's congestion), TTFT floor, uncached prefill,
a per-cached-token cost, prefix-cache misses, a per-request decode rate, speculative bursts
(truncated-geometric tokens per verify step, per content class), per-step jitter and stalls.

With ``jitter=False`` every random draw takes its median and stalls, misses and degraded
sessions are off, so a test can predict the schedule; burst sizes stay random (seeded).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from pytest_agentspeed.simulator.profiles import Pair, Profile, Triple

#: The standard normal's 90th percentile: turns (p50, p90) into a lognormal sigma.
Z90 = 1.2815515655446004

ContentClass = Literal["code", "prose"]


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded from the parts, stable across processes and Python versions."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def lognormal(rng: random.Random, pair: Pair, jitter: bool) -> float:
    """A draw with median ``pair[0]`` and 90th percentile ``pair[1]``."""
    p50, p90 = pair
    if not jitter or p50 <= 0:
        return p50
    sigma = math.log(p90 / p50) / Z90
    return p50 * math.exp(sigma * rng.gauss(0.0, 1.0))


def split_lognormal(rng: random.Random, triple: Triple, jitter: bool) -> float:
    """A draw with the given P10, P50 and P90, keeping asymmetric tails."""
    p10, p50, p90 = triple
    if not jitter:
        return p50
    z = rng.gauss(0.0, 1.0)
    sigma = math.log(p50 / p10) / Z90 if z < 0 else math.log(p90 / p50) / Z90
    return p50 * math.exp(sigma * z)


@cache
def acceptance(tau: float, k: int) -> float:
    """Per-token acceptance alpha such that a k-token draft yields tau tokens per step.

    Solves ``(1 - a**(k+1)) / (1 - a) = tau`` by bisection (Leviathan et al. 2023, Eq. 1).
    """
    lo, hi = 0.0, 0.999999
    for _ in range(80):
        mid = (lo + hi) / 2
        if (1 - mid ** (k + 1)) / (1 - mid) < tau:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True, slots=True)
class SessionDraw:
    """What is drawn once per simulated session."""

    #: The session landed on the profile's degraded lane.
    degraded: bool
    #: Multiplies queue time and divides decode rate for the whole session.
    congestion: float


def draw_session(profile: Profile, rng: random.Random, *, jitter: bool) -> SessionDraw:
    """Draw the session-level factors."""
    if not jitter:
        return SessionDraw(degraded=False, congestion=1.0)
    degraded = rng.random() < profile.degraded_p
    congestion = math.exp(profile.congestion_sigma * rng.gauss(0.0, 1.0))
    return SessionDraw(degraded=degraded, congestion=congestion)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponsePlan:
    """The schedule of one response, in (scaled) seconds from the request's arrival."""

    headers_s: float
    first_token_s: float
    #: (offset, tokens emitted then); the first step is at ``first_token_s``.
    steps: tuple[tuple[float, int], ...]
    #: The unscaled parts of the time to first token and of the decode, for the record.
    components: dict[str, float]
    cache_miss: bool

    @property
    def end_s(self) -> float:
        """When the last token goes out."""
        return self.steps[-1][0] if self.steps else self.first_token_s


def draw_cache_miss(profile: Profile, rng: random.Random, *, jitter: bool) -> bool:
    """Whether this turn loses its cached prefix (TTL eviction, routing to a cold replica)."""
    return jitter and rng.random() < profile.cache_miss_p


def plan_response(
    profile: Profile,
    session: SessionDraw,
    rng: random.Random,
    *,
    cached_tokens: int,
    uncached_tokens: int,
    segments: Sequence[tuple[ContentClass, int]],
    time_scale: float,
    jitter: bool,
    cache_miss: bool = False,
    in_flight: int = 0,
    speed: float = 1.0,
) -> ResponsePlan:
    """Schedule one response.

    :param cached_tokens: input tokens served from the prompt cache.
    :param uncached_tokens: input tokens to prefill (cache writes included).
    :param segments: the output in order, as (content class, tokens) runs.
    :param time_scale: multiplies every delay.
    :param cache_miss: the prefix cache missed: the cached tokens are prefilled too.
    :param in_flight: other requests being served by the same endpoint right now (load).
    :param speed: the model side runs at this multiple of the profile's speed: the queue, the
        TTFT floor, the prefill, the cached prefix, every decode step and stall take
        ``1 / speed`` times as long. The round trip is the network's and keeps its time. The
        random draws are the same at any speed, so a slower endpoint's schedule is the same
        schedule stretched.
    """
    load = 1 + profile.load_slope * max(0, in_flight)
    rtt = lognormal(rng, profile.rtt_s, jitter)
    queue_pair = profile.queue_s
    decode_triple = profile.decode_tok_s
    if session.degraded and profile.degraded_queue_s and profile.degraded_decode_tok_s:
        queue_pair, decode_triple = profile.degraded_queue_s, profile.degraded_decode_tok_s
    queue = lognormal(rng, queue_pair, jitter) * session.congestion * load
    fixed = lognormal(rng, profile.fixed_s, jitter)
    prefill_rate = split_lognormal(rng, profile.prefill_tok_s, jitter)
    prefill = uncached_tokens / prefill_rate
    if cache_miss:
        prefill += cached_tokens / prefill_rate
        cached = 0.0
    else:
        cached = cached_tokens * profile.cached_us_per_token * 1e-6
    if speed != 1.0:
        queue, fixed, prefill, cached = (x / speed for x in (queue, fixed, prefill, cached))
    ttft = rtt + queue + fixed + prefill + cached

    rate = split_lognormal(rng, decode_triple, jitter) / session.congestion / load * speed
    if profile.ctx_half_tokens:
        rate /= 1 + (cached_tokens + uncached_tokens) / profile.ctx_half_tokens
    speculative = profile.spec_k > 1 and not session.degraded
    step_s = (profile.spec_tau_code if speculative else 1.0) / rate
    total = sum(n for _, n in segments)
    stall_at, stall = -1, 0.0
    if jitter and total > 0 and rng.random() < profile.stall_p:
        stall = lognormal(rng, profile.stall_s, jitter) / speed
        stall_at = rng.randrange(total)

    steps: list[tuple[float, int]] = []
    t = ttft
    emitted = 0
    for content, n in segments:
        left = n
        alpha = acceptance(
            profile.spec_tau_code if content == "code" else profile.spec_tau_prose, profile.spec_k
        )
        while left > 0:
            if steps:
                t += step_s * (
                    math.exp(profile.step_jitter_sigma * rng.gauss(0.0, 1.0)) if jitter else 1.0
                )
            j = _accepted(rng, alpha, profile.spec_k) if speculative else 1
            j = min(j, left)
            if emitted <= stall_at < emitted + j:
                t += stall
            steps.append((t, j))
            left -= j
            emitted += j

    decode = (steps[-1][0] - ttft) if steps else 0.0
    return ResponsePlan(
        headers_s=rtt * time_scale,
        first_token_s=ttft * time_scale,
        steps=tuple((off * time_scale, j) for off, j in steps),
        components={
            "rtt": rtt,
            "queue": queue,
            "fixed": fixed,
            "prefill": prefill,
            "cached_prefix": cached,
            "decode": decode,
            "stall": stall,
            "decode_tok_s": rate,
            "load": load,
        },
        cache_miss=cache_miss,
    )


def _accepted(rng: random.Random, alpha: float, k: int) -> int:
    """Tokens a verify step yields: 1 + accepted drafts, truncated-geometric in 1..k+1."""
    j = 1
    while j <= k and rng.random() < alpha:
        j += 1
    return j
