"""The MoA engine: layers of agents run concurrently, answers injected, the aggregator streamed.

moa = MoA.from_recipe("local")
result = moa.run("What is 17 * 23?")          # or: await moa.arun(messages)
print(result.text, result.trace.totals())
for event in moa.stream(messages): ...         # AgentStarted/AgentFinished/Token/...
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moa import strategies as strat
from moa.backends.base import Backend
from moa.context import estimate_tokens, fit
from moa.errors import (
    AgentFailure,
    AggregationError,
    BackendError,
    BackendTimeout,
    BadResponse,
    ConfigError,
    ContextLengthError,
    DeadlineExceeded,
    MoAError,
    QuorumError,
    RunError,
)
from moa.limits import LIMITS, Limits
from moa.providers import Provider
from moa.recipe import Agent, Recipe, load_recipe
from moa.resolver import Resolver
from moa.trace import Attempt, Call, Role, Trace
from moa.types import Completion, Message, MessagesLike, Request, Settings, Usage, to_messages


# events -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentStarted:
    layer: int
    index: int
    agent: str
    model: str
    role: Role


@dataclass(frozen=True)
class AgentFinished:
    call: Call


@dataclass(frozen=True)
class LayerFinished:
    layer: int
    answered: int
    failed: int


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Finished:
    result: Result


Event = AgentStarted | AgentFinished | LayerFinished | Token | Finished
Emit = Callable[[Event], None]


@dataclass
class Result:
    """The final answer and the trace of how it was made."""

    text: str
    trace: Trace
    best_proposal: bool = False

    @property
    def usage(self) -> Usage:
        t = self.trace.totals()
        return Usage(t.input_tokens, t.output_tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "best_proposal": self.best_proposal,
            "trace": self.trace.to_dict(),
        }


def _overrides(
    temperature: float | None,
    max_tokens: int | None,
    top_p: float | None,
    seed: int | None,
    stop: Sequence[str] | None,
) -> Settings:
    return Settings(
        temperature=temperature,
        max_tokens=max_tokens,
        top_p=top_p,
        seed=seed,
        stop=tuple(stop) if stop else None,
    )


# prompt building ----------------------------------------------------------------------------
def references_block(prompt: str, references: Sequence[str]) -> str:
    """The aggregate prompt with the numbered answers, as the paper's code writes them."""
    return strat.numbered(prompt, references)


def add_system(messages: Sequence[Message], text: str, *, first: bool = False) -> list[Message]:
    """Put `text` in the system message: appended to an existing one (prepended if `first`)."""
    if messages and messages[0].role == "system":
        old = messages[0].content
        joined = f"{text}\n\n{old}" if first else f"{old}\n\n{text}"
        return [Message("system", joined), *messages[1:]]
    return [Message("system", text), *messages]


def inject(messages: Sequence[Message], prompt: str, references: Sequence[str]) -> list[Message]:
    """The conversation with the previous layer's answers, exactly as the paper injects them."""
    return add_system(messages, references_block(prompt, references))


# the run ------------------------------------------------------------------------------------
@dataclass
class _Run:
    trace: Trace
    emit: Emit
    deadline_at: float | None
    clock0: float = field(default_factory=time.monotonic)
    listening: bool = True  # someone receives the events: streamed text cannot be taken back

    def elapsed(self) -> float:
        return time.monotonic() - self.clock0

    def remaining(self) -> float | None:
        return None if self.deadline_at is None else self.deadline_at - time.monotonic()


def _failure(call: Call) -> AgentFailure:
    return AgentFailure(
        layer=call.layer,
        agent=call.agent,
        model=call.model,
        error=call.error or "no answer",
        error_type=call.error_type or "Error",
    )


def _failures(call: Call) -> list[AgentFailure]:
    """Why `call` failed: one failure for each model it tried (fallbacks), in order."""
    last: dict[str, Attempt] = {}
    for attempt in call.attempts:
        if attempt.error is not None:
            last[attempt.model] = attempt
    earlier = [
        AgentFailure(call.layer, call.agent, model, a.error or "", a.error_type or "Error")
        for model, a in last.items()
        if model != call.model
    ]
    return [*earlier, _failure(call)]


class MoA:
    """Runs a recipe. Construction checks every model reference and key before any call."""

    def __init__(
        self,
        recipe: Recipe | str | Path | Mapping[str, Any],
        *,
        backends: Mapping[str, Backend] | None = None,
        resolver: Resolver | None = None,
        env: Mapping[str, str] | None = None,
        auto_pull: bool = True,
        progress: Callable[[str], None] | None = None,
        limits: Limits = LIMITS,
        rng: random.Random | None = None,
    ) -> None:
        self.recipe = load_recipe(recipe)
        self.limits = limits
        self._rng = rng or random.Random()
        self.resolver = resolver or Resolver(
            backends=backends, env=env, auto_pull=auto_pull, progress=progress
        )
        for name, spec in self.recipe.providers.items():
            if (
                spec.base_url
                or spec.api_key_env
                or spec.context_windows
                or spec.send_key_to_base_url
            ):
                self.resolver.add_provider(
                    Provider(
                        name=name,
                        base_url=spec.base_url,
                        key_env=spec.api_key_env,
                        key_required=bool(spec.api_key_env)
                        if spec.key_required is None
                        else spec.key_required,
                        context_windows=spec.context_windows,
                        send_key_to_base_url=spec.send_key_to_base_url,
                    )
                )
            if spec.rpm or spec.tpm or spec.concurrency:
                limits.configure(name, rpm=spec.rpm, tpm=spec.tpm, concurrency=spec.concurrency)
        for ref in self.recipe.models():
            self.resolver.check(ref)
        proposer = self.recipe.defaults("proposer")
        self.layers = [
            [a.with_defaults(proposer) for a in layer.expanded()] for layer in self.recipe.layers
        ]
        self.aggregator = self.recipe.aggregator.with_defaults(self.recipe.defaults("aggregator"))
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_recipe(cls, recipe: Recipe | str | Path | Mapping[str, Any], **kwargs: Any) -> MoA:
        return cls(recipe, **kwargs)

    def prepare(self) -> None:
        """Resolve every model now: local files are pulled and checked before any call."""
        for ref in self.recipe.models():
            self.resolver.resolve(ref)

    # public API -----------------------------------------------------------------------------
    async def arun(
        self,
        messages: MessagesLike,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> Result:
        """Run the recipe. The settings apply to the aggregator unless the recipe pins them."""
        overrides = _overrides(temperature, max_tokens, top_p, seed, stop)
        return await self._execute(to_messages(messages), None, overrides)

    async def astream(
        self,
        messages: MessagesLike,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Events as they happen, ending with `Finished`; a failed run raises after its events.

        Close it (`contextlib.aclosing`) to cancel the run and every call in flight.
        """
        msgs = to_messages(messages)
        overrides = _overrides(temperature, max_tokens, top_p, seed, stop)
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        task = asyncio.create_task(self._execute(msgs, queue.put_nowait, overrides))
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

    # the run itself -------------------------------------------------------------------------
    async def _execute(
        self,
        messages: Sequence[Message],
        emit: Emit | None,
        overrides: Settings,
    ) -> Result:
        trace = Trace(recipe=self.recipe.name, started_at=time.time())
        deadline = self.recipe.deadline
        run = _Run(
            trace,
            emit or (lambda _: None),
            None if deadline is None else time.monotonic() + deadline,
            listening=emit is not None,
        )
        try:
            result = await self._layers_then_aggregate(run, messages, overrides)
        except RunError as exc:
            trace.outcome, trace.error = "error", str(exc)
            trace.latency_s = run.elapsed()
            exc.trace = trace
            raise
        except BaseException as exc:
            trace.outcome = "error"
            trace.error = (
                "cancelled"
                if isinstance(exc, asyncio.CancelledError)
                else f"{type(exc).__name__}: {exc}"
            )
            trace.latency_s = run.elapsed()
            raise
        trace.latency_s = run.elapsed()
        return result

    async def _layers_then_aggregate(
        self,
        run: _Run,
        messages: Sequence[Message],
        overrides: Settings,
    ) -> Result:
        references: list[str] = []
        answered: list[Call] = []
        review: str | None = None  # the council's review of the last layer, for the aggregator
        for number, agents in enumerate(self.layers, 1):
            quorum = self.recipe.layers[number - 1].quorum or 1
            grace = self.recipe.layers[number - 1].grace
            calls = await self._run_layer(run, number, agents, messages, references, quorum, grace)
            answered = [c for c in calls if c.ok]
            if not self.recipe.strategy.is_default:
                answered, review = await self._after_layer(run, number, messages, answered)
            references = [c.text or "" for c in answered]
            if number < len(self.layers) and self._agreed(run, number, references):
                break
        aggregator = self.aggregator
        pinned = self.recipe.aggregator
        override = {k: v for k, v in overrides.to_dict().items() if getattr(pinned, k) is None}
        if override:
            aggregator = aggregator.model_copy(update=override)
        layer_no = len(self.layers) + 1
        if answered and not self.recipe.strategy.is_default:
            decided = await self._decide(run, messages, answered)
            if decided is not None:
                return decided
            messages, references, layer_no = await self._before_final(
                run, messages, references, aggregator, review
            )
        call = self._new_call(run, layer_no, 0, aggregator, "aggregator")
        await self._within_deadline(
            run, call, aggregator, messages, references, stream=True, what="the aggregator"
        )
        if call.ok:
            run.trace.outcome = "ok"
            return Result(text=call.text or "", trace=run.trace)
        failures = [f for c in run.trace.calls if not c.ok for f in _failures(c)]
        if self.recipe.on_aggregator_failure == "best_proposal" and answered:
            best = answered[0]
            run.trace.outcome = "best_proposal"
            run.trace.notes.append(
                f"the aggregator failed ({call.error_type}: {call.error}); "
                f"returned the answer of {best.agent} from layer {best.layer}"
            )
            if not call.text:
                run.emit(Token(best.text or ""))
            return Result(text=best.text or "", trace=run.trace, best_proposal=True)
        if call.error_type == "DeadlineExceeded":
            raise DeadlineExceeded("the run's deadline passed", failures)
        raise AggregationError(f"the aggregator {aggregator.label} failed", failures)

    # strategy hooks (see moa.strategies) -----------------------------------------------------
    async def _side_call(
        self,
        run: _Run,
        layer: int,
        index: int,
        agent: Agent,
        role: Role,
        messages: Sequence[Message],
    ) -> Call:
        """One non-streamed call for a strategy (judge, reviewer, Seq round), in the trace."""
        call = self._new_call(run, layer, index, agent, role)
        await self._within_deadline(run, call, agent, messages, [], what="this call")
        return call

    async def _within_deadline(
        self,
        run: _Run,
        call: Call,
        agent: Agent,
        messages: Sequence[Message],
        references: Sequence[str],
        *,
        what: str,
        stream: bool = False,
    ) -> None:
        """One call cut off by the run's deadline, recorded as DeadlineExceeded if it is."""
        remaining = run.remaining()
        try:
            if remaining is not None and remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                await self._agent_call(run, call, agent, messages, references, stream=stream)
        except TimeoutError:
            call.error_type = "DeadlineExceeded"
            call.error = f"the run's deadline passed before {what} finished"
            call.latency_s = run.elapsed() - call.started_s
            run.emit(AgentFinished(call))

    def _judge(self, ref: str | None, max_tokens: int) -> Agent:
        """A judge at temperature 0: the given model, else the aggregator's."""
        base = self.aggregator if ref is None else Agent(model=ref)
        return base.model_copy(
            update={"temperature": 0, "max_tokens": max_tokens, "seed": None, "n": 1}
        )

    def _agreed(self, run: _Run, number: int, references: Sequence[str]) -> bool:
        """The early-stop test: whether the answers of layer `number` agree enough."""
        rule = self.recipe.strategy.early_stop
        if rule is None or len(references) < rule.min_answers:
            return False
        t = strat.tally(references, self.recipe.strategy.read())
        if not t.total or t.votes / t.total < rule.agree:
            return False
        run.trace.notes.append(
            f"early stop after layer {number}: {t.votes} of {t.total} answers agree on {t.winner}"
        )
        return True

    async def _after_layer(
        self, run: _Run, number: int, messages: Sequence[Message], answered: list[Call]
    ) -> tuple[list[Call], str | None]:
        """Filter, review and select a layer's answers; returns them and the council's review."""
        strategy = self.recipe.strategy
        read = strategy.read()
        if strategy.drop_unanswered:
            kept = [c for c in answered if read(c.text) is not None]
            if kept and len(kept) < len(answered):
                run.trace.notes.append(
                    f"layer {number}: dropped {len(answered) - len(kept)} answers "
                    "with no readable final answer"
                )
                answered = kept
        review = None
        index = len(self.layers[number - 1])
        if strategy.council is not None and len(answered) > 1:
            council = strategy.council
            texts = [c.text or "" for c in answered]
            n = len(texts)
            calls = []
            for k, proposer in enumerate(answered):
                order = [(i + k) % n for i in range(n)]  # rotated: no answer always first
                agent = self.layers[number - 1][proposer.index].model_copy(
                    update={"temperature": 0, "max_tokens": council.max_tokens, "seed": None}
                )
                block = strat.numbered(strategy.review_prompt, [texts[i] for i in order])
                shown = add_system(messages, block)
                calls.append(self._side_call(run, number, index + k, agent, "judge", shown))
            index += n
            done = await asyncio.gather(*calls)
            rankings = []
            for k, call in enumerate(done):
                ranked = strat.parse_ranking(call.text, n) if call.ok else None
                if ranked is None:
                    continue
                order = [(i + k) % n for i in range(n)]
                rankings.append([order[i] for i in ranked])
            if rankings:
                best = strat.borda(rankings, n)
                review = strat.review_text(best, len(rankings))
                answered = [answered[i] for i in best][: council.top_k]
                run.trace.notes.append(f"layer {number}: council ranking {review}")
            else:
                run.trace.notes.append(f"layer {number}: no council review could be read")
        if strategy.select is not None and len(answered) > strategy.select.top_k:
            select = strategy.select
            judge = self._judge(select.judge, select.max_tokens)
            texts = [c.text or "" for c in answered]
            shown = inject(messages, strategy.review_prompt, texts)
            call = await self._side_call(run, number, index, judge, "judge", shown)
            ranked = strat.parse_ranking(call.text, len(texts)) if call.ok else None
            if ranked is None:
                run.trace.notes.append(
                    f"layer {number}: the judge's ranking could not be read; kept the first "
                    f"{select.top_k} answers"
                )
                ranked = list(range(len(texts)))
            answered = [answered[i] for i in ranked[: select.top_k]]
        return answered, review

    def _pick(self, run: _Run, text: str, note: str) -> Result:
        run.trace.notes.append(note)
        run.trace.outcome = "ok"
        run.emit(Token(text))
        return Result(text=text, trace=run.trace)

    async def _decide(
        self, run: _Run, messages: Sequence[Message], answered: list[Call]
    ) -> Result | None:
        """A final answer without synthesis (vote, ranker, agreed early stop), or None."""
        strategy = self.recipe.strategy
        texts = [c.text or "" for c in answered]
        t = strat.tally(texts, strategy.read())
        rule = strategy.early_stop
        if (
            rule is not None
            and rule.skip_aggregator
            and t.winner is not None
            and len(texts) >= rule.min_answers
            and t.votes / t.total >= rule.agree
        ):
            assert t.index is not None
            note = f"the answers agree ({t.votes} of {t.total} on {t.winner}): no aggregation"
            return self._pick(run, texts[t.index], note)
        if strategy.final == "vote":
            if t.index is None and strategy.unread == "synthesize":
                run.trace.notes.append("vote: no answer could be read; synthesising")
                return None
            if t.index is None:
                return self._pick(run, texts[0], "vote: no answer could be read")
            note = f"vote: {t.winner} with {t.votes} of {t.total}"
            return self._pick(run, texts[t.index], note)
        if strategy.final == "rank":
            judge = self._judge(strategy.judge, strategy.judge_max_tokens)
            shown = inject(messages, strategy.rank_prompt, texts)
            call = await self._side_call(run, len(self.layers) + 1, 0, judge, "judge", shown)
            choice = strat.parse_choice(call.text, len(texts)) if call.ok else None
            if choice is not None:
                return self._pick(run, texts[choice], f"ranker chose {choice + 1}")
            fallback = t.index if t.index is not None else 0
            note = (
                f"the ranker's answer could not be read ({(call.text or call.error or '')[:80]!r});"
                f" returned answer {fallback + 1} by vote"
            )
            return self._pick(run, texts[fallback], note)
        return None

    async def _before_final(
        self,
        run: _Run,
        messages: Sequence[Message],
        references: list[str],
        aggregator: Agent,
        review: str | None,
    ) -> tuple[Sequence[Message], list[str], int]:
        """The aggregator's messages (Seq rounds run here), references, and layer number."""
        strategy = self.recipe.strategy
        layer_no = len(self.layers) + 1
        prompt = self.recipe.prompt
        rounds = strat.seq_rounds(len(references), strategy.seq.window) if strategy.seq else []
        synthesis: str | None = None
        for number, members in enumerate(rounds[:-1]):
            refs = [references[i] for i in members]
            if synthesis is not None:
                refs = [synthesis, *refs]
            block = strat.aggregate_block(prompt, refs, strategy, review, seq=synthesis is not None)
            shown = add_system(messages, block)
            call = await self._side_call(run, layer_no, 0, aggregator, "aggregator", shown)
            layer_no += 1
            if call.ok:
                synthesis = call.text or ""
            else:
                run.trace.notes.append(f"Seq round {number + 1} failed; its answers are skipped")
        if rounds:
            refs = [references[i] for i in rounds[-1]]
            references = [synthesis, *refs] if synthesis is not None else refs
        if strategy.evidence == "none" and review is None and synthesis is None:
            return messages, references, layer_no
        block = strat.aggregate_block(
            prompt, references, strategy, review, seq=synthesis is not None
        )
        return add_system(messages, block), [], layer_no

    def _new_call(self, run: _Run, layer: int, index: int, agent: Agent, role: Role) -> Call:
        call = Call(
            layer=layer,
            index=index,
            agent=agent.label,
            role=role,
            model=agent.model,
            settings=agent.settings().to_dict(),
            started_s=run.elapsed(),
        )
        run.trace.calls.append(call)
        return call

    async def _run_layer(
        self,
        run: _Run,
        number: int,
        agents: Sequence[Agent],
        messages: Sequence[Message],
        references: Sequence[str],
        quorum: int,
        grace: float | None,
    ) -> list[Call]:
        calls = [self._new_call(run, number, i, a, "proposer") for i, a in enumerate(agents)]
        remaining = run.remaining()
        if remaining is not None and remaining <= 0:  # start nothing that must be cancelled
            for call in calls:
                call.error_type, call.error = "Cancelled", "cancelled: the run's deadline passed"
            raise DeadlineExceeded(
                f"the run's deadline passed before layer {number}",
                [f for c in calls for f in _failures(c)],
            )
        tasks = {
            asyncio.create_task(self._agent_call(run, c, a, messages, references)): c
            for c, a in zip(calls, agents, strict=True)
        }
        pending = set(tasks)
        grace_until: float | None = None
        reason = ""
        try:
            while pending:
                waits = [t - time.monotonic() for t in (grace_until, run.deadline_at) if t]
                timeout = max(min(waits), 0) if waits else None
                done, pending = await asyncio.wait(
                    pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                # a bug or a configuration error is raised, never taken for an agent's failure
                raised = [e for t in done if not t.cancelled() and (e := t.exception())]
                if raised:
                    raise raised[0]
                ok = sum(1 for c in calls if c.ok)
                failed = sum(1 for t in tasks if t.done() and not tasks[t].ok)
                if failed > len(calls) - quorum:
                    reason = "cancelled: the layer can no longer reach its quorum"
                    break
                if ok >= quorum and grace is not None and grace_until is None:
                    grace_until = time.monotonic() + grace
                now = time.monotonic()
                if grace_until is not None and now >= grace_until and pending:
                    reason = f"cancelled: still running {grace}s after the layer's quorum"
                    break
                if run.deadline_at is not None and now >= run.deadline_at and pending:
                    reason = "cancelled: the run's deadline passed"
                    break
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            for task in pending:
                call = tasks[task]
                call.error_type, call.error = "Cancelled", reason or "cancelled"
                call.latency_s = run.elapsed() - call.started_s
                run.emit(AgentFinished(call))
        ok_calls = [c for c in calls if c.ok]
        run.emit(LayerFinished(number, len(ok_calls), len(calls) - len(ok_calls)))
        if len(ok_calls) < quorum:
            failures = [f for c in calls if not c.ok for f in _failures(c)]
            if run.deadline_at is not None and time.monotonic() >= run.deadline_at:
                raise DeadlineExceeded(f"the run's deadline passed in layer {number}", failures)
            raise QuorumError(number, quorum, len(ok_calls), failures)
        return calls

    async def _agent_call(
        self,
        run: _Run,
        call: Call,
        agent: Agent,
        messages: Sequence[Message],
        references: Sequence[str],
        *,
        stream: bool = False,
    ) -> None:
        """Fill `call` with the answer of `agent` or of its fallbacks, in order."""
        run.emit(AgentStarted(call.layer, call.index, call.agent, agent.model, call.role))
        if agent.system:
            messages = add_system(messages, agent.system, first=True)
        streamed: list[str] = []  # what already reached the user
        try:
            for ref in (agent.model, *agent.fallbacks):
                call.model = ref
                try:
                    completion = await self._with_retries(
                        run, call, ref, agent, messages, references, stream, streamed
                    )
                except BackendError as exc:
                    call.error_type, call.error = type(exc).__name__, exc.message
                    if streamed and run.listening:  # text reached the user: no silent restart
                        call.text = "".join(streamed)
                        call.error += f" (after {len(call.text)} characters were streamed)"
                        break
                    streamed.clear()  # nobody saw it: the next model starts afresh
                    continue
                call.text = completion.text
                call.finish_reason = completion.finish_reason
                call.error = call.error_type = None
                call.input_tokens = completion.usage.input_tokens
                call.output_tokens = completion.usage.output_tokens
                break
        finally:
            call.latency_s = run.elapsed() - call.started_s
        run.emit(AgentFinished(call))

    def _fit(
        self,
        backend: Backend,
        model: str,
        agent: Agent,
        messages: Sequence[Message],
        references: Sequence[str],
        prompt: str,
        *,
        ref: str | None = None,
    ) -> tuple[list[Message], dict[str, Any] | None]:
        """The messages to send, references trimmed to the context window where one is known.

        Only the references are trimmed: a conversation that does not fit by itself raises
        ContextLengthError naming `ref` (the model reference being called)."""
        window = agent.context_window or backend.context_window(model)
        if not window:
            return (inject(messages, prompt, references) if references else list(messages)), None

        def count(text: str) -> int:
            counted = backend.count_tokens(model, text)
            return counted if counted is not None else estimate_tokens(text)

        reserve = agent.max_tokens or 512
        overhead = 8 * (len(messages) + 1) + 4 * len(references)
        base = inject(messages, prompt, []) if references else list(messages)
        base_tokens = sum(count(m.content) for m in base) + overhead
        budget = window - reserve - base_tokens
        if budget < 0:
            raise ContextLengthError(
                f"the conversation needs about {base_tokens} tokens and {reserve} are kept for "
                f"the answer, more than the context window of {window}",
                model=ref or agent.model,
            )
        if not references:
            return base, None
        fitted, trims = fit(references, budget, count)
        info = None
        if trims:
            info = {
                "window": window,
                "budget": budget,
                "references": [
                    {
                        "index": t.index,
                        "tokens_before": t.tokens_before,
                        "tokens_after": t.tokens_after,
                    }
                    for t in trims
                ],
            }
        return inject(messages, prompt, fitted), info

    async def _with_retries(
        self,
        run: _Run,
        call: Call,
        ref: str,
        agent: Agent,
        messages: Sequence[Message],
        references: Sequence[str],
        stream: bool,
        streamed: list[str],
    ) -> Completion:
        policy = self.recipe.retry
        backend, model = self.resolver.resolve(ref)
        try:
            outgoing, trimmed = self._fit(
                backend, model, agent, messages, references, self.recipe.prompt, ref=ref
            )
        except ContextLengthError as exc:  # refused here, before any request: still an attempt
            call.attempts.append(
                Attempt(model=ref, latency_s=0.0, error=exc.message, error_type=type(exc).__name__)
            )
            raise
        call.trimmed = {**trimmed, "model": ref} if trimmed else None
        settings = agent.settings()
        request_tokens = sum(estimate_tokens(m.content) for m in outgoing)
        gate = self.limits.gate(self.resolver.provider_of(ref))
        timeout = agent.timeout or self.recipe.timeout
        for attempt_no in range(1, policy.attempts + 1):
            start = queued_from = time.monotonic()
            queued = 0.0
            try:
                async with gate.slot(request_tokens + (settings.max_tokens or 0)):
                    start = time.monotonic()
                    queued = start - queued_from
                    request = Request(
                        model=model, messages=tuple(outgoing), settings=settings, timeout=timeout
                    )
                    completion = await self._one_call(backend, request, run, stream, streamed)
                    if not completion.text.strip():  # never synthesise from an empty answer
                        raise BadResponse("the model answered with empty text", model=ref)
                # the answer's tokens beyond those booked for max_tokens
                gate.charge(completion.usage.output_tokens - (settings.max_tokens or 0))
                call.attempts.append(
                    Attempt(model=ref, latency_s=time.monotonic() - start, queued_s=queued)
                )
                return completion
            except BackendError as exc:
                error = exc
            except TimeoutError:
                error = BackendTimeout(f"no answer within {timeout:g}s", model=ref)
            except asyncio.CancelledError:  # grace, deadline or the caller: the trace says so
                call.attempts.append(
                    Attempt(
                        model=ref,
                        latency_s=time.monotonic() - start,
                        error="cancelled",
                        error_type="Cancelled",
                        queued_s=queued,
                    )
                )
                raise
            except MoAError:
                raise
            except Exception as exc:  # a foreign exception from a user's backend
                error = BackendError(f"{type(exc).__name__}: {exc}", model=ref)
            if not error.model:
                error.model = ref
            attempt = Attempt(
                model=ref,
                latency_s=time.monotonic() - start,
                error=error.message,
                error_type=type(error).__name__,
                status=error.status,
                queued_s=queued,
            )
            call.attempts.append(attempt)
            if streamed and run.listening:  # text reached the user: no silent restart
                raise error
            streamed.clear()
            if not error.retryable or attempt_no == policy.attempts:
                raise error
            wait = self._backoff(attempt_no, error)
            remaining = run.remaining()
            if remaining is not None and wait >= remaining:
                raise error
            attempt.wait_s = wait
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, error: BackendError) -> float:
        policy = self.recipe.retry
        if error.retry_after is not None:  # the server said (429, 503...): capped
            return min(max(error.retry_after, 0.0), policy.max_retry_after)
        wait = min(policy.backoff * 2 ** (attempt - 1), policy.max_backoff)
        return float(wait * (1 - policy.jitter * self._rng.random()))

    async def _one_call(
        self,
        backend: Backend,
        request: Request,
        run: _Run,
        stream: bool,
        streamed: list[str],
    ) -> Completion:
        async with asyncio.timeout(request.timeout):
            if not stream:
                return await backend.complete(request)
            start = len(streamed)
            usage: Usage | None = None
            finish: str | None = None
            async for delta in backend.stream(request):
                if delta.text:
                    streamed.append(delta.text)
                    run.emit(Token(delta.text))
                usage = delta.usage or usage
                finish = delta.finish_reason or finish
            text = "".join(streamed[start:])
            return Completion(text=text, usage=usage or Usage(), finish_reason=finish)


def run(recipe: Recipe | str | Path, prompt: MessagesLike, **kwargs: Any) -> Result:
    """One answer from a recipe, in one call."""
    with MoA(recipe, **kwargs) as moa:
        return moa.run(prompt)


__all__ = [
    "AgentFinished",
    "AgentStarted",
    "Event",
    "Finished",
    "LayerFinished",
    "MoA",
    "Result",
    "Settings",
    "Token",
    "add_system",
    "inject",
    "references_block",
    "run",
]
