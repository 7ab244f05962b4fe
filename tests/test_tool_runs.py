"""Runs with tools on the fake backend: who acts, what the references see, the final's four
fields, one repair, tool-result turns, loops, reasoning, and what the trace and cache keep."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from moa import FakeBackend, MoA
from moa.backends.base import collect
from moa.backends.fake import Reply, call
from moa.cache import request_key
from moa.errors import AggregationError, ConfigError
from moa.events import Reasoning, Token
from moa.tools import make_act
from moa.types import Message, Request, ToolCall

LOOKUP: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look up a key.",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
        },
    },
}
TOOLS = [LOOKUP]
SCHEMA = {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]}
FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
}
MOA_LITE = {"layers": [["fake:a", "fake:b"]], "aggregator": "fake:agg"}
CHOOSING = {
    "layers": [["fake:a", "fake:b", "fake:c"]],
    "aggregator": "fake:agg",
    "strategy": {"final": "auto"},
}


def lookup(key: str, id: str = "") -> Reply:
    return Reply(tool_calls=[call("lookup", {"key": key}, id=id or f"call_{key}")])


def history(*results: tuple[str, str]) -> list[dict[str, Any]]:
    """A conversation that asked, then called lookup(key) and got each result."""
    out: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is alpha?"},
    ]
    for i, (key, result) in enumerate(results):
        tool_call = {
            "id": f"c{i}",
            "type": "function",
            "function": {"name": "lookup", "arguments": json.dumps({"key": key})},
        }
        out.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})
        out.append({"role": "tool", "tool_call_id": f"c{i}", "content": result})
    return out


def no_tool_traces(request: Request) -> None:
    assert request.act is None
    assert all(
        m.role != "tool" and not m.tool_calls and m.tool_call_id is None for m in request.messages
    )
    assert request.messages[-1].role == "user"


async def test_the_aggregator_acts_with_all_four_fields_and_references_see_no_tools() -> None:
    fake = FakeBackend().enqueue("agg", lookup("alpha"))
    moa = MoA(MOA_LITE, backends={"fake": fake})
    result = await moa.arun(
        history(("beta", "alpha is under gamma")),
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        response_format=FORMAT,
    )
    assert result.text == "" and [c.name for c in result.tool_calls] == ["lookup"]
    assert json.loads(result.tool_calls[0].arguments) == {"key": "alpha"}
    for model in ("a", "b"):
        (request,) = fake.requests(model)
        no_tool_traces(request)
        assert (
            'The tool "lookup", given {"key": "beta"}, returned: alpha is under gamma'
            in request.messages[0].content
        )
    (final,) = fake.requests("agg")
    assert final.act == make_act(
        tools=TOOLS, tool_choice="required", parallel_tool_calls=False, response_format=FORMAT
    )
    assert [m.role for m in final.messages] == ["system", "user", "assistant", "tool"]
    assert final.messages[2].tool_calls[0].id == "c0" and final.messages[3].tool_call_id == "c0"
    assert "You can call the tools you are given" in final.messages[0].content
    (agg_call,) = [c for c in result.trace.calls if c.role == "aggregator"]
    assert agg_call.tool_calls == result.tool_calls and agg_call.finish_reason == "tool_calls"


async def test_under_a_choosing_rule_the_last_layer_acts_and_the_tool_vote_picks() -> None:
    fake = FakeBackend()
    fake.enqueue("a", lookup("beta", "ga")).enqueue("b", lookup("alpha", "gb")).enqueue(
        "c", lookup("alpha", "gc")
    )
    moa = MoA(CHOOSING, backends={"fake": fake})
    result = await moa.arun("What is alpha?", tools=TOOLS)
    assert [c.id for c in result.tool_calls] == ["gb"]  # 2 of 3 call lookup(alpha)
    assert all(r.act is not None for m in "abc" for r in fake.requests(m))
    assert fake.requests("agg") == []  # no synthesis: the agents acted
    assert 'tool vote: lookup({"key":"alpha"}) with 2 of 3' in result.trace.notes


async def test_a_tool_vote_tie_goes_to_the_greedy_call_and_text_can_win() -> None:
    fake = FakeBackend()
    fake.enqueue("a", lookup("x", "ga")).enqueue("b", lookup("y", "gb")).enqueue("c", "It is 4.")
    moa = MoA(CHOOSING, backends={"fake": fake})
    assert [c.id for c in (await moa.arun("q", tools=TOOLS)).tool_calls] == ["ga"]
    fake.enqueue("a", "Four.").enqueue("b", lookup("y")).enqueue("c", "It is four.")
    result = await moa.arun("q", tools=TOOLS)
    assert result.tool_calls == () and result.text == "Four."  # text won; prose: the greedy one


async def test_the_tool_vote_stops_the_answers_that_cannot_change_it() -> None:
    fake = FakeBackend()
    for name in "ab":
        fake.enqueue(name, lookup("alpha"))
    fake.latency("c", 5.0)
    recipe = {
        "layers": [["fake:a", "fake:b", "fake:c"]],
        "aggregator": "fake:agg",
        "strategy": {"final": "tool_vote"},
    }
    result = await MoA(recipe, backends={"fake": fake}).arun("q", tools=TOOLS)
    assert result.tool_calls[0].name == "lookup"
    assert fake.cancelled == ["c"]
    assert any("the tool vote is decided" in n for n in result.trace.notes)


def two(first: str, second: str, id: str) -> Reply:
    return Reply(
        tool_calls=[call("lookup", {"key": first}, id=f"{id}1"), call("lookup", {"key": second})]
    )


@pytest.mark.parametrize(
    ("answers", "chosen"),
    [
        # two answers add the call the greedy one missed: each call made by at least half
        ([lookup("a", "g"), two("a", "b", "s"), two("b", "a", "t"), lookup("a", "u")], "s1"),
        # a call only one answer makes does not count: the greedy answer
        ([lookup("a", "g"), two("a", "b", "s"), lookup("a", "t"), lookup("a", "u")], "g"),
        # arguments that differ by 2.0 against 2 are the same call, made by half the answers
        ([lookup("b", "g"), Reply(tool_calls=[call("lookup", {"key": "a", "n": 2.0}, id="w")]),
          Reply(tool_calls=[call("lookup", {"key": "a", "n": 2}, id="x")]), lookup("c", "u")],
         "w"),
    ],
)  # fmt: skip
async def test_the_tool_vote_by_call_takes_the_answer_with_the_most_supported_calls(
    answers: list[Reply], chosen: str
) -> None:
    fake = FakeBackend()
    for name, answer in zip("abcd", answers, strict=True):
        fake.enqueue(name, answer)
    recipe = {
        "layers": [["fake:a", "fake:b", "fake:c", "fake:d"]],
        "aggregator": "fake:agg",
        "strategy": {"final": {"rule": "tool_vote", "count": "calls"}},
    }
    result = await MoA(recipe, backends={"fake": fake}).arun("q", tools=TOOLS)
    assert result.tool_calls[0].id == chosen
    assert fake.cancelled == []  # decided once every answer is in


async def test_the_tool_vote_by_call_leaves_a_text_outcome_to_its_text_rule() -> None:
    fake = FakeBackend()
    fake.enqueue("a", "Nothing fits.").enqueue("b", "None fits.").enqueue("c", lookup("z"))
    recipe = {
        "layers": [["fake:a", "fake:b", "fake:c"]],
        "aggregator": "fake:agg",
        "strategy": {"final": {"rule": "tool_vote", "count": "calls"}},
    }
    result = await MoA(recipe, backends={"fake": fake}).arun("q", tools=TOOLS)
    assert result.tool_calls == () and result.text == "Nothing fits."


async def test_a_bad_call_is_repaired_once_with_the_mistake_shown() -> None:
    fake = FakeBackend().enqueue(
        "agg", '{"name": "lookpu", "arguments": {"key": "a"}}', lookup("a")
    )
    result = await MoA(MOA_LITE, backends={"fake": fake}).arun("q", tools=TOOLS)
    assert result.tool_calls[0].name == "lookup"
    first, second = fake.requests("agg")
    assert second.messages[:-2] == first.messages
    assert second.messages[-2] == Message(
        "assistant", '{"name": "lookpu", "arguments": {"key": "a"}}'
    )
    assert "'lookpu', which is not a declared tool (lookup)" in second.messages[-1].content
    # under tool_choice auto, text is allowed: a model is never pushed into inventing a call
    assert "if none of them fits, answer in text" in second.messages[-1].content
    (agg,) = [c for c in result.trace.calls if c.role == "aggregator"]
    assert [a.error_type for a in agg.attempts] == ["BadAnswer", None]
    fake.enqueue("agg", '{"name": "lookpu", "arguments": {}}', lookup("a"))
    await MoA(MOA_LITE, backends={"fake": fake}).arun("q", tools=TOOLS, tool_choice="required")
    assert "if none of them fits" not in fake.requests("agg")[-1].messages[-1].content


async def test_a_second_bad_answer_fails_the_call_naming_the_problem() -> None:
    fake = FakeBackend().respond("agg", '{"name": "lookup", "arguments": "not json"}')
    with pytest.raises(AggregationError) as info:
        await MoA(MOA_LITE, backends={"fake": fake}).arun("q", tools=TOOLS)
    assert "the arguments of the call of 'lookup' are not valid JSON" in str(info.value)
    assert len(fake.requests("agg")) == 2  # the answer, one repair; no blind retries


async def test_a_json_schema_answer_is_checked_and_repaired() -> None:
    fake = FakeBackend().enqueue("agg", '{"value": "391"}', '```json\n{"value": 391}\n```')
    result = await MoA(MOA_LITE, backends={"fake": fake}).arun("q", response_format=FORMAT)
    assert json.loads(result.text) == {"value": 391}
    assert "$.value: expected integer, got string" in fake.requests("agg")[1].messages[-1].content
    for model in ("a", "b"):
        assert fake.requests(model)[0].act is None  # only the final is constrained


async def test_tool_choice_required_with_a_text_answer_is_an_error_after_one_repair() -> None:
    fake = FakeBackend().respond("agg", "I would rather not.")
    with pytest.raises(
        AggregationError, match="tool_choice is 'required', but the model answered text"
    ):
        await MoA(MOA_LITE, backends={"fake": fake}).arun("q", tools=TOOLS, tool_choice="required")


async def test_a_tool_result_turn_reuses_the_references_of_its_user_turn() -> None:
    fake = FakeBackend().enqueue("agg", lookup("alpha"), "alpha is 391")
    moa = MoA(MOA_LITE, backends={"fake": fake})
    first = await moa.arun(history(), tools=TOOLS)
    again = await moa.arun(history(("alpha", "391")), tools=TOOLS)
    assert again.text == "alpha is 391"
    assert len(fake.requests("a")) == 1 and len(fake.requests("b")) == 1
    assert any("are reused (tools.references: per_turn)" in n for n in again.trace.notes)
    assert first.tool_calls
    # per_request: they run again, and see the result
    fake2 = FakeBackend()
    moa2 = MoA({**MOA_LITE, "tools": {"references": "per_request"}}, backends={"fake": fake2})
    await moa2.arun(history(), tools=TOOLS)
    await moa2.arun(history(("alpha", "391")), tools=TOOLS)
    assert len(fake2.requests("a")) == 2
    assert "returned: 391" in fake2.requests("a")[1].messages[0].content


async def test_a_continuation_without_tools_is_answered_in_text() -> None:
    fake = FakeBackend().enqueue("agg", "alpha is 391")
    result = await MoA(MOA_LITE, backends={"fake": fake}).arun(history(("alpha", "391")))
    assert result.text == "alpha is 391" and result.tool_calls == ()
    (final,) = fake.requests("agg")
    assert final.act is None and final.messages[-1].role == "tool"
    no_tool_traces(fake.requests("a")[0])


async def test_a_loop_of_identical_calls_is_answered_without_tools() -> None:
    again = '```json\n{"name": "lookup", "arguments": {"key": "alpha"}}\n```'
    fake = FakeBackend().enqueue("agg", again, "alpha could not be found")
    loop = history(("alpha", "?"), ("alpha", "?"), ("alpha", "?"))
    result = await MoA(MOA_LITE, backends={"fake": fake}).arun(loop, tools=TOOLS)
    assert result.text == "alpha could not be found"
    final, repaired = fake.requests("agg")  # the call written again as text: repaired
    assert final.act is not None and final.act.tool_choice == "none" and final.act.tools
    assert "answer in text, without calling a tool" in repaired.messages[-1].content
    assert any("made the same tool calls (limit 3)" in n for n in result.trace.notes)
    fake.enqueue("agg", lookup("alpha"))
    two = await MoA(MOA_LITE, backends={"fake": fake}).arun(loop[:-2], tools=TOOLS)
    assert two.tool_calls  # two rounds: still allowed


async def test_an_orphan_tool_result_is_refused_before_any_call() -> None:
    fake = FakeBackend()
    orphan = [
        {"role": "user", "content": "q"},
        {"role": "tool", "tool_call_id": "nope", "content": "1"},
    ]
    with pytest.raises(ConfigError, match=r"messages\[1\].tool_call_id: 'nope' answers no earlier"):
        await MoA(MOA_LITE, backends={"fake": fake}).arun(orphan, tools=TOOLS)
    assert fake.calls == []


async def test_reasoning_stays_apart_from_the_answer_and_from_later_calls() -> None:
    fake = FakeBackend()
    fake.enqueue("a", "<think>secret plan A</think>answer A").enqueue(
        "b", Reply("answer B", reasoning="plan B")
    )
    fake.enqueue("agg", Reply("final", reasoning="weighing A and B"))
    moa = MoA(MOA_LITE, backends={"fake": fake})
    events = [e async for e in moa.astream("q")]
    result = events[-1].result  # type: ignore[union-attr]
    assert result.text == "final" and result.reasoning == "weighing A and B"
    shown = fake.requests("agg")[0].messages[0].content
    assert "answer A" in shown and "secret plan A" not in shown and "plan B" not in shown
    assert [e.text for e in events if isinstance(e, Reasoning)] == ["weighing A and B"]
    assert "".join(e.text for e in events if isinstance(e, Token)) == "final"
    (a,) = [c for c in result.trace.calls if c.agent == "fake:a"]
    assert a.text == "answer A" and a.reasoning == "secret plan A"


async def test_a_streamed_run_holds_a_checked_answer_and_sends_it_whole() -> None:
    fake = FakeBackend().enqueue("agg", Reply('```json\n{"value": 7}\n```'))
    events = [
        e async for e in MoA(MOA_LITE, backends={"fake": fake}).astream("q", response_format=FORMAT)
    ]
    assert [e.text for e in events if isinstance(e, Token)] == [
        '{"value": 7}'
    ]  # no fence, one piece


async def test_streamed_tool_calls_reassembled_by_index_equal_the_whole_answer() -> None:
    reply = Reply(
        tool_calls=[call("lookup", {"key": "a"}, id="c1"), call("lookup", {"key": "b"}, id="c2")]
    )
    fake = FakeBackend().respond("m", reply)
    act = make_act(tools=TOOLS)
    request = Request(model="m", messages=(Message("user", "q"),), act=act)
    whole = await fake.complete(request)
    pieces = [d async for d in fake.stream(request)]
    assert sum(1 for d in pieces if d.tool_calls) == 6  # each call: head, then two halves
    assert (
        (await collect(fake.stream(request))).tool_calls
        == whole.tool_calls
        == tuple(reply.tool_calls)
    )
    assert (
        whole.finish_reason == "tool_calls" and whole.usage.output_tokens > 0
    )  # calls cost tokens


def test_the_cache_key_covers_tools_and_tool_turns_and_keeps_old_keys() -> None:
    plain = Request(model="m", messages=(Message("user", "q"),))
    with_tools = Request(model="m", messages=plain.messages, act=make_act(tools=TOOLS))
    required = Request(
        model="m", messages=plain.messages, act=make_act(tools=TOOLS, tool_choice="required")
    )
    turn = Request(
        model="m",
        messages=(*plain.messages, Message("assistant", "", (ToolCall("c", "lookup", "{}"),))),
    )
    other = Request(
        model="m",
        messages=(
            *plain.messages,
            Message("assistant", "", (ToolCall("c", "lookup", '{"k": 1}'),)),
        ),
    )
    keys = {request_key("ns", r) for r in (plain, with_tools, required, turn, other)}
    assert len(keys) == 5
    # a plain conversation keys as it did before tools (the cache of earlier runs stays valid)
    old = {"v": 1, "ns": "ns", "model": "m", "messages": [["user", "q"]], "settings": {}}
    text = json.dumps(old, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert request_key("ns", plain) == hashlib.sha256(text.encode()).hexdigest()


def test_the_trace_hides_credentials_in_call_arguments_but_the_answer_keeps_them() -> None:
    url = "https://user:hunter2@example.com/x?token=abc"
    fake = FakeBackend().enqueue("agg", Reply(tool_calls=[call("lookup", {"key": url})]))
    result = MoA(MOA_LITE, backends={"fake": fake}).run("q", tools=TOOLS)
    assert json.loads(result.tool_calls[0].arguments) == {"key": url}
    traced = json.dumps(result.trace.to_dict())
    assert "hunter2" not in traced and "token=abc" not in traced
    assert '\\"key\\": \\"https://***@example.com/x?***\\"' in traced


def test_moa_run_refuses_bad_tools_naming_the_field() -> None:
    moa = MoA(MOA_LITE, backends={"fake": FakeBackend()})
    with pytest.raises(ConfigError, match=r"tools\[0\].function.name"):
        moa.run("q", tools=[{"type": "function", "function": {"name": ""}}])
    with pytest.raises(ConfigError, match=r"response_format\.type"):
        moa.run("q", response_format={"type": "yaml"})


async def test_the_local_recipe_acts_with_its_four_answers_and_votes_on_their_calls() -> None:
    """The embedded default is an agent's model: its four answers (dry-run here) are the
    candidate calls, counted call by call once all are in (tool_vote, count: calls)."""
    import asyncio

    from moa.recipe import load_recipe

    async def by_seed(request: Request) -> Reply:
        seed = request.settings.seed  # the greedy answer has none, the samples 0, 1, 2
        await asyncio.sleep(0.01 * (0 if seed is None else seed + 1))
        if seed == 1:  # the one sample that makes both calls: one of them made by it alone
            return two("alpha", "beta", "s")
        return lookup("alpha", f"g{seed}")

    model = "local:qwen2.5-coder-1.5b-instruct"
    fake = FakeBackend().respond(model, by_seed)
    moa = MoA(load_recipe("local").dry_run(), backends={"fake": fake})
    result = await moa.arun("What is alpha?", tools=TOOLS)
    assert [c.id for c in result.tool_calls] == ["gNone"]  # the greedy call
    assert len(fake.requests(model)) == 4 and all(r.act is not None for r in fake.requests(model))
    assert [c.error_type for c in result.trace.calls] == [None] * 4  # all four are counted
    assert any("tool vote by call: answer 1, 1 call(s)" in n for n in result.trace.notes)


@pytest.mark.parametrize("greedy", ["call", "text"])
async def test_a_greedy_first_tool_rule_starts_only_the_greedy_answer_where_tools_are_given(
    greedy: str,
) -> None:
    """`tool: {rule: first, decide_early: true}`: with tools, the greedy answer alone runs and
    is the outcome, a call or not; without tools, the four start as the other rules ask."""
    from moa.recipe import load_recipe

    final = {"rule": "auto", "number": "vote", "tool": {"rule": "first", "decide_early": True}}
    base = load_recipe("local").model_dump(exclude_defaults=True)
    recipe = load_recipe({**base, "strategy": {"final": final}})
    model = "local:qwen2.5-coder-1.5b-instruct"

    def by_seed(request: Request) -> Reply | str:
        if request.settings.seed is None and greedy == "text":
            return "No tool fits: alpha is a letter."
        return lookup("alpha", f"g{request.settings.seed}") if request.act else "Answer: 7"

    fake = FakeBackend().respond(model, by_seed)
    moa = MoA(recipe.dry_run(), backends={"fake": fake})
    result = await moa.arun("What is alpha?", tools=TOOLS)
    assert len(fake.requests(model)) == 1
    if greedy == "call":
        assert [c.id for c in result.tool_calls] == ["gNone"]
    else:
        assert result.text == "No tool fits: alpha is a letter." and not result.tool_calls
    assert any("the request gives tools: the first answer is in" in n for n in result.trace.notes)
    plain = await moa.arun("What is 3 + 4?")
    assert plain.text == "Answer: 7" and len(fake.requests(model)) == 5  # all four started


async def test_long_tool_results_are_cut_to_the_acting_calls_window_not_refused() -> None:
    """Three 1,500-word tool results and a 2,000-token window: the references see a digest
    trimmed as before, and the acting call gets the results cut fairly, pairs intact."""
    fake = FakeBackend(window=2000)
    fake.respond("agg", "alpha is 391")
    long = [(k, f"{k} " + "word " * 1500) for k in ("alpha", "beta", "gamma")]
    result = await MoA(MOA_LITE, backends={"fake": fake}).arun(history(*long), tools=TOOLS)
    assert result.text == "alpha is 391"
    ((_, sent),) = [(m, r) for m, r in fake.calls if m == "agg"]
    tools = [m for m in sent.messages if m.role == "tool"]
    assert [m.tool_call_id for m in tools] == ["c0", "c1", "c2"]
    assert all(m.content.endswith("[... trimmed to fit the context window]") for m in tools)
    assert all(m.content.startswith(k) for m, (k, _) in zip(tools, long, strict=True))
    final = next(c for c in result.trace.calls if c.role == "aggregator")
    assert final.trimmed is not None
    assert [t["index"] for t in final.trimmed["tool_results"]] == [1, 2, 3]


async def test_an_empty_answer_of_an_acting_call_is_repaired_not_retried_blindly() -> None:
    fake = FakeBackend().enqueue("agg", "", "alpha is 391")
    result = await MoA(MOA_LITE, backends={"fake": fake}).arun(
        history(("alpha", "391")), tools=TOOLS
    )
    assert result.text == "alpha is 391"
    first, again = fake.requests("agg")
    # no turn stands for the empty answer: a weak model imitates one, or the rules it is told
    assert again.messages[:-1] == first.messages
    assert again.messages[-1].role == "user"
    assert again.messages[-1].content == (
        "Your last answer was empty. Answer the request now: call a tool if one is still "
        "needed, else reply in text, using the tool results above."
    )


async def test_an_empty_json_answer_is_told_to_give_only_the_json() -> None:
    fake = FakeBackend().enqueue("agg", "", '{"value": 391}')
    result = await MoA(MOA_LITE, backends={"fake": fake}).arun("q", response_format=FORMAT)
    assert result.text == '{"value": 391}'
    assert fake.requests("agg")[1].messages[-1].content == (
        "Your last answer was empty. Answer the request now: only the JSON, nothing around it."
    )


async def test_under_a_choosing_rule_the_last_layer_sees_the_tool_turns_even_without_tools() -> (
    None
):
    fake = FakeBackend()
    for name in "abc":
        fake.enqueue(name, "alpha is 391")
    result = await MoA(CHOOSING, backends={"fake": fake}).arun(history(("alpha", "391")))
    assert result.text == "alpha is 391"
    request = fake.requests("a")[0]
    assert request.act is None and [m.role for m in request.messages][-2:] == ["assistant", "tool"]


async def test_long_tool_results_are_trimmed_to_each_reference_s_window() -> None:
    fake = FakeBackend(window=400)  # words, as the fake counts tokens
    long_result = " ".join(f"w{i}" for i in range(1000))
    recipe = {
        "layers": [["fake:a", "fake:b"]],
        "aggregator": {"model": "fake:agg", "context_window": 5000},  # the acting call: whole
        "proposer_defaults": {"max_tokens": 50},
    }
    fake.enqueue("agg", "done")
    result = await MoA(recipe, backends={"fake": fake}).arun(history(("alpha", long_result)))
    shown = fake.requests("a")[0].messages[0].content
    assert "w0 w1" in shown and "w999" not in shown  # cut at the end, to fit
    assert sum(len(m.content.split()) for m in fake.requests("a")[0].messages) < 400
    (a,) = [c for c in result.trace.calls if c.agent == "fake:a"]
    assert a.trimmed is not None and a.trimmed["window"] == 400


async def test_a_correction_repeated_as_the_answer_fails_the_call() -> None:
    def parrot(request: Request) -> str:
        last = request.messages[-1].content
        return (
            last
            if last.startswith("Your last answer")
            else '{"name": "lookup", "arguments": {"key": 5}}'
        )

    fake = FakeBackend().respond("agg", parrot)
    with pytest.raises(AggregationError, match="repeated the correction instead of answering"):
        await MoA(MOA_LITE, backends={"fake": fake}).arun("q", tools=TOOLS)
