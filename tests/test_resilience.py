"""Issue 3, proven: retries, deadlines, quorum and grace, fallbacks, rate limits, the context
guard, errors, cancellation and secrets.

HTTP behaviour is tested through the real OpenAICompatBackend against `faultserver` (loopback,
real sockets); pure engine logic through the FakeBackend.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import pickle
import random
import re
import threading
import time
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faultserver import (
    FaultServer,
    Seen,
    context_length,
    cut_stream,
    empty_choices,
    malformed,
    ok,
    rate_limited,
    reset,
    sha256,
    status,
    unauthorized,
)
from recipes import recipe

import moa.errors as errors_module
from moa import FakeBackend, MoA
from moa.backends.openai_compat import OpenAICompatBackend
from moa.context import MARK, fit
from moa.engine import AgentFinished, Finished, Token
from moa.errors import (
    AgentFailure,
    AggregationError,
    BackendConnectionError,
    BackendError,
    BackendTimeout,
    BadResponse,
    ContextLengthError,
    DeadlineExceeded,
    MissingKeyError,
    MoAError,
    QuorumError,
    RateLimited,
    RunError,
    should_retry,
)
from moa.limits import LIMITS, Limits
from moa.trace import Call, Trace
from moa.types import Message, Request, Settings

MARGIN = 0.3  # seconds: how late a deadline may be met on a busy 2-core machine
SECRET = "sk-fault-test-0123456789abcdef"


# helpers ------------------------------------------------------------------------------------
def make(
    fault_server: FaultServer,
    layers: Any,
    aggregator: Any,
    *,
    limits: Limits | None = None,
    **extra: Any,
) -> MoA:
    data = recipe(layers, aggregator, server=fault_server, **extra)
    return MoA(data, limits=limits or Limits(), env={})


def by_agent(trace: Trace, name: str) -> Call:
    return next(c for c in trace.calls if c.agent == name)


def aggregator_refs(seen: Seen) -> list[str]:
    """The numbered answers the aggregator was shown."""
    system = next(m["content"] for m in seen.messages if m["role"] == "system")
    return re.findall(r"^\d+\. (.*)$", system, flags=re.MULTILINE)


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def settle() -> None:
    """Let cancelled tasks and closed connections finish their last steps."""
    for _ in range(5):
        await asyncio.sleep(0.01)


# 1. retries ---------------------------------------------------------------------------------
RETRIED = [
    pytest.param(rate_limited(), "RateLimited", 429, id="429"),
    pytest.param(status(500), "BackendError", 500, id="500"),
    pytest.param(status(502), "BackendError", 502, id="502"),
    pytest.param(status(503), "BackendError", 503, id="503"),
    pytest.param(status(529), "BackendError", 529, id="529"),
    pytest.param(status(408), "BackendError", 408, id="408"),
    pytest.param(status(409), "BackendError", 409, id="409"),
    pytest.param(reset(), "BackendConnectionError", None, id="reset"),
    pytest.param(malformed(), "BadResponse", None, id="malformed-json"),
    pytest.param(empty_choices(), "BadResponse", None, id="empty-choices"),
    pytest.param(cut_stream(), "BackendConnectionError", None, id="cut-body"),
    pytest.param(ok().slow(2.0), "BackendTimeout", None, id="slow"),
]


@pytest.mark.parametrize(("fault", "error_type", "code"), RETRIED)
async def test_proposer_retries_transient_failures(
    fault_server: FaultServer, fault: Any, error_type: str, code: int | None
) -> None:
    fault_server.script("p", fault, ok("second try"))
    async with make(fault_server, [["faulty:p"]], "faulty:agg", timeout=0.3) as moa:
        result = await moa.arun("hi")
    call = by_agent(result.trace, "faulty:p")
    assert call.ok and call.text == "second try"
    assert [a.error_type for a in call.attempts] == [error_type, None]
    assert call.attempts[0].status == code
    assert call.attempts[0].wait_s > 0
    assert len(fault_server.requests("p")) == 2
    assert aggregator_refs(fault_server.requests("agg")[0]) == ["second try"]


@pytest.mark.parametrize(
    "fault",
    [rate_limited(), status(500), reset(), cut_stream(after=0), malformed(), empty_choices()],
    ids=["429", "500", "reset", "cut-before-text", "malformed", "empty"],
)
async def test_streamed_aggregator_retries_before_any_text(
    fault_server: FaultServer, fault: Any
) -> None:
    fault_server.script("agg", fault)
    async with make(fault_server, [["faulty:p"]], "faulty:agg") as moa:
        events = [e async for e in moa.astream("hi")]
    result = events[-1]
    assert isinstance(result, Finished)
    assert result.result.text == "synthesis of 1 answers by agg"
    assert "".join(e.text for e in events if isinstance(e, Token)) == result.result.text
    assert len(by_agent(result.result.trace, "faulty:agg").attempts) == 2
    assert [s.stream for s in fault_server.requests("agg")] == [True, True]


async def test_cut_stream_is_retried_when_nobody_saw_the_text(fault_server: FaultServer) -> None:
    fault_server.script("agg", cut_stream(after=2))
    async with make(fault_server, [["faulty:p"]], "faulty:agg") as moa:
        result = await moa.arun("hi")  # arun: the streamed tokens reached nobody
    assert result.text == "synthesis of 1 answers by agg"
    attempts = by_agent(result.trace, "faulty:agg").attempts
    assert [a.error_type for a in attempts] == ["BackendConnectionError", None]


async def test_cut_stream_after_text_reached_the_user_is_not_restarted(
    fault_server: FaultServer,
) -> None:
    fault_server.script("agg", cut_stream(after=2))
    tokens: list[str] = []
    async with make(fault_server, [["faulty:p"]], "faulty:agg") as moa:
        with pytest.raises(AggregationError) as info:
            async for event in moa.astream("hi"):
                if isinstance(event, Token):
                    tokens.append(event.text)
    assert "".join(tokens) == "synthesis of "  # what the user saw, and no silent restart
    assert len(fault_server.requests("agg")) == 1
    assert "characters were streamed" in str(info.value)
    assert by_agent(info.value.trace, "faulty:agg").text == "synthesis of "


async def test_retry_after_is_honoured(fault_server: FaultServer) -> None:
    fault_server.script("p", rate_limited(0.3), status(503, retry_after=0.2), ok())
    async with make(fault_server, [["faulty:p"]], "faulty:agg") as moa:
        result = await moa.arun("hi")
    attempts = by_agent(result.trace, "faulty:p").attempts
    assert [a.wait_s for a in attempts] == [0.3, 0.2, 0.0]
    gaps = fault_server.gaps("p")
    assert gaps[0] >= 0.3 - 0.01 and gaps[1] >= 0.2 - 0.01
    assert gaps[0] < 0.3 + MARGIN


async def test_retry_after_ms_and_http_date(fault_server: FaultServer) -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    fault_server.script("p", status(429, retry_after_ms=150), rate_limited(later), ok())
    async with make(
        fault_server, [["faulty:p"]], "faulty:agg", retry={"max_retry_after": 0.25}
    ) as moa:
        result = await moa.arun("hi")
    waits = [a.wait_s for a in by_agent(result.trace, "faulty:p").attempts]
    assert waits == [pytest.approx(0.15), 0.25, 0.0]  # the date (30 s away) is capped
    assert fault_server.gaps("p")[1] >= 0.25 - 0.01


async def test_retry_after_is_capped(fault_server: FaultServer) -> None:
    fault_server.script("p", rate_limited(30))
    start = time.monotonic()
    async with make(
        fault_server, [["faulty:p"]], "faulty:agg", retry={"max_retry_after": 0.1}
    ) as moa:
        await moa.arun("hi")
    assert time.monotonic() - start < 1.0
    assert 0.1 - 0.01 <= fault_server.gaps("p")[0] < 0.1 + MARGIN


async def test_backoff_is_exponential_capped_and_counted(fault_server: FaultServer) -> None:
    fault_server.respond("p", status(500))
    retry = {"attempts": 4, "backoff": 0.04, "max_backoff": 0.1}
    async with make(fault_server, [["faulty:p", "faulty:q"]], "faulty:agg", retry=retry) as moa:
        result = await moa.arun("hi")
    call = by_agent(result.trace, "faulty:p")
    assert not call.ok and call.error_type == "BackendError" and "HTTP 500" in (call.error or "")
    assert [a.wait_s for a in call.attempts] == [0.04, 0.08, 0.1, 0.0]
    assert [a.status for a in call.attempts] == [500] * 4
    assert len(fault_server.requests("p")) == 4
    assert all(
        g >= w - 0.01 for g, w in zip(fault_server.gaps("p"), [0.04, 0.08, 0.1], strict=True)
    )
    assert aggregator_refs(fault_server.requests("agg")[0]) == ["answer from q"]


async def test_jitter_stays_within_its_range() -> None:
    fake = FakeBackend().fail("a", BackendConnectionError("down"), times=5)
    recipe_ = {
        "layers": [],
        "aggregator": "fake:a",
        "retry": {"attempts": 6, "backoff": 0.02, "max_backoff": 0.02, "jitter": 0.5},
    }
    async with MoA(recipe_, backends={"fake": fake}, rng=random.Random(7)) as moa:
        result = await moa.arun("hi")
    waits = [a.wait_s for a in result.trace.calls[0].attempts[:-1]]
    assert len(waits) == 5 and all(0.01 <= w <= 0.02 for w in waits)
    assert len(set(waits)) > 1  # jittered, not constant


NOT_RETRIED = [
    pytest.param(status(400), "BackendError", 400, id="400"),
    pytest.param(status(401), "BackendError", 401, id="401"),
    pytest.param(status(403), "BackendError", 403, id="403"),
    pytest.param(status(404), "BackendError", 404, id="404"),
    pytest.param(context_length("openai"), "ContextLengthError", 400, id="ctx-openai"),
    pytest.param(context_length("llamacpp"), "ContextLengthError", 400, id="ctx-llamacpp"),
    pytest.param(context_length("llamacpp-old"), "ContextLengthError", 400, id="ctx-llamacpp-old"),
    pytest.param(context_length("vllm"), "ContextLengthError", 400, id="ctx-vllm"),
]


@pytest.mark.parametrize(("fault", "error_type", "code"), NOT_RETRIED)
async def test_client_errors_are_not_retried(
    fault_server: FaultServer, fault: Any, error_type: str, code: int
) -> None:
    fault_server.script("p", fault)
    async with make(fault_server, [["faulty:p", "faulty:q"]], "faulty:agg") as moa:
        result = await moa.arun("hi")
    call = by_agent(result.trace, "faulty:p")
    assert not call.ok and call.error_type == error_type
    assert len(call.attempts) == 1 and call.attempts[0].status == code
    assert call.attempts[0].wait_s == 0
    assert len(fault_server.requests("p")) == 1
    assert aggregator_refs(fault_server.requests("agg")[0]) == ["answer from q"]


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        (status(400), BackendError, 400),
        (status(404), BackendError, 404),
        (rate_limited(2.5), RateLimited, 429),
        (status(503), BackendError, 503),
        (context_length("vllm"), ContextLengthError, 400),
        (malformed(), BadResponse, None),
        (reset(), BackendConnectionError, None),
    ],
)
async def test_backend_errors_carry_status_body_and_model(
    fault_server: FaultServer, fault: Any, kind: type[BackendError], code: int | None
) -> None:
    fault_server.script("m", fault)
    backend = OpenAICompatBackend(base_url=fault_server.base_url, api_key=None)
    request = Request(model="m", messages=[Message("user", "hi")], settings=Settings())
    try:
        with pytest.raises(kind) as info:
            await backend.complete(request)
    finally:
        await backend.aclose()
    error = info.value
    assert type(error) is kind
    assert error.model == "m" and str(error).startswith("m: ")
    assert error.status == code
    if code is not None:
        assert error.body and "message" in error.body
    assert should_retry(error) == (code not in (400, 404))
    if kind is RateLimited:
        assert error.retry_after == 2.5


# 2. deadlines -------------------------------------------------------------------------------
async def test_per_call_timeout_cancels_the_request(fault_server: FaultServer) -> None:
    fault_server.respond("p", ok().slow(5))
    start = time.monotonic()
    async with make(
        fault_server, [["faulty:p", "faulty:q"]], "faulty:agg", timeout=0.2, retry={"attempts": 1}
    ) as moa:
        result = await moa.arun("hi")
    assert time.monotonic() - start < 0.2 + MARGIN + 0.2
    call = by_agent(result.trace, "faulty:p")
    assert call.error_type == "BackendTimeout" and "0.2s" in (call.error or "")
    assert fault_server.wait_idle()
    assert fault_server.requests("p")[0].disconnected  # the server saw the client hang up


async def test_agent_timeout_overrides_the_recipe(fault_server: FaultServer) -> None:
    fault_server.respond("p", ok().slow(0.4))
    layers = [[{"model": "faulty:p", "timeout": 0.1}, "faulty:q"]]
    async with make(fault_server, layers, "faulty:agg", timeout=5, retry={"attempts": 1}) as moa:
        result = await moa.arun("hi")
    assert by_agent(result.trace, "faulty:p").error_type == "BackendTimeout"


async def test_deadline_in_a_layer_cancels_slow_agents(fault_server: FaultServer) -> None:
    for name in ("a", "b", "c"):
        fault_server.respond(name, ok().slow(5))
    start = time.monotonic()
    async with make(
        fault_server, [["faulty:a", "faulty:b", "faulty:c"]], "faulty:agg", deadline=0.4, timeout=10
    ) as moa:
        with pytest.raises(DeadlineExceeded) as info:
            await moa.arun("hi")
    elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < 0.4 + MARGIN
    error = info.value
    assert {f.agent for f in error.failures} == {"faulty:a", "faulty:b", "faulty:c"}
    assert all("deadline" in f.error for f in error.failures)
    assert error.trace.outcome == "error"
    assert all(c.attempts[-1].error_type == "Cancelled" for c in error.trace.calls)
    assert fault_server.wait_idle()
    assert all(s.disconnected for s in fault_server.requests())
    assert not fault_server.requests("agg")
    assert not other_tasks()


async def test_deadline_during_the_aggregator(fault_server: FaultServer) -> None:
    fault_server.respond("agg", ok().slow(5))
    start = time.monotonic()
    async with make(fault_server, [["faulty:p"]], "faulty:agg", deadline=0.3, timeout=10) as moa:
        with pytest.raises(DeadlineExceeded) as info:
            await moa.arun("hi")
    assert time.monotonic() - start < 0.3 + MARGIN
    assert [f.agent for f in info.value.failures] == ["faulty:agg"]
    assert fault_server.wait_idle() and fault_server.requests("agg")[0].disconnected


async def test_deadline_ends_with_the_best_proposal_when_the_recipe_allows(
    fault_server: FaultServer,
) -> None:
    fault_server.respond("agg", ok().slow(5))
    start = time.monotonic()
    async with make(
        fault_server,
        [["faulty:p", "faulty:q"]],
        "faulty:agg",
        deadline=0.3,
        timeout=10,
        on_aggregator_failure="best_proposal",
    ) as moa:
        result = await moa.arun("hi")
    assert time.monotonic() - start < 0.3 + MARGIN
    assert result.best_proposal and result.text == "answer from p"
    assert result.trace.outcome == "best_proposal"
    assert "DeadlineExceeded" in result.trace.notes[0]


async def test_retries_stop_at_the_deadline(fault_server: FaultServer) -> None:
    fault_server.respond("p", status(503))
    start = time.monotonic()
    async with make(
        fault_server,
        [["faulty:p"]],
        "faulty:agg",
        deadline=0.5,
        retry={"attempts": 20, "backoff": 0.2},
    ) as moa:
        with pytest.raises(RunError):
            await moa.arun("hi")
    assert time.monotonic() - start < 0.5 + MARGIN


async def test_a_passed_deadline_starts_no_further_layer() -> None:
    fake = FakeBackend().latency("slow", 5)
    recipe_ = {
        # layer 1 waits for every agent (no grace), so the deadline ends it with 1 answer
        "layers": [{"agents": ["fake:fast", "fake:slow"], "quorum": 1}, ["fake:b"]],
        "aggregator": "fake:agg",
        "deadline": 0.2,
    }
    async with MoA(recipe_, backends={"fake": fake}) as moa:
        with pytest.raises(DeadlineExceeded, match="before layer 2") as info:
            await moa.arun("hi")
    assert [m for m, _ in fake.calls] == ["fast", "slow"]  # b was never called
    assert fake.cancelled == ["slow"]
    late = info.value.trace.layer(2)[0]
    assert late.error_type == "DeadlineExceeded" and "deadline" in (late.error or "")
    assert late.attempts == []  # recorded, never tried


# 3. quorum, grace, fallbacks, best proposal -------------------------------------------------
async def test_without_grace_a_layer_waits_for_every_agent(fault_server: FaultServer) -> None:
    fault_server.respond("c", ok("late").slow(0.3))
    layer = {"agents": ["faulty:a", "faulty:b", "faulty:c"], "quorum": 2}
    async with make(fault_server, [layer], "faulty:agg") as moa:
        result = await moa.arun("hi")
    assert aggregator_refs(fault_server.requests("agg")[0]) == [
        "answer from a",
        "answer from b",
        "late",
    ]
    assert result.trace.outcome == "ok"


async def test_grace_cancels_a_straggler(fault_server: FaultServer) -> None:
    fault_server.respond("c", ok("late").slow(5))
    layer = {"agents": ["faulty:a", "faulty:b", "faulty:c"], "quorum": 2, "grace": 0.1}
    start = time.monotonic()
    async with make(fault_server, [layer], "faulty:agg", timeout=10) as moa:
        result = await moa.arun("hi")
    assert time.monotonic() - start < 0.1 + MARGIN + 0.2
    straggler = by_agent(result.trace, "faulty:c")
    assert straggler.error_type == "Cancelled" and "0.1s after the layer's quorum" in (
        straggler.error or ""
    )
    assert aggregator_refs(fault_server.requests("agg")[0]) == ["answer from a", "answer from b"]
    assert fault_server.wait_idle() and fault_server.requests("c")[0].disconnected


async def test_grace_with_the_fake_backend_records_the_cancellation() -> None:
    fake = FakeBackend().latency("slow", 5)
    layer = {"agents": ["fake:a", "fake:slow"], "quorum": 1, "grace": 0.05}
    async with MoA({"layers": [layer], "aggregator": "fake:agg"}, backends={"fake": fake}) as moa:
        result = await moa.arun("hi")
    assert fake.cancelled == ["slow"]
    assert result.trace.layer(1)[1].error_type == "Cancelled"
    assert "synthesis of 1 responses" in result.text


async def test_below_quorum_raises_naming_every_failure(fault_server: FaultServer) -> None:
    fault_server.script("a", status(400))
    fault_server.script("b", status(401))
    fault_server.respond("c", ok().slow(5))
    layer = {"agents": ["faulty:a", "faulty:b", "faulty:c"], "quorum": 2}
    start = time.monotonic()
    async with make(fault_server, [layer], "faulty:agg", timeout=10) as moa:
        with pytest.raises(QuorumError) as info:
            await moa.arun("hi")
    error = info.value
    assert time.monotonic() - start < 1.0  # c was cancelled: the quorum could not be reached
    assert (error.layer, error.needed, error.got) == (1, 2, 0)
    causes = {f.agent: f for f in error.failures}
    assert "HTTP 400" in causes["faulty:a"].error and "HTTP 401" in causes["faulty:b"].error
    assert "can no longer reach its quorum" in causes["faulty:c"].error
    for name in ("faulty:a", "faulty:b", "faulty:c"):
        assert name in str(error)
    assert not fault_server.requests("agg")  # nothing was synthesised from errors
    assert error.trace is not None and error.trace.outcome == "error"


async def test_failed_agents_are_never_injected(fault_server: FaultServer) -> None:
    fault_server.respond("b", status(500))
    fault_server.respond("c", empty_choices())
    layers = [["faulty:a", "faulty:b", "faulty:c", "faulty:d"]]
    async with make(fault_server, layers, "faulty:agg") as moa:
        await moa.arun("hi")
    refs = aggregator_refs(fault_server.requests("agg")[0])
    assert refs == ["answer from a", "answer from d"]
    system = fault_server.requests("agg")[0].messages[0]["content"]
    assert "None" not in system and "500" not in system and "Error" not in system


async def test_fallbacks_are_tried_in_order(fault_server: FaultServer) -> None:
    fault_server.respond("a", status(404))
    fault_server.respond("b", status(500))
    fault_server.script("c", ok("from c"))
    agent = {"model": "faulty:a", "fallbacks": ["faulty:b", "faulty:c", "faulty:d"]}
    async with make(fault_server, [[agent]], "faulty:agg", retry={"attempts": 2}) as moa:
        result = await moa.arun("hi")
    order = [s.model for s in fault_server.requests() if s.model != "agg"]
    assert order == ["a", "b", "b", "c"]
    call = result.trace.layer(1)[0]
    assert call.ok and call.model == "faulty:c" and call.text == "from c"
    assert [(a.model, a.status) for a in call.attempts] == [
        ("faulty:a", 404),
        ("faulty:b", 500),
        ("faulty:b", 500),
        ("faulty:c", None),
    ]


async def test_aggregator_fallbacks(fault_server: FaultServer) -> None:
    fault_server.respond("agg", status(401))
    aggregator = {"model": "faulty:agg", "fallbacks": ["faulty:agg2"]}
    async with make(fault_server, [["faulty:p"]], aggregator) as moa:
        result = await moa.arun("hi")
    assert result.text == "synthesis of 1 answers by agg2"
    assert not result.best_proposal and result.trace.outcome == "ok"
    assert [s.model for s in fault_server.requests() if s.model.startswith("agg")] == [
        "agg",
        "agg2",
    ]


async def test_every_aggregator_failing_names_each_cause(fault_server: FaultServer) -> None:
    fault_server.respond("agg", status(401))
    fault_server.respond("agg2", status(400))
    fault_server.respond("agg3", malformed())
    aggregator = {"model": "faulty:agg", "fallbacks": ["faulty:agg2", "faulty:agg3"]}
    async with make(fault_server, [["faulty:p"]], aggregator, retry={"attempts": 2}) as moa:
        with pytest.raises(AggregationError) as info:
            await moa.arun("hi")
    failures = {f.model: f for f in info.value.failures}
    assert set(failures) == {"faulty:agg", "faulty:agg2", "faulty:agg3"}
    assert "HTTP 401" in failures["faulty:agg"].error
    assert "HTTP 400" in failures["faulty:agg2"].error
    assert failures["faulty:agg3"].error_type == "BadResponse"
    message = str(info.value)
    assert "HTTP 401" in message and "HTTP 400" in message and "malformed" in message


async def test_best_proposal_is_marked_in_result_trace_and_stream(
    fault_server: FaultServer,
) -> None:
    fault_server.respond("agg", status(500))
    async with make(
        fault_server,
        [["faulty:p", "faulty:q"]],
        "faulty:agg",
        on_aggregator_failure="best_proposal",
    ) as moa:
        events = [e async for e in moa.astream("hi")]
    finished = events[-1]
    assert isinstance(finished, Finished)
    result = finished.result
    assert result.best_proposal and result.text == "answer from p"
    assert result.to_dict()["best_proposal"] is True
    assert result.trace.outcome == "best_proposal"
    assert "aggregator failed" in result.trace.notes[0] and "faulty:p" in result.trace.notes[0]
    assert '"outcome": "best_proposal"' in result.trace.to_json()
    assert [e.text for e in events if isinstance(e, Token)] == ["answer from p"]
    agg = by_agent(result.trace, "faulty:agg")
    assert not agg.ok and len(agg.attempts) == 3


async def test_best_proposal_needs_a_proposal(fault_server: FaultServer) -> None:
    fault_server.respond("agg", status(500))
    async with make(fault_server, [], "faulty:agg", on_aggregator_failure="best_proposal") as moa:
        with pytest.raises(AggregationError):
            await moa.arun("hi")


async def test_error_mode_is_the_default(fault_server: FaultServer) -> None:
    fault_server.respond("agg", status(503))
    async with make(fault_server, [["faulty:p"]], "faulty:agg") as moa:
        with pytest.raises(AggregationError) as info:
            await moa.arun("hi")
    assert "faulty:agg" in str(info.value) and "HTTP 503" in str(info.value)
    assert info.value.trace.outcome == "error"


# 4. rate and concurrency limits -------------------------------------------------------------
def starts(fault_server: FaultServer) -> list[float]:
    return sorted(s.started for s in fault_server.requests())


async def test_rpm_is_a_sliding_window_shared_by_runs(
    fault_server: FaultServer, limits: Limits
) -> None:
    first = make(fault_server, [["faulty:a", "faulty:b"]], "faulty:agg", limits=limits)
    second = make(fault_server, [["faulty:c", "faulty:d"]], "faulty:agg", limits=limits)
    async with first, second:
        # warm the clients up first: a first connection's delay would blur the timings
        await asyncio.gather(first.arun("warm"), second.arun("warm"))
        fault_server.reset_record()
        limits.configure("faulty", rpm=3, period=0.3)
        await asyncio.gather(first.arun("1"), second.arun("2"), first.arun("3"))
    times = starts(fault_server)
    assert len(times) == 9
    # never more than 3 requests in any 0.3 s, so 9 requests span at least two periods
    assert all(b - a >= 0.3 - 0.04 for a, b in zip(times, times[3:], strict=False))
    assert times[-1] - times[0] >= 0.6 - 0.04


async def test_tpm_spaces_calls_by_their_tokens(fault_server: FaultServer, limits: Limits) -> None:
    # each call books about its prompt and max_tokens (100): 250 a period lets two through
    layers = [[{"model": f"faulty:p{i}", "max_tokens": 100} for i in range(4)]]
    aggregator = {"model": "faulty:agg", "max_tokens": 100}
    async with make(fault_server, layers, aggregator, limits=limits) as moa:
        await moa.arun("warm")  # open the connections first: their delay blurs the timings
        fault_server.reset_record()
        limits.configure("faulty", tpm=250, period=0.25)
        result = await moa.arun("hi")
    times = starts(fault_server)
    assert len(times) == 5
    assert all(b - a >= 0.25 - 0.04 for a, b in zip(times, times[2:], strict=False))
    queued = [a.queued_s for c in result.trace.calls for a in c.attempts]
    assert max(queued) >= 0.25 - 0.02  # the trace shows the wait


async def test_concurrency_is_shared_by_runs(fault_server: FaultServer, limits: Limits) -> None:
    limits.configure("faulty", concurrency=2)
    for name in ("a", "b", "c"):
        fault_server.respond(name, ok().slow(0.1))
    one = make(fault_server, [["faulty:a", "faulty:b", "faulty:c"]], "faulty:agg", limits=limits)
    two = make(fault_server, [["faulty:a", "faulty:b", "faulty:c"]], "faulty:agg", limits=limits)
    start = time.monotonic()
    async with one, two:
        await asyncio.gather(one.arun("1"), two.arun("2"))
    gate = limits.gate("faulty")
    # counted by the gate as calls enter and leave it (the server's clock cannot order one
    # call's end before the next one's start); that the HTTP calls waited for it, time shows
    assert gate.peak_in_use == 2
    assert time.monotonic() - start >= 0.3  # 6 slow calls, 2 at a time
    assert len(fault_server.requests()) == 8 and gate.in_use == 0


def test_concurrency_is_shared_across_threads_and_event_loops(
    fault_server: FaultServer, limits: Limits
) -> None:
    limits.configure("faulty", concurrency=1)
    fault_server.respond("a", ok().slow(0.1))
    fault_server.respond("b", ok().slow(0.1))
    errors: list[BaseException] = []

    def work() -> None:
        try:  # MoA.run: a private event loop in each thread
            with make(fault_server, [["faulty:a", "faulty:b"]], "faulty:agg", limits=limits) as moa:
                moa.run("hi")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors
    assert len(fault_server.requests()) == 6
    assert limits.gate("faulty").peak_in_use == 1


async def test_cancelled_waiters_give_their_slot_back(
    fault_server: FaultServer, limits: Limits
) -> None:
    limits.configure("faulty", concurrency=1)
    fault_server.respond("a", ok().slow(5))
    moa = make(fault_server, [["faulty:a", "faulty:b", "faulty:c"]], "faulty:agg", limits=limits)
    async with moa:
        task = asyncio.create_task(moa.arun("hi"))
        # a holds the only slot; b and c wait for it
        assert await asyncio.to_thread(fault_server.wait_in_flight, 1, "a")
        assert limits.gate("faulty").in_use == 1 and not fault_server.requests("b")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert limits.gate("faulty").in_use == 0
        fault_server.respond("a", ok())
        result = await moa.arun("again")  # the slot is free again
    assert result.trace.outcome == "ok"


async def test_recipe_limits_are_shared_by_its_runs_and_configure_nothing(
    fault_server: FaultServer,
) -> None:
    data = recipe(
        [["faulty:a", "faulty:b"]],
        "faulty:agg",
        server=fault_server,
        provider={"rpm": 600, "tpm": 100_000, "concurrency": 1},
    )
    for name in ("a", "b", "agg"):
        fault_server.respond(name, ok().slow(0.05))
    try:
        first, second = MoA(data, env={}), MoA(data, env={})
        assert first.limits is LIMITS
        assert LIMITS.gate("faulty").concurrency is None  # building a MoA configured nothing
        spec = first.plan.limits["faulty"]
        gate = LIMITS.gate("faulty", spec)
        assert (gate.rpm, gate.tpm, gate.concurrency) == (600, 100_000, 1)
        assert LIMITS.gate("faulty", second.plan.limits["faulty"]) is gate  # one gate, one state
        async with first, second:
            await asyncio.gather(first.arun("1"), second.arun("2"))
        assert gate.peak_in_use == 1  # both runs went through the one slot
        assert len(fault_server.requests()) == 6
        assert gate.in_use == 0 and LIMITS.gate("faulty").concurrency is None
    finally:
        LIMITS.reset()


# 5. the context guard -----------------------------------------------------------------------
LONG = "word " * 800  # about 1300 estimated tokens


async def test_references_are_trimmed_fairly_to_the_window(fault_server: FaultServer) -> None:
    fault_server.n_ctx["agg"] = 1000  # the server enforces its window too
    fault_server.script("a", ok("short answer"))
    fault_server.script("b", ok("b " + LONG))
    fault_server.script("c", ok("c " + LONG + LONG))
    prompt = "please keep every word of this question " * 5
    async with make(
        fault_server,
        [["faulty:a", "faulty:b", "faulty:c"]],
        {"model": "faulty:agg", "max_tokens": 200},
        provider={"context_windows": {"agg": 1000}},
    ) as moa:
        result = await moa.arun(prompt)
    assert result.trace.outcome == "ok"
    seen = fault_server.requests("agg")[0]
    assert seen.outcome == "ok"  # the request fitted the server's window
    assert seen.messages[-1] == {"role": "user", "content": prompt}  # never cut
    refs = aggregator_refs(seen)
    assert refs[0] == "short answer"
    assert refs[1].endswith(MARK.strip()) and refs[2].endswith(MARK.strip())
    trimmed = by_agent(result.trace, "faulty:agg").trimmed
    assert trimmed is not None and trimmed["model"] == "faulty:agg" and trimmed["window"] == 1000
    sizes = {r["index"]: r["tokens_after"] for r in trimmed["references"]}
    assert set(sizes) == {2, 3}  # the short one is whole; the long ones get equal shares
    assert abs(sizes[2] - sizes[3]) <= 3
    assert sum(sizes.values()) <= trimmed["budget"]
    assert "trimmed" in result.trace.to_json()


async def test_without_a_known_window_the_server_error_is_a_context_length_error(
    fault_server: FaultServer,
) -> None:
    fault_server.n_ctx["agg"] = 300
    fault_server.context_style = "llamacpp"
    fault_server.script("a", ok("a " + LONG))
    async with make(fault_server, [["faulty:a"]], "faulty:agg") as moa:
        with pytest.raises(AggregationError) as info:
            await moa.arun("hi")
    (failure,) = info.value.failures
    assert failure.error_type == "ContextLengthError" and failure.model == "faulty:agg"
    assert len(fault_server.requests("agg")) == 1  # not retried


async def test_a_prompt_that_does_not_fit_alone_is_refused_not_cut(
    fault_server: FaultServer,
) -> None:
    async with make(
        fault_server,
        [],
        {"model": "faulty:agg", "fallbacks": ["faulty:big"]},
        provider={"context_windows": {"agg": 600, "big": 100_000}},
    ) as moa:
        result = await moa.arun(LONG)
    # agg refused it before any request; the fallback with a larger window got it whole
    assert [s.model for s in fault_server.requests()] == ["big"]
    assert fault_server.requests("big")[0].messages[-1]["content"] == LONG
    attempts = result.trace.calls[0].attempts
    assert (attempts[0].model, attempts[0].error_type) == ("faulty:agg", "ContextLengthError")


async def test_a_prompt_too_long_for_every_model_raises_naming_the_model(
    fault_server: FaultServer,
) -> None:
    async with make(
        fault_server, [], {"model": "faulty:agg", "context_window": 600}, provider={}
    ) as moa:
        with pytest.raises(AggregationError) as info:
            await moa.arun(LONG)
    (failure,) = info.value.failures
    assert failure.error_type == "ContextLengthError" and failure.model == "faulty:agg"
    assert "context window of 600" in failure.error
    assert not fault_server.requests()


def test_fit_shares_the_budget_fairly() -> None:
    def count(text: str) -> int:
        return len(text.split())

    refs = ["a " * 10, "b " * 100, "c " * 300, "d " * 5]
    fitted, trims = fit(refs, 120, count)
    sizes = [count(t) for t in fitted]
    assert sizes[0] == 10 and sizes[3] == 5  # short answers stay whole
    assert abs(sizes[1] - sizes[2]) <= 1 and sum(sizes) <= 120
    assert [t.index for t in trims] == [2, 3]
    assert fit(refs, 10_000, count) == (refs, [])


# 6. errors ----------------------------------------------------------------------------------
def test_the_exception_tree_in_the_docstring_is_the_real_one() -> None:
    doc = errors_module.__doc__ or ""
    stack: list[tuple[int, str]] = []
    drawn = 0
    for line in doc.splitlines():
        match = re.match(r"^([\s│├└─]*)([A-Z]\w+)\s{2,}", line)
        if not match or not hasattr(errors_module, match.group(2)):
            continue
        depth = line.index(match.group(2))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        cls = getattr(errors_module, match.group(2))
        if stack:
            parent = getattr(errors_module, stack[-1][1])
            assert cls.__bases__ == (parent,), f"{cls.__name__} is drawn under {parent.__name__}"
        else:
            assert cls is MoAError
        stack.append((depth, match.group(2)))
        drawn += 1
    exported = [getattr(errors_module, n) for n in errors_module.__all__]
    classes = [c for c in exported if isinstance(c, type) and issubclass(c, MoAError)]
    assert drawn == len(classes)


def test_errors_survive_pickling() -> None:
    failures = [AgentFailure(1, "a", "faulty:a", "HTTP 500: boom", "BackendError")]
    for error in [
        QuorumError(1, 2, 0, failures),
        AggregationError("the aggregator failed", failures),
        DeadlineExceeded("late", failures),
        RateLimited("slow down", model="m", retry_after=2.0),
        BackendTimeout("late", model="m"),
        MissingKeyError("openai:gpt-4o", "OPENAI_API_KEY"),
    ]:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert vars(copy) == vars(error)
    retryable = BackendError("HTTP 503", status=503)
    retryable.retry_after = 1.5
    copy = pickle.loads(pickle.dumps(retryable))
    assert should_retry(copy) and copy.status == 503 and copy.retry_after == 1.5


async def test_a_configuration_error_in_a_layer_is_raised_not_swallowed() -> None:
    recipe_ = {"layers": [["fake:a", "gguf:/no/such/model.gguf"]], "aggregator": "fake:agg"}
    async with MoA(recipe_) as moa:
        with pytest.raises(MoAError, match="no such file") as info:
            await moa.arun("hi")
    assert not isinstance(info.value, RunError)
    await settle()
    assert not other_tasks()


# 7. cancellation ----------------------------------------------------------------------------
async def test_cancelling_arun_cancels_every_call(fault_server: FaultServer) -> None:
    for name in ("a", "b", "c"):
        fault_server.respond(name, ok().slow(5))
    async with make(fault_server, [["faulty:a", "faulty:b", "faulty:c"]], "faulty:agg") as moa:
        task = asyncio.create_task(moa.arun("hi"))
        assert await asyncio.to_thread(fault_server.wait_in_flight, 3)  # every call is out
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not other_tasks()
    assert fault_server.wait_idle()
    assert [s.disconnected for s in fault_server.requests()] == [True, True, True]


async def test_closing_astream_early_cancels_the_aggregator(fault_server: FaultServer) -> None:
    fault_server.respond("agg", ok("one two three four five six", token_delay=0.5))
    async with make(fault_server, [["faulty:p"]], "faulty:agg", timeout=10) as moa:
        stream = moa.astream("hi")
        assert isinstance(stream, AsyncIterator)
        async for event in stream:
            if isinstance(event, Token):
                break
        await stream.aclose()
        await settle()
        assert not other_tasks()
    assert fault_server.wait_idle()
    assert fault_server.requests("agg")[0].disconnected


async def test_closing_astream_in_a_layer_cancels_the_proposers(fault_server: FaultServer) -> None:
    fault_server.respond("b", ok().slow(5))
    async with make(fault_server, [["faulty:a", "faulty:b"]], "faulty:agg", timeout=10) as moa:
        stream = moa.astream("hi")
        async for event in stream:
            if isinstance(event, AgentFinished):  # a answered; b is still running
                break
        # on a busy machine b's request may not have reached the server yet
        assert await asyncio.to_thread(fault_server.wait_in_flight, 1, "b")
        await stream.aclose()
        assert not other_tasks()
    assert fault_server.wait_idle()
    assert fault_server.requests("b")[0].disconnected
    assert not fault_server.requests("agg")


def test_closing_the_sync_stream_cancels_every_call(fault_server: FaultServer) -> None:
    fault_server.respond("a", ok().once_seen("b"))  # so b is out when a has answered
    fault_server.respond("b", ok().slow(5))
    with make(fault_server, [["faulty:a", "faulty:b"]], "faulty:agg", timeout=10) as moa:
        events = moa.stream("hi")  # its event loop runs only while we wait for an event
        next(e for e in events if isinstance(e, AgentFinished))
        assert "b" in [s.model for s in fault_server.in_flight()]
        events.close()  # type: ignore[attr-defined]
    assert fault_server.wait_idle()
    assert fault_server.requests("b")[0].disconnected


class Counted(FakeBackend):
    """A FakeBackend that sets `under_way` once `count` calls have started."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.under_way = asyncio.Event()

    async def _answer(self, request: Request) -> Any:
        if len(self.calls) + 1 >= self.count:
            self.under_way.set()  # no await before the call starts: it is under way
        return await super()._answer(request)


async def test_cancellation_with_the_fake_backend() -> None:
    fake = Counted(2)
    fake.latency("a", 5).latency("b", 5)
    async with MoA(
        {"layers": [["fake:a", "fake:b"]], "aggregator": "fake:agg"}, backends={"fake": fake}
    ) as moa:
        task = asyncio.create_task(moa.arun("hi"))
        await fake.under_way.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(fake.cancelled) == ["a", "b"]
    assert not other_tasks()


# secrets ------------------------------------------------------------------------------------
async def test_the_key_is_sent_but_never_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with FaultServer(api_key=SECRET) as fault_server:
        fault_server.script("a", unauthorized(echo_key=True))
        fault_server.respond("b", status(500))
        fault_server.respond("agg", unauthorized(echo_key=True))
        data = recipe(
            [["faulty:a", "faulty:b", "faulty:c"]],
            "faulty:agg",
            server=fault_server,
            provider={"api_key_env": "FAULTY_KEY"},
        )
        async with MoA(data, env={"FAULTY_KEY": SECRET}, limits=Limits()) as moa:
            with pytest.raises(AggregationError) as info:
                await moa.arun("hi")
        # the server received the key with every request
        assert {s.key_sha256 for s in fault_server.requests()} == {sha256(SECRET)}
        assert by_agent(info.value.trace, "faulty:c").ok
    error = info.value
    shown = [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        error.trace.to_json(),
        repr(error.trace),
        caplog.text,
        repr(moa.resolver.resolve("faulty:a")[0]),
    ]
    assert "Incorrect API key provided: ***" in str(error)  # the echo, blanked out
    for text in shown:
        assert SECRET not in text


def test_a_missing_key_names_the_variable() -> None:
    data = {
        "providers": {"faulty": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "FAULTY_KEY"}},
        "layers": [],
        "aggregator": "faulty:agg",
    }
    with pytest.raises(MissingKeyError, match="FAULTY_KEY"):
        MoA(data, env={})


# the fault server itself --------------------------------------------------------------------
async def test_the_fault_server_keeps_scripts_in_order(fault_server: FaultServer) -> None:
    fault_server.script("m", status(500), rate_limited(0), ok("third"))
    backend = OpenAICompatBackend(base_url=fault_server.base_url, api_key="k")
    request = Request(model="m", messages=[Message("user", "hi")])
    outcomes: list[str | int | None] = []
    try:
        for _ in range(4):
            try:
                outcomes.append((await backend.complete(request)).text)
            except BackendError as exc:
                outcomes.append(exc.status)
    finally:
        await backend.aclose()
    assert outcomes == [500, 429, "third", "answer from m"]
    assert all("authorization" not in s.headers for s in fault_server.requests())
    assert [s.outcome for s in fault_server.requests()] == ["500", "429", "ok", "ok"]


# what the lead added after review ------------------------------------------------------------
async def test_an_empty_answer_is_retried_and_never_injected(fault_server: FaultServer) -> None:
    fault_server.script("p", ok("   "), ok("real answer"))
    fault_server.respond("e", ok(""))
    async with make(
        fault_server, [["faulty:p", "faulty:e"]], "faulty:agg", retry={"attempts": 2}
    ) as m:
        result = await m.arun("q")
    assert aggregator_refs(fault_server.requests("agg")[0]) == ["real answer"]
    empty = by_agent(result.trace, "faulty:e")
    assert not empty.ok and empty.error_type == "BadResponse"
    assert [a.error for a in empty.attempts] == ["the model answered with empty text"] * 2


async def test_a_server_that_refuses_stream_options_is_asked_again_without(
    fault_server: FaultServer,
) -> None:
    refusal = status(
        400,
        body={
            "error": {
                "message": "Unrecognized request argument supplied: stream_options",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )
    fault_server.script("agg", refusal)
    async with make(fault_server, [], "faulty:agg", retry={"attempts": 1}) as m:
        events = [e async for e in m.astream("q")]
        first, second = fault_server.requests("agg")
        again = [e async for e in m.astream("q")]  # remembered: asked without it at once
    assert isinstance(events[-1], Finished) and events[-1].result.text
    assert "stream_options" in first.body and "stream_options" not in second.body
    assert isinstance(again[-1], Finished)
    assert "stream_options" not in fault_server.requests("agg")[2].body
