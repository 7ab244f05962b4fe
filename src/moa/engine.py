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
from moa.layers import run_layer
from moa.limits import LIMITS, Limits
from moa.plan import Plan, compile_recipe
from moa.prompts import Brief, add_system, briefed
from moa.recipe import Recipe
from moa.reference_view import reference_view
from moa.resolver import Resolver
from moa.strategies import AggregatorInput, Answers, StepContext
from moa.tools import ACTING_NOTE, act_from, loop_guard, turn_key
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


ADVICE_MEMORY = 256
"""User turns whose references' answers are kept for the tool loop that follows (per MoA)."""


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
        act = act_from(given)
        return await self._execute(to_messages(messages), None, _settings(settings, given), act)

    async def astream(
        self, messages: MessagesLike, settings: Settings | None = None, **given: Any
    ) -> AsyncGenerator[Event, None]:
        """Events as they happen, ending with `Finished`; a failed run raises after its events.

        Close it (`contextlib.aclosing`) to cancel the run and every call in flight.
        """
        msgs = to_messages(messages)
        act = act_from(given)
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

    async def _layers_then_final(
        self, run: Run, messages: Sequence[Message], overrides: Settings, act: Act | None
    ) -> Result:
        plan = self.plan
        aggregator = plan.aggregator_with(overrides)
        act, why = loop_guard(messages, act, self.recipe.tools.repeat_limit)
        if why:
            run.trace.notes.append(why)
        view, facts = reference_view(messages)
        step = plan.strategy
        # under a choosing rule the last layer's agents give the final answer, and act (with
        # the whole conversation, and the act where there is one); else the aggregator does
        acting = len(plan.layers) if step.chooses else 0
        in_loop = bool(act and act.tools) or any(m.role == "tool" for m in messages)
        per_turn = self.recipe.tools.references == "per_turn"
        turn = turn_key(messages) if in_loop and per_turn and not acting else ""

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
            tools=act is not None and act.calls_tools,
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
            shown = briefed(messages if own else view, self.recipe.prompt, answers.texts)
            calls = await run_layer(
                self.caller,
                run,
                layer,
                shown if own else shown.with_facts(facts),
                functools.partial(step.settled, ctx, layer.number),
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


def run(recipe: Recipe | str | Path, prompt: MessagesLike, **kwargs: Any) -> Result:
    """One answer from a recipe, in one call."""
    with MoA(recipe, **kwargs) as moa:
        return moa.run(prompt)
