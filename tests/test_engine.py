"""The engine's logic, on the fake backend: order, injected text, quorum, trace, streaming."""

from __future__ import annotations

import asyncio
import json

import pytest
from recipes import make, recipe

from moa import (
    AGGREGATE_PROMPT,
    AgentFinished,
    AgentStarted,
    AggregationError,
    FakeBackend,
    Finished,
    LayerFinished,
    MoA,
    QuorumError,
    Token,
    Trace,
)
from moa.errors import BackendError, BackendTimeout, MissingKeyError
from moa.plan import compile_recipe
from moa.prompts import inject, numbered
from moa.recipe import load_recipe
from moa.types import Message


async def test_injects_answers_exactly_as_the_paper() -> None:
    fake = FakeBackend()
    fake.enqueue("a", "Answer A").enqueue("b", "Answer B").enqueue("c", "Answer C")
    fake.enqueue("agg", "final")
    result = await make(fake).arun("What is 2+2?")
    assert result.text == "final"
    (agg,) = fake.requests("agg")
    expected = AGGREGATE_PROMPT + "\n1. Answer A\n2. Answer B\n3. Answer C"
    assert [m.to_dict() for m in agg.messages] == [
        {"role": "system", "content": expected},
        {"role": "user", "content": "What is 2+2?"},
    ]
    # proposers got the bare prompt
    for model in "abc":
        (req,) = fake.requests(model)
        assert [m.to_dict() for m in req.messages] == [{"role": "user", "content": "What is 2+2?"}]


async def test_existing_system_message_gets_the_block_appended_and_turns_kept() -> None:
    fake = FakeBackend()
    fake.respond("a", "A").respond("b", "B").respond("c", "C")
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What is 2+2?"},
    ]
    await make(fake).arun(conversation)
    (agg,) = fake.requests("agg")
    assert agg.messages[0] == Message(
        "system", "Be brief.\n\n" + AGGREGATE_PROMPT + "\n1. A\n2. B\n3. C"
    )
    assert [m.to_dict() for m in agg.messages[1:]] == conversation[1:]
    (prop,) = fake.requests("a")
    assert [m.to_dict() for m in prop.messages] == conversation


async def test_three_layers_refine_in_order() -> None:
    fake = FakeBackend()
    fake.respond("p", lambda req: f"p saw {req.messages[0].content.count(chr(10))} lines")
    fake.respond("q", "q")
    m = MoA(
        {"layers": [["fake:p", "fake:q"], ["fake:p", "fake:q"]], "aggregator": "fake:agg"},
        backends={"fake": fake},
    )
    result = await m.arun("x")
    order = [model for model, _ in fake.calls]
    assert order[:2] == ["p", "q"] and order[2:4] == ["p", "q"] and order[4] == "agg"
    layer2 = fake.requests("p")[1]
    assert layer2.messages[0].content.endswith("\n1. p saw 0 lines\n2. q")
    assert [c.layer for c in result.trace.calls] == [1, 1, 2, 2, 3]


async def test_layers_run_concurrently() -> None:
    fake = FakeBackend()
    for name in "abc":
        fake.latency(name, 0.2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await make(fake).arun("x")
    assert loop.time() - start < 0.5  # three 0.2 s agents side by side, not 0.6 s


async def test_empty_layers_is_the_single_model_baseline() -> None:
    fake = FakeBackend().enqueue("solo", "alone")
    result = await MoA({"layers": [], "aggregator": "fake:solo"}, backends={"fake": fake}).arun(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    )
    assert result.text == "alone"
    (req,) = fake.requests("solo")
    assert [m.content for m in req.messages] == ["S", "Q"]  # nothing injected


async def test_failed_agent_is_dropped_not_injected_and_recorded() -> None:
    fake = FakeBackend().respond("a", "A").respond("c", "C")
    fake.fail("b", BackendError("HTTP 500: boom", model="b", status=500))
    result = await make(fake).arun("x")
    (agg,) = fake.requests("agg")
    system = agg.messages[0].content
    assert system.endswith("\n1. A\n2. C")
    assert "None" not in system and "boom" not in system
    failed = [c for c in result.trace.calls if not c.ok]
    assert [(c.agent, c.error_type, c.error) for c in failed] == [
        ("fake:b", "BackendError", "HTTP 500: boom")
    ]


async def test_below_quorum_fails_naming_each_agent_and_cause() -> None:
    fake = FakeBackend().respond("a", "A")
    fake.fail("b", BackendTimeout("no answer within 1s", model="b"))
    fake.fail("c", BackendError("HTTP 401: bad key", model="c", status=401))
    m = MoA(
        recipe(layers=[{"agents": ["fake:a", "fake:b", "fake:c"], "quorum": 2}]),
        backends={"fake": fake},
    )
    with pytest.raises(QuorumError) as info:
        await m.arun("x")
    err = info.value
    assert (err.layer, err.needed, err.got) == (1, 2, 1)
    text = str(err)
    assert "fake:b" in text and "BackendTimeout" in text and "no answer within 1s" in text
    assert "fake:c" in text and "HTTP 401: bad key" in text
    assert fake.requests("agg") == []  # the aggregator is never called
    assert isinstance(err.trace, Trace) and err.trace.outcome == "error"


async def test_trace_records_every_call_and_totals() -> None:
    fake = FakeBackend()
    fake.enqueue("a", "one two").enqueue("b", "three").enqueue("c", "four five six")
    fake.enqueue("agg", "final answer")
    result = await make(fake, proposer_defaults={"temperature": 0.3, "max_tokens": 50}).arun(
        "hello world"
    )
    trace = result.trace
    assert trace.outcome == "ok" and trace.recipe == "t"
    by_agent = {c.agent: c for c in trace.calls}
    assert by_agent["fake:a"].text == "one two"
    assert by_agent["fake:a"].output_tokens == 2
    assert by_agent["fake:a"].input_tokens == 2
    assert by_agent["fake:a"].settings == {"temperature": 0.3, "max_tokens": 50}
    assert by_agent["fake:agg"].role == "aggregator" and by_agent["fake:agg"].layer == 2
    assert all(c.latency_s >= 0 and len(c.attempts) == 1 for c in trace.calls)
    totals = trace.totals()
    assert totals.calls == 4 and totals.failed == 0
    assert totals.output_tokens == 2 + 1 + 3 + 2
    assert result.usage.output_tokens == totals.output_tokens
    layers = trace.layer_totals()
    assert layers[1].calls == 3 and layers[2].calls == 1
    data = json.loads(trace.to_json())
    assert data["totals"]["output_tokens"] == 8 and data["layers"]["1"]["calls"] == 3
    again = Trace.from_dict(data)
    assert again.calls[0].text == trace.calls[0].text


async def test_stream_events_in_order_and_tokens_join_to_the_answer() -> None:
    fake = FakeBackend().respond("agg", "the final synthesized answer")
    events = [e async for e in make(fake).astream("x")]
    kinds = [type(e).__name__ for e in events]
    assert kinds[-1] == "Finished"
    layer_done = kinds.index("LayerFinished")
    assert kinds[:layer_done].count("AgentStarted") == 3
    assert kinds[:layer_done].count("AgentFinished") == 3
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert len(tokens) == 4 and "".join(tokens) == "the final synthesized answer"
    first_token = kinds.index("Token")
    assert first_token > layer_done
    assert isinstance(events[first_token - 1], AgentStarted)
    assert isinstance(events[first_token + 4], AgentFinished)
    assert isinstance(events[layer_done], LayerFinished)
    final = events[-1]
    assert isinstance(final, Finished) and final.result.text == "the final synthesized answer"


def test_sync_run_and_stream_reuse_one_loop() -> None:
    fake = FakeBackend()
    with make(fake) as m:
        first = m.run("one")
        second = m.run("two")
        events = list(m.stream("three"))
    assert "answer to: one" not in first.text  # the aggregator synthesises
    assert first.text.startswith("[agg] synthesis of 3 responses")
    assert second.text.endswith("two")
    assert isinstance(events[-1], Finished)
    assert not fake.closed  # a backend the caller passed in stays theirs to close


async def test_aggregator_overrides_apply_unless_the_recipe_pins_them() -> None:
    fake = FakeBackend()
    await make(fake).arun("x", temperature=0.1, max_tokens=7)
    assert fake.requests("agg")[-1].settings.temperature == 0.1
    assert fake.requests("agg")[-1].settings.max_tokens == 7
    assert fake.requests("a")[-1].settings.temperature == 0.7  # proposer default, untouched
    pinned = make(fake, aggregator={"model": "fake:agg", "temperature": 0.0})
    await pinned.arun("x", temperature=0.9)
    assert fake.requests("agg")[-1].settings.temperature == 0.0


async def test_samples_get_distinct_seeds_and_names() -> None:
    fake = FakeBackend()
    m = MoA(
        {"layers": [[{"model": "fake:s", "n": 3, "seed": 10}]], "aggregator": "fake:agg"},
        backends={"fake": fake},
    )
    result = await m.arun("x")
    assert [r.settings.seed for r in fake.requests("s")] == [10, 11, 12]
    assert [c.agent for c in result.trace.layer(1)] == ["fake:s#1", "fake:s#2", "fake:s#3"]


async def test_agent_system_prompt_goes_first() -> None:
    fake = FakeBackend()
    m = MoA(
        {"layers": [[{"model": "fake:a", "system": "You are terse."}]], "aggregator": "fake:agg"},
        backends={"fake": fake},
    )
    await m.arun([{"role": "system", "content": "Conv."}, {"role": "user", "content": "Q"}])
    (req,) = fake.requests("a")
    assert req.messages[0].content == "You are terse.\n\nConv."


async def test_aggregator_failure_errors_or_returns_best_proposal() -> None:
    fake = FakeBackend().respond("a", "A").respond("b", "B").respond("c", "C")
    fake.fail("agg", BackendError("HTTP 503: down", model="agg", status=503))
    with pytest.raises(AggregationError, match="HTTP 503: down"):
        await make(fake).arun("x")
    result = await make(fake, on_aggregator_failure="best_proposal").arun("x")
    assert result.best_proposal and result.text == "A"
    assert result.trace.outcome == "best_proposal"
    assert "fake:a" in result.trace.notes[0]


def test_references_block_template_placeholder() -> None:
    block = numbered("Answers:\n{responses}\nBe brief.", ["x", "y"])
    assert block == "Answers:\n1. x\n2. y\nBe brief."
    msgs = inject([Message("user", "q")], "P", ["r"])
    assert msgs == [Message("system", "P\n1. r"), Message("user", "q")]


def test_dry_run_replaces_every_model() -> None:
    with pytest.raises(MissingKeyError, match="TOGETHER_API_KEY"):
        MoA("moa-lite", env={})

    dry = load_recipe("moa-lite").dry_run()
    assert all(ref.startswith("fake:") for ref in compile_recipe(dry).models)
    with MoA(dry) as m:
        result = m.run("hi")
    assert result.text.startswith("[together:Qwen/Qwen2.5-72B-Instruct-Turbo] synthesis of 3")


async def test_a_backend_timeout_without_a_recipe_timeout_fails_one_agent() -> None:
    fake = FakeBackend().fail("b", TimeoutError())
    result = await make(fake, timeout=None).arun("x")
    (failed,) = [c for c in result.trace.calls if not c.ok]
    assert (failed.agent, failed.error_type) == ("fake:b", "BackendTimeout")
    assert failed.error == "the backend timed out"
    assert result.trace.outcome == "ok"


async def test_evidence_and_a_review_are_kept_while_the_answers_are_trimmed_to_fit() -> None:
    long = " ".join(["word"] * 400)
    fake = FakeBackend(window=1200)
    for model, n in (("a", 1), ("b", 2), ("c", 1)):
        fake.respond(model, f"{long}\nAnswer: {n}")
    fake.respond("agg", "Answer: 1")
    data = recipe(strategy={"evidence": "votes"}, aggregator_defaults={"max_tokens": 100})
    result = await MoA(data, backends={"fake": fake}).arun("x")
    assert result.text == "Answer: 1"
    (agg,) = [c for c in result.trace.calls if c.role == "aggregator"]
    assert agg.trimmed is not None and len(agg.trimmed["references"]) == 3
    (request,) = fake.requests("agg")
    system = request.messages[0].content
    assert "trimmed to fit the context window" in system
    assert "The most common answer is 1." in system  # the evidence, read before trimming
    assert sum(len(m.content.split()) for m in request.messages) < 1200


async def test_the_best_proposal_is_the_answer_most_in_agreement() -> None:
    fake = FakeBackend().respond("a", "Bananas are yellow.").respond("b", "It is Paris.")
    fake.respond("c", "It is Paris.")
    fake.fail("agg", BackendError("HTTP 503: down", model="agg", status=503))
    result = await make(fake, on_aggregator_failure="best_proposal").arun("x")
    assert result.best_proposal and result.text == "It is Paris."
    assert "fake:b" in result.trace.notes[0]
