"""The simulator's sending path: the bytes it writes and the times it logs for them.

Events are encoded from templates (the constant parts once, the text spliced in) and writes
due together go out as one; neither may change a byte of the stream or what the schedule log
says was sent when. The app is driven in this process through ASGI, so each ``send`` the server
makes is seen as it makes it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_agentspeed.simulator import MountConfig, ServerConfig, anthropic_wire, openai_wire
from pytest_agentspeed.simulator.anthropic_wire import OutBlock
from pytest_agentspeed.simulator.latency import ResponsePlan
from pytest_agentspeed.simulator.replies import Simulator
from pytest_agentspeed.simulator.server import build_app
from pytest_agentspeed.simulator.splice import HOLE, EventTemplate

# Characters JSON escapes, line breaks SSE must not see raw, and several-byte UTF-8 ones.
TRICKY = '\n\r\u2028\u2029\x85\x0b\x1c\x00"\\/:é€😀'
TEXT = st.text(st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")), max_size=12)
BLOCK_TYPES = st.sampled_from(["thinking", "text", "tool_use"])


@given(text=TEXT, kind=BLOCK_TYPES, index=st.integers(0, 12))
def test_a_templated_anthropic_delta_is_the_whole_encoding(
    text: str, kind: Any, index: int
) -> None:
    block = OutBlock(type=kind, pieces=["x"], content_class="prose", tool_id="t", tool_name="n")
    template = anthropic_wire._delta_template(index, block)
    assert template is not None
    assert template(text) == anthropic_wire._delta(index, block, text)


@given(text=TEXT)
def test_a_template_fills_every_place_its_text_goes(text: str) -> None:
    """OpenAI's reasoning chunk carries the text twice; both places get it."""
    data = {"reasoning_content": text, "reasoning": text, "n": 1}
    render = lambda t: json.dumps({"reasoning_content": t, "reasoning": t, "n": 1}).encode()  # noqa: E731
    assert EventTemplate(render)(text) == json.dumps(data).encode()


def test_a_template_refuses_a_rendering_without_its_text() -> None:
    with pytest.raises(ValueError, match="does not hold its text"):
        EventTemplate(lambda text: b"data: {}\n\n")
    assert HOLE not in json.dumps(HOLE)  # escaped, so it cannot be confused with raw bytes


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[OutBlock], ResponsePlan]:
    """Blocks of drawn text and a plan that emits their tokens in bursts of 1 to 16."""
    blocks = []
    for i, kind in enumerate(draw(st.lists(BLOCK_TYPES, max_size=4))):
        pieces = draw(st.lists(TEXT.filter(bool), min_size=1, max_size=20))
        omitted = kind == "thinking" and draw(st.booleans())
        if kind == "tool_use":
            pieces = list(json.dumps({"path": "".join(pieces)}))
        blocks.append(
            OutBlock(
                type=kind,
                pieces=pieces,
                content_class="prose",
                omitted=omitted,
                tool_id=f"toolu_{i}",
                tool_name="read_file",
                tool_input={},
            )
        )
    total = sum(len(b.pieces) for b in blocks)
    bursts = []
    while sum(bursts) < total:
        bursts.append(min(draw(st.integers(1, 16)), total - sum(bursts)))
    steps = tuple((1.0 + 0.01 * k, n) for k, n in enumerate(bursts))
    plan = ResponsePlan(
        headers_s=0.1, first_token_s=1.0, steps=steps, components={}, cache_miss=False
    )
    return blocks, plan


def sse_data(body: bytes) -> list[str]:
    """The ``data:`` payloads of a stream, in order."""
    return [
        line[len("data: ") :]
        for event in body.decode().split("\n\n")
        for line in event.split("\n")
        if line.startswith("data: ")
    ]


@given(stream=streams())
def test_rendered_streams_encode_each_event_as_json_dumps_does(
    stream: tuple[list[OutBlock], ResponsePlan],
) -> None:
    """Every event's JSON is ``json.dumps`` of itself (compact, ASCII), and each block's deltas
    concatenate to its text: the templates spliced nothing in the wrong place."""
    blocks, plan = stream
    usage = {"input_tokens": 1}
    anthropic_body = b"".join(
        data
        for _, data in anthropic_wire.render_stream(
            message_id="m", model="x", blocks=blocks, stop_reason="end_turn", usage=usage, plan=plan
        )
    )
    openai_body = b"".join(
        data
        for _, data in openai_wire.render_stream(
            completion_id="c",
            model="x",
            created=1,
            blocks=blocks,
            stop_reason="end_turn",
            usage=usage,
            plan=plan,
            include_usage=True,
        )
    )
    texts: dict[int, str] = {}
    for data in sse_data(anthropic_body):
        event = json.loads(data)
        assert json.dumps(event, separators=(",", ":")) == data
        if event["type"] == "content_block_delta":
            delta = event["delta"]
            fragment = delta.get("text", delta.get("thinking", delta.get("partial_json")))
            if fragment is not None:
                texts[event["index"]] = texts.get(event["index"], "") + fragment
    live = [b for b in blocks if not (b.type == "thinking" and b.omitted)]
    assert sorted(texts.values()) == sorted(b.text for b in live)

    openai_texts: list[str] = []
    for data in sse_data(openai_body)[:-1]:  # the last is [DONE]
        chunk = json.loads(data)
        assert json.dumps(chunk, separators=(",", ":")) == data
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if "reasoning" in delta:
                assert delta["reasoning"] == delta["reasoning_content"]
            openai_texts.append(
                delta.get("reasoning", "")
                + delta.get("content", "")
                + "".join(c["function"]["arguments"] for c in delta.get("tool_calls", []))
            )
    assert "".join(openai_texts) == "".join(b.text for b in live)


@dataclass
class Exchange:
    """One request through the app: the body writes as sent, and the schedule log's entry."""

    writes: list[bytes] = field(default_factory=list)
    log: dict[str, Any] = field(default_factory=dict)
    in_flight_after: int = -1


async def exchange(
    sim: Simulator, *, profile_key: str, session: str, disconnect_after_s: float | None = None
) -> Exchange:
    """POST a streamed Messages request to the app in this process and collect its writes."""
    body = json.dumps(
        {
            "model": "m",
            "max_tokens": 200,
            "stream": True,
            "metadata": {"user_id": session},
            "messages": [{"role": "user", "content": "hello"}],
        }
    ).encode()
    path = f"/e/{profile_key}/v1/messages" if profile_key else "/v1/messages"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    requested = False
    done = asyncio.Event()
    out = Exchange()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": body, "more_body": False}
        if disconnect_after_s is None:
            await done.wait()
        else:
            await asyncio.sleep(disconnect_after_s)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            out.writes.append(message["body"])
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await build_app(sim)(scope, receive, send)
    (out.log,) = [e for e in sim.schedule if e["session"] == session]
    out.in_flight_after = sim.mounts[profile_key].in_flight
    return out


def simulator() -> Simulator:
    """A fresh endpoint: "k" so fast that every write is due at once, the root one paced
    (small-fast, one token per step, steps 13 us apart after a first token at 7 ms)."""
    return Simulator(
        ServerConfig(
            mounts=(
                MountConfig(key="k", profile="small-fast", time_scale=1e-9, jitter=False),
                MountConfig(key="", profile="small-fast", time_scale=0.02, jitter=False),
            )
        )
    )


def test_writes_due_together_go_out_as_one_with_the_same_bytes_and_send_time() -> None:
    """At a tiny time scale every write is due by the time the first is sent: one socket write
    carries them all, and the log gives each of them that write's time. Paced, the same events
    go out in several writes; the bytes are the same."""
    sim = simulator()
    batched = asyncio.run(exchange(sim, profile_key="k", session="s"))
    writes = batched.log["writes"]
    planned, sent = list(writes["planned_s"]), list(writes["sent_s"])
    assert len(planned) > 10
    assert len(batched.writes) == 1
    assert len(sent) == len(planned)
    assert set(sent) == {batched.log["actual"]["first_token_s"]}
    assert sent[0] >= planned[-1]  # the one write left once the last was due, not before

    # The same request decided afresh (a new endpoint: no prompt cache or load from the first
    # one), its writes unbatched.
    fresh = simulator()
    rendered = fresh.decide(
        fresh.mounts["k"],
        {
            "model": "m",
            "max_tokens": 200,
            "stream": True,
            "metadata": {"user_id": "s"},
            "messages": [{"role": "user", "content": "hello"}],
        },
        {},
        0.0,
    )
    assert batched.writes[0] == b"".join(data for _, data in rendered.writes)


def test_paced_writes_are_logged_at_their_own_times_never_early() -> None:
    sim = simulator()
    paced = asyncio.run(exchange(sim, profile_key="", session="s"))
    writes = paced.log["writes"]
    planned, sent = list(writes["planned_s"]), list(writes["sent_s"])
    assert len(sent) == len(planned)
    # At least the head, sent with the headers, and the first token's write went apart (the
    # prefill and the queue lie between them); a loaded machine may batch later ones.
    assert 2 <= len(paced.writes) <= len(planned)
    # One logged time per socket write, in order, and no write before its time.
    assert len(set(sent)) == len(paced.writes)
    assert sent == sorted(sent)
    assert all(s >= p for p, s in zip(planned, sent, strict=True))
    assert paced.in_flight_after == 0


def test_a_client_that_goes_away_ends_its_stream_and_its_load() -> None:
    """The stream stops at the disconnect, unfinished and without an error, and the endpoint
    no longer counts it in flight."""
    sim = simulator()
    gone = asyncio.run(exchange(sim, profile_key="", session="g", disconnect_after_s=0.001))
    writes = gone.log["writes"]
    assert len(writes["sent_s"]) < len(writes["planned_s"])
    assert "end_s" not in gone.log["actual"]
    assert gone.in_flight_after == 0
