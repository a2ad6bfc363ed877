"""The simulator's latency model, prompt cache and tokens, as pure functions."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from pytest_agentspeed.simulator.cache import Block, PromptCache, request_blocks
from pytest_agentspeed.simulator.latency import (
    ContentClass,
    ResponsePlan,
    SessionDraw,
    acceptance,
    draw_session,
    lognormal,
    plan_response,
    seeded_rng,
    split_lognormal,
)
from pytest_agentspeed.simulator.profiles import (
    FRONTIER,
    PROFILES,
    SMALL_FAST,
    STANDARD,
    ULTRASPEED,
    Profile,
)
from pytest_agentspeed.simulator.tokens import count_tokens, json_pieces, pieces

CALM = SessionDraw(degraded=False, congestion=1.0)


def median_plan(
    profile: Profile,
    segments: list[tuple[ContentClass, int]],
    *,
    seed: str,
    cached: int = 0,
    uncached: int = 0,
    draw: SessionDraw = CALM,
    time_scale: float = 1.0,
    **options: Any,
) -> ResponsePlan:
    """A response plan with jitter off: every draw at its median."""
    return plan_response(
        profile,
        draw,
        seeded_rng(seed),
        cached_tokens=cached,
        uncached_tokens=uncached,
        segments=segments,
        time_scale=time_scale,
        jitter=False,
        **options,
    )


def test_acceptance_matches_the_published_alphas() -> None:
    # latency-model.md section 3.2: DFlash tau 6.30 / k 15 -> 0.854; MTP-3 tau 3.0 -> 0.811.
    assert acceptance(6.30, 15) == pytest.approx(0.854, abs=0.001)
    assert acceptance(5.56, 15) == pytest.approx(0.829, abs=0.001)
    assert acceptance(3.0, 3) == pytest.approx(0.811, abs=0.001)


def test_without_jitter_the_plan_is_the_sum_of_medians() -> None:
    plan = median_plan(
        STANDARD, [("prose", 40), ("code", 60)], seed="t", cached=80_000, uncached=3_000
    )
    # rtt + queue + floor + 3,000 / 6,000 tok/s + 80,000 x 3 us
    assert plan.first_token_s == pytest.approx(0.18 + 0.35 + 1.85 + 0.5 + 0.24)
    assert plan.headers_s == pytest.approx(0.18)
    assert sum(n for _, n in plan.steps) == 100
    assert plan.steps[0][0] == plan.first_token_s
    # Every verify step takes tau_code / rate; bursts of 1..k+1 tokens.
    gaps = [b[0] - a[0] for a, b in zip(plan.steps, plan.steps[1:], strict=False)]
    assert all(g == pytest.approx(3.0 / 130) for g in gaps)
    assert all(1 <= n <= 4 for _, n in plan.steps)
    assert plan.components["decode_tok_s"] == 130


def test_load_lengthens_queue_and_slows_decode_by_the_profiles_slope() -> None:
    def plan(in_flight: int) -> ResponsePlan:
        return median_plan(ULTRASPEED, [("code", 200)], seed="load", in_flight=in_flight)

    alone, busy = plan(0), plan(3)
    load = 1 + ULTRASPEED.load_slope * 3  # 1.3
    assert busy.components["queue"] == pytest.approx(alone.components["queue"] * load)
    assert busy.components["decode_tok_s"] == pytest.approx(1_000 / load)
    assert busy.components["rtt"] == alone.components["rtt"]
    assert busy.components["fixed"] == alone.components["fixed"]


def test_frontier_decode_slows_with_context_and_small_fast_does_not() -> None:
    def rate(profile: Profile, context: int) -> float:
        plan = median_plan(profile, [("prose", 10)], seed="ctx", cached=context)
        decode: float = plan.components["decode_tok_s"]
        return decode

    # latency-model.md section 7: r / (1 + ctx / 488k), 68 tok/s at short context.
    assert rate(FRONTIER, 0) == 68
    assert rate(FRONTIER, 244_000) == pytest.approx(68 / 1.5)
    assert rate(SMALL_FAST, 0) == rate(SMALL_FAST, 244_000) == 1_500
    # No speculation on either: one token per event.
    plan = median_plan(FRONTIER, [("code", 30)], seed="f")
    assert [n for _, n in plan.steps] == [1] * 30


def test_time_scale_multiplies_every_offset() -> None:
    one, tenth = (
        median_plan(ULTRASPEED, [("code", 50)], seed="s", cached=1_000, uncached=500, time_scale=f)
        for f in (1.0, 0.1)
    )
    assert tenth.first_token_s == pytest.approx(one.first_token_s * 0.1)
    assert [n for _, n in tenth.steps] == [n for _, n in one.steps]
    assert [t for t, _ in tenth.steps] == pytest.approx([t * 0.1 for t, _ in one.steps])


def test_cache_miss_prefills_the_cached_prefix() -> None:
    hit, miss = (
        median_plan(STANDARD, [("code", 1)], seed="m", cached=60_000, cache_miss=cache_miss)
        for cache_miss in (False, True)
    )
    assert miss.first_token_s - hit.first_token_s == pytest.approx(60_000 / 6_000 - 60_000 * 3e-6)


def test_speculative_bursts_average_tau_per_step() -> None:
    plan = median_plan(ULTRASPEED, [("code", 60_000)], seed="bursts")
    sizes = [n for _, n in plan.steps[:-1]]
    assert statistics.mean(sizes) == pytest.approx(6.30, rel=0.03)
    assert max(sizes) == 16
    # Mean decode rate over the stream equals the profile's median rate.
    duration = plan.steps[-1][0] - plan.steps[0][0]
    assert 60_000 / duration == pytest.approx(1_000, rel=0.03)


def test_degraded_sessions_decode_one_token_at_a_time() -> None:
    degraded = SessionDraw(degraded=True, congestion=1.0)
    plan = median_plan(ULTRASPEED, [("code", 50)], seed="d", draw=degraded)
    assert [n for _, n in plan.steps] == [1] * 50
    assert plan.components["queue"] == 1.0  # the degraded lane's median queue
    assert plan.components["decode_tok_s"] == 80


def test_draws_follow_their_percentiles() -> None:
    rng = seeded_rng("dist")
    draws = sorted(lognormal(rng, (2.0, 5.0), True) for _ in range(20_000))
    assert draws[len(draws) // 2] == pytest.approx(2.0, rel=0.03)
    assert draws[int(len(draws) * 0.9)] == pytest.approx(5.0, rel=0.05)
    split = sorted(split_lognormal(rng, (90, 130, 170), True) for _ in range(20_000))
    assert split[int(len(split) * 0.1)] == pytest.approx(90, rel=0.03)
    assert split[len(split) // 2] == pytest.approx(130, rel=0.02)
    assert split[int(len(split) * 0.9)] == pytest.approx(170, rel=0.03)
    degraded = sum(
        draw_session(ULTRASPEED, seeded_rng(i), jitter=True).degraded for i in range(4000)
    )
    assert degraded / 4000 == pytest.approx(0.15, abs=0.02)


def test_seeded_rng_is_stable() -> None:
    assert seeded_rng(1, "a").random() == seeded_rng(1, "a").random()
    assert seeded_rng(1, "a").random() != seeded_rng(2, "a").random()


def test_profiles_are_the_documented_ones() -> None:
    assert sorted(PROFILES) == ["frontier", "small-fast", "standard", "ultraspeed"]
    assert STANDARD.decode_tok_s == (90, 130, 170)
    assert ULTRASPEED.decode_tok_s == (650, 1_000, 1_250)


def test_pieces_concatenate_to_the_text() -> None:
    text = "def f(x):\n    return x  + 1  # café\n\n"
    assert "".join(pieces(text)) == text
    assert count_tokens(text) == len(pieces(text))
    assert pieces("function") == ["func", "tion"]
    encoded = '{"a": "line\\nnext \\u00e9 \\"q\\""}'
    parts = json_pieces(encoded)
    assert "".join(parts) == encoded
    assert "\\n" in parts
    assert " \\u00e9" in parts
    assert not any(p.endswith("\\") for p in parts)


def test_prompt_cache_counts_reads_and_writes() -> None:
    cache = PromptCache(ttl_s=10.0, min_tokens=5)
    a = Block("h1", 10, True)
    b = Block("h2", 4, False)
    c = Block("h3", 6, True)
    first = cache.account([a, b, c], now=0.0)
    assert (first.cache_read_tokens, first.cache_write_tokens, first.input_tokens) == (0, 20, 0)
    second = cache.account([a, b, c, Block("h4", 7, True)], now=1.0)
    assert (second.cache_read_tokens, second.cache_write_tokens, second.input_tokens) == (20, 7, 0)
    missed = cache.account([a, b, c], now=2.0, miss=True)
    assert (missed.cache_read_tokens, missed.cache_write_tokens) == (0, 20)
    expired = cache.account([a, Block("h9", 3, False)], now=20.0)
    assert (expired.cache_read_tokens, expired.cache_write_tokens, expired.input_tokens) == (
        0,
        10,
        3,
    )


def test_prefixes_below_the_minimum_are_not_cached() -> None:
    cache = PromptCache(ttl_s=10.0, min_tokens=100)
    small = [Block("s", 50, True)]
    assert cache.account(small, now=0).cache_write_tokens == 0
    assert cache.account(small, now=1).cache_read_tokens == 0


def test_moving_a_breakpoint_keeps_the_prefix_hash() -> None:
    marked = {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}
    plain = {"type": "text", "text": "hi"}
    one = request_blocks({"messages": [{"role": "user", "content": [marked]}]})
    two = request_blocks({"messages": [{"role": "user", "content": [plain]}]})
    assert one[0].prefix_hash == two[0].prefix_hash
    assert one[0].breakpoint
    assert not two[0].breakpoint
