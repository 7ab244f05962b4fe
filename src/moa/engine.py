"""The MoA engine: the layers and the run. One call's rules are `moa.call`'s; what happens
between the layers and the final answer is the strategy's (`moa.strategies`).

moa = MoA.from_recipe("local")
result = moa.run("What is 17 * 23?")          # or: await moa.arun(messages)
print(result.text, result.trace.totals())
for event in moa.stream(messages): ...         # AgentStarted/AgentFinished/Token/...
result = moa.run(messages, tools=[...], tool_choice="auto")   # result.tool_calls

With tools or a response format, one call acts and the others advise (docs/tools.md): under a
final rule that picks one of the last layer's answers (`FinalRule.chooses`), the last layer's
agents act and the rule picks among their calls; else the aggregator acts. The calls that do
not act see the conversation without its tool turns (`moa.reference_view`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import random
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from moa.agent import Agent
from moa.backends.base import Backend
from moa.call import Caller, Run, failures
from moa.cost import Price, price_trace
from moa.errors import (
    AggregationError,
    ConfigError,
    DeadlineExceeded,
    MoAError,
    QuorumError,
    RunError,
)
from moa.events import (
    AgentFinished,
    AgentStarted,
    Event,
    EventSink,
    Finished,
    LayerFinished,
    Result,
    Token,
)
from moa.limits import LIMITS, Limits
from moa.plan import LayerPlan, Plan, compile_recipe
from moa.prompts import Brief, add_system, briefed
from moa.recipe import Recipe
from moa.reference_view import reference_view
from moa.resolver import Resolver
from moa.strategies import AggregatorInput, Answers, StepContext
from moa.tools import make_act, repeated_rounds
from moa.trace import AgentRole, Call, Trace
from moa.types import Act, Message, MessagesLike, Settings, to_messages

__all__ = [
    "AgentFinished",
    "AgentStarted",
    "Event",
    "Finished",
    "LayerFinished",
    "MoA",
    "Result",
    "Token",
    "run",
]


ACT_FIELDS = ("tools", "tool_choice", "parallel_tool_calls", "response_format")
"""The keyword arguments of a run that make its final call act (`moa.tools.make_act`)."""
ACTING_NOTE = (
    "You can call the tools you are given. The other models' responses are advice: they could "
    "not call tools, and nothing they say has been run."
)
"""Told to an aggregator that acts with tools and is shown other answers."""
ADVICE_MEMORY = 256
"""User turns whose references' answers are kept for the tool loop that follows (per MoA)."""


def _act(given: dict[str, Any]) -> Act | None:
    """The act of a run's keyword arguments, taken out of them."""
    return make_act(**{k: given.pop(k) for k in ACT_FIELDS if k in given})


def _turn_key(messages: Sequence[Message]) -> str:
    """The conversation up to its last user message: what a tool loop's requests share."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    text = json.dumps([m.to_dict() for m in messages[: last + 1]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _settings(settings: Settings | None, given: Mapping[str, Any]) -> Settings:
    """A request's settings, as a Settings or as keyword arguments (validated either way)."""
    if settings is not None and given:
        raise ConfigError("give the settings as a Settings or as keyword arguments, not both")
    if settings is not None:
        return settings
    try:
        return Settings.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{field}: {err['msg']} (got {err.get('input')!r})") from None


class MoA:
    """Runs a recipe. Construction checks every model reference and key a run may call,
    judges included, before any call; it changes nothing outside this object."""

    def __init__(
        self,
        recipe: Plan | Recipe | str | Path | Mapping[str, Any],
        *,
        backends: Mapping[str, Backend] | None = None,
        resolver: Resolver | None = None,
        env: Mapping[str, str] | None = None,
        auto_pull: bool = True,
        progress: Callable[[str], None] | None = None,
        limits: Limits = LIMITS,
        rng: random.Random | None = None,
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        self.plan = compile_recipe(recipe)
        self.recipe = self.plan.recipe
        self.limits = limits
        self.prices = {**self.plan.prices, **(prices or {})}  # each call's cost: in the trace
        base = resolver or Resolver(
            backends=backends, env=env, auto_pull=auto_pull, progress=progress
        )
        self.resolver = base.with_providers(self.plan.providers)
        for ref in self.plan.models:
            self.resolver.check(ref)
        self.caller = Caller(
            self.resolver,
            limits,
            retry=self.recipe.retry,
            timeout=self.recipe.timeout,
            limit_specs=self.plan.limits,
            rng=rng,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._advice: OrderedDict[str, Answers] = OrderedDict()  # bounded: ADVICE_MEMORY

    @classmethod
    def from_recipe(cls, recipe: Recipe | str | Path | Mapping[str, Any], **kwargs: Any) -> MoA:
        return cls(recipe, **kwargs)

    def prepare(self) -> None:
        """Resolve every model now: local files are pulled and checked before any call."""
        for ref in self.plan.models:
            self.resolver.resolve(ref)

    # public API -----------------------------------------------------------------------------
    async def arun(
        self, messages: MessagesLike, settings: Settings | None = None, **given: Any
    ) -> Result:
        """Run the recipe. `settings` (or the same as keyword arguments: temperature=...,
        max_tokens=...) apply to the aggregator unless the recipe pins them. `tools`,
        `tool_choice`, `parallel_tool_calls` and `response_format` (OpenAI's forms) go to
        the call that acts; an answer that calls tools has them in `Result.tool_calls`."""
        act = _act(given)
        return await self._execute(to_messages(messages), None, _settings(settings, given), act)

    async def astream(
        self, messages: MessagesLike, settings: Settings | None = None, **given: Any
    ) -> AsyncGenerator[Event, None]:
        """Events as they happen, ending with `Finished`; a failed run raises after its events.

        Close it (`contextlib.aclosing`) to cancel the run and every call in flight.
        """
        msgs = to_messages(messages)
        act = _act(given)
        overrides = _settings(settings, given)
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        task = asyncio.create_task(self._execute(msgs, queue.put_nowait, overrides, act))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (event := await queue.get()) is not None:
                yield event
            yield Finished(task.result())
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, MoAError):
                    await task

    def run(self, messages: MessagesLike, **kwargs: Any) -> Result:
        """The blocking twin of `arun`, on a private event loop kept between calls."""
        return self._sync_loop().run_until_complete(self.arun(messages, **kwargs))

    def stream(self, messages: MessagesLike, **kwargs: Any) -> Iterator[Event]:
        loop = self._sync_loop()
        agen = self.astream(messages, **kwargs)
        try:
            while True:
                try:
                    yield loop.run_until_complete(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            loop.run_until_complete(agen.aclose())

    async def aclose(self) -> None:
        await self.resolver.aclose()

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self.aclose())
            self._loop.close()
            self._loop = None

    def __enter__(self) -> MoA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MoA:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _sync_loop(self) -> asyncio.AbstractEventLoop:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise ConfigError("MoA.run() was called inside an event loop; use await moa.arun()")
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            weakref.finalize(self, self._loop.close)  # for callers who never close()
        return self._loop

    # the run --------------------------------------------------------------------------------
    async def _execute(
        self,
        messages: Sequence[Message],
        emit: EventSink | None,
        overrides: Settings,
        act: Act | None = None,
    ) -> Result:
        trace = Trace(recipe=self.recipe.name, started_at=time.time())
        deadline = self.recipe.deadline
        run = Run(
            trace,
            emit or (lambda _: None),
            None if deadline is None else time.monotonic() + deadline,
            listening=emit is not None,
        )
        try:
            return await self._layers_then_final(run, messages, overrides, act)
        except RunError as exc:
            trace.outcome, trace.error = "error", str(exc)
            exc.trace = trace
            raise
        except BaseException as exc:
            trace.outcome = "error"
            trace.error = (
                "cancelled"
                if isinstance(exc, asyncio.CancelledError)
                else f"{type(exc).__name__}: {exc}"
            )
            raise
        finally:
            trace.latency_s = run.elapsed()
            price_trace(trace, self.prices)

    def _guard_loop(self, run: Run, messages: Sequence[Message], act: Act | None) -> Act | None:
        """The act, without tools once the conversation repeats the same calls too often."""
        limit = self.recipe.tools.repeat_limit
        if act is None or not act.calls_tools or (repeats := repeated_rounds(messages)) < limit:
            return act
        run.trace.notes.append(
            f"the last {repeats} assistant turns made the same tool calls (limit {limit}): "
            "the final answers without tools"
        )
        return act.without_tools()

    async def _layers_then_final(
        self, run: Run, messages: Sequence[Message], overrides: Settings, act: Act | None
    ) -> Result:
        plan = self.plan
        aggregator = plan.aggregator_with(overrides)
        act = self._guard_loop(run, messages, act)
        view, facts = reference_view(messages)
        step = plan.strategy
        # under a choosing rule the last layer's agents act; else the aggregator does
        acting = len(plan.layers) if act is not None and step.chooses else 0
        in_loop = bool(act and act.tools) or any(m.role == "tool" for m in messages)
        per_turn = self.recipe.tools.references == "per_turn"
        turn = _turn_key(messages) if in_loop and per_turn and not acting else ""

        async def side_call(
            agent: Agent, role: AgentRole, shown: Brief, layer: int, index: int
        ) -> Call:
            shown = shown if shown.facts else shown.with_facts(facts)
            return await self.caller.call(run, agent, role, shown, layer=layer, index=index)

        ctx = StepContext(
            messages=view,
            layers=[layer.agents for layer in plan.layers],
            aggregator=aggregator,
            judge_base=plan.aggregator,
            prompt=self.recipe.prompt,
            call=side_call,
            notes=run.trace.notes,
            conversation=messages,
        )
        answers = Answers([])
        reused = self._advice.get(turn) if turn and messages[-1].role == "tool" else None
        if reused is not None:
            answers = reused
            run.trace.notes.append(
                f"a tool loop goes on: the references' {len(answers.calls)} answers to this "
                "user turn are reused (tools.references: per_turn)"
            )
        for layer in plan.layers if reused is None else ():
            own = layer.number == acting
            calls = await self._layer(
                run,
                layer,
                messages if own else view,
                answers.texts,
                functools.partial(step.settled, ctx, layer.number),
                facts=() if own else facts,
                act=act if own else None,
            )
            answers = await step.after_layer(ctx, layer.number, Answers([c for c in calls if c.ok]))
            if layer.number < len(plan.layers) and step.stop_after(ctx, layer.number, answers):
                break
        if turn and not acting and answers.calls and reused is None:
            self._advice[turn] = answers
            while len(self._advice) > ADVICE_MEMORY:
                self._advice.popitem(last=False)
        final = AggregatorInput(Brief(tuple(messages)), ctx.final_layer)
        if answers.calls:
            picked = await step.answer(ctx, answers)
            if isinstance(picked, Call):
                return self._picked(run, picked)
            if picked is not None:
                run.trace.outcome = "ok"
                run.emit(Token(picked))
                return Result(text=picked, trace=run.trace)
            final = await step.before_final(ctx, answers)
            if act is not None and act.calls_tools and final.brief.references:
                told = add_system(final.brief.messages, ACTING_NOTE)
                final = AggregatorInput(final.brief.with_messages(told), final.layer)
        call = await self.caller.call(
            run,
            aggregator,
            "aggregator",
            final.brief,
            layer=final.layer,
            index=0,
            stream=True,
            act=act,
        )
        if call.ok:
            run.trace.outcome = "ok"
            return Result(
                text=call.text or "",
                trace=run.trace,
                tool_calls=call.tool_calls,
                reasoning=call.reasoning,
            )
        return self._without_aggregator(run, call, aggregator, answers, step.best_proposal)

    def _picked(self, run: Run, call: Call) -> Result:
        """The answer of one of the agents that acted, as it is."""
        run.trace.outcome = "ok"
        if call.text and not call.tool_calls:
            run.emit(Token(call.text))
        return Result(
            text="" if call.tool_calls else call.text or "",
            trace=run.trace,
            tool_calls=call.tool_calls,
            reasoning=call.reasoning,
        )

    def _without_aggregator(
        self,
        run: Run,
        call: Call,
        aggregator: Agent,
        answers: Answers,
        best_proposal: Callable[[Answers], int],
    ) -> Result:
        """The aggregator failed: the best proposal where the recipe allows (the strategy says
        which), else the error."""
        failed = [f for c in run.trace.calls if not c.ok for f in failures(c)]
        if self.recipe.on_aggregator_failure == "best_proposal" and answers.calls:
            best = answers.calls[best_proposal(answers)]
            run.trace.outcome = "best_proposal"
            run.trace.notes.append(
                f"the aggregator failed ({call.error_type}: {call.error}); "
                f"returned the answer of {best.agent} from layer {best.layer}"
            )
            if not call.text:
                run.emit(Token(best.text or ""))
            return Result(text=best.text or "", trace=run.trace, best_proposal=True)
        if call.error_type == "DeadlineExceeded":
            raise DeadlineExceeded("the run's deadline passed", failed)
        raise AggregationError(f"the aggregator {aggregator.label} failed", failed)

    async def _layer(
        self,
        run: Run,
        layer: LayerPlan,
        messages: Sequence[Message],
        references: Sequence[str],
        settled: Callable[[Sequence[Call]], str | None],
        *,
        facts: Sequence[str] = (),
        act: Act | None = None,
    ) -> list[Call]:
        """Every agent of the layer, concurrently, until all answered, or the quorum is met and
        the grace period over, or the strategy says the outcome is decided, or the quorum can
        no longer be met. The run's deadline ends each call by itself (moa.call)."""
        number, quorum, grace = layer.number, layer.quorum, layer.grace
        remaining = run.remaining()
        late = remaining is not None and remaining <= 0  # the calls will start nothing
        calls = [
            self.caller.record(run, agent, "proposer", layer=number, index=i)
            for i, agent in enumerate(layer.agents)
        ]
        brief = briefed(messages, self.recipe.prompt, references).with_facts(facts)

        def launch(i: int) -> asyncio.Task[Call]:
            agent = layer.agents[i]
            return asyncio.create_task(
                self.caller.call(
                    run,
                    agent,
                    "proposer",
                    brief,
                    layer=number,
                    index=i,
                    record=calls[i],
                    act=act,
                )
            )

        tasks = [launch(i) for i in range(min(layer.start or len(calls), len(calls)))]
        pending = set(tasks)
        grace_until: float | None = None
        reason = "cancelled"
        stopped = 0
        try:
            while pending:
                timeout = None if grace_until is None else max(grace_until - time.monotonic(), 0)
                done, pending = await asyncio.wait(
                    pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                # a bug or a configuration error is raised, never taken for an agent's failure
                raised = [e for t in done if not t.cancelled() and (e := t.exception())]
                if raised:
                    raise raised[0]
                finished = [t.result() for t in tasks if t.done()]
                ok = sum(1 for c in finished if c.ok)
                if len(finished) - ok > len(calls) - quorum:
                    reason = "cancelled: the layer can no longer reach its quorum"
                    break
                unstarted = len(calls) - len(tasks)
                if ok >= quorum and (pending or unstarted) and (why := settled(calls)):
                    reason = f"cancelled: {why}"
                    stopped = len(pending) + unstarted
                    held = f" (and did not start {unstarted})" if unstarted else ""
                    run.trace.notes.append(
                        f"layer {number}: stopped {len(pending)}{held} of {len(calls)} calls "
                        f"{run.elapsed():.2f}s into the run: {why}"
                    )
                    break
                if not pending and unstarted:
                    run.trace.notes.append(
                        f"layer {number}: the first {len(tasks)} answers did not decide; "
                        f"starting the other {unstarted} {run.elapsed():.2f}s into the run"
                    )
                    more = [launch(i) for i in range(len(tasks), len(calls))]
                    tasks += more
                    pending = set(more)
                    continue
                if ok >= quorum and grace is not None and grace_until is None:
                    grace_until = time.monotonic() + grace
                if grace_until is not None and time.monotonic() >= grace_until and pending:
                    reason = f"cancelled: still running {grace}s after the layer's quorum"
                    break
        finally:
            for task in pending:
                run.cancel(task, reason)
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            for call in calls:  # a task cancelled before it started
                if call.text is None and call.error is None:
                    call.error_type, call.error = "Cancelled", reason
        ok_calls = [c for c in calls if c.ok]
        run.emit(LayerFinished(number, len(ok_calls), len(calls) - len(ok_calls), stopped))
        if len(ok_calls) < quorum:
            failed = [f for c in calls if not c.ok for f in failures(c)]
            if late:
                raise DeadlineExceeded(f"the run's deadline passed before layer {number}", failed)
            if run.deadline_at is not None and time.monotonic() >= run.deadline_at:
                raise DeadlineExceeded(f"the run's deadline passed in layer {number}", failed)
            raise QuorumError(number, quorum, len(ok_calls), failed)
        return calls


def run(recipe: Recipe | str | Path, prompt: MessagesLike, **kwargs: Any) -> Result:
    """One answer from a recipe, in one call."""
    with MoA(recipe, **kwargs) as moa:
        return moa.run(prompt)
