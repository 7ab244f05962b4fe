"""One agent call and every rule about it, in one place.

`Caller.call` fills one trace `Call`: it tries the agent's model, then each fallback; each
model gets `retry.attempts` tries when `should_retry` says so, with exponential backoff and
jitter, honouring Retry-After; each try waits at the provider's rate and concurrency gate,
has the per-call timeout, and is cut off by the run's deadline; references are fitted to the
model's context window first. `AgentStarted` and `AgentFinished` are emitted here and only
here, once per call, whether it answered, failed or was cancelled.

A call that acts (`act`: tools, a response format) has its answer checked here too
(`moa.toolcalls.checked`): tool calls read out of text, names and arguments checked, JSON
checked against the schema; a `BadAnswer` is asked once more with the mistake shown
(`moa.toolcalls.repair`), then fails the call. Such an answer is held until it is checked, so
its text reaches the listener in one piece. Thinking (`<think>` or a provider's reasoning
field) is kept apart from the answer: in `Call.reasoning`, and as `Reasoning` events.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from moa.agent import Agent
from moa.backends.base import Backend, Fold
from moa.context import Trim, estimate_tokens, fit
from moa.errors import (
    AgentFailure,
    BackendError,
    BackendTimeout,
    BadAnswer,
    ContextLengthError,
    MoAError,
    should_retry,
)
from moa.events import AgentFinished, AgentStarted, EventSink, Reasoning, Token
from moa.limits import Limits, LimitSpec
from moa.prompts import Brief, add_system
from moa.reasoning import ThinkSplitter
from moa.recipe import Retry
from moa.redact import redact_urls
from moa.resolver import Resolver
from moa.toolcalls import finished, repair
from moa.trace import AgentRole, Attempt, Call, Trace, confidence
from moa.types import Act, Completion, Message, Request

__all__ = ["Caller", "Run", "failures"]


@dataclass
class Run:
    """What every call of one run shares: its trace, where events go, and its deadline."""

    trace: Trace
    emit: EventSink = field(default=lambda _: None)
    deadline_at: float | None = None
    listening: bool = False
    """Someone receives the events: streamed text cannot be taken back."""
    clock0: float = field(default_factory=time.monotonic)
    reasons: dict[asyncio.Task[Any], str] = field(default_factory=dict)
    """Why a call's task was cancelled, for its trace record (see `cancel`)."""

    def cancel(self, task: asyncio.Task[Any], reason: str) -> None:
        """Cancel a call's task, saying why in its trace record."""
        self.reasons[task] = reason
        task.cancel()

    def elapsed(self) -> float:
        return time.monotonic() - self.clock0

    def remaining(self) -> float | None:
        return None if self.deadline_at is None else self.deadline_at - time.monotonic()


def _trims(trims: Sequence[Trim]) -> list[dict[str, int]]:
    return [
        {"index": t.index, "tokens_before": t.tokens_before, "tokens_after": t.tokens_after}
        for t in trims
    ]


def failures(call: Call) -> list[AgentFailure]:
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
    own = AgentFailure(
        call.layer, call.agent, call.model, call.error or "no answer", call.error_type or "Error"
    )
    return [*earlier, own]


class Caller:
    """Makes the calls of runs: one resolver, one limits registry, one retry policy."""

    def __init__(
        self,
        resolver: Resolver,
        limits: Limits,
        *,
        retry: Retry | None = None,
        timeout: float | None = None,
        limit_specs: Mapping[str, LimitSpec] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.resolver = resolver
        self.limits = limits
        self.retry = retry or Retry()
        self.timeout = timeout
        self.limit_specs = dict(limit_specs or {})
        self.rng = rng or random.Random()

    def record(self, run: Run, agent: Agent, role: AgentRole, *, layer: int, index: int) -> Call:
        """A new call's record in the run's trace (filled by `call`)."""
        call = Call(
            layer=layer,
            index=index,
            agent=redact_urls(agent.label),
            role=role,
            model=redact_urls(agent.model),
            settings=agent.settings().to_dict(),
            started_s=run.elapsed(),
        )
        run.trace.calls.append(call)
        return call

    async def call(
        self,
        run: Run,
        agent: Agent,
        role: AgentRole,
        brief: Brief | Sequence[Message],
        *,
        layer: int,
        index: int,
        stream: bool = False,
        record: Call | None = None,
        act: Act | None = None,
    ) -> Call:
        """The answer of `agent` or of its fallbacks to `brief` (or to plain messages),
        recorded in `run.trace` (in `record` where given); `act`: the tools and response
        format this call acts with. Never raises for the agent's own failure (the Call says
        it); a cancellation is recorded, then raised."""
        call = record or self.record(run, agent, role, layer=layer, index=index)
        call.started_s = run.elapsed()
        run.emit(AgentStarted(layer, index, call.agent, call.model, role))
        if not isinstance(brief, Brief):
            brief = Brief(tuple(brief))
        if agent.system:
            brief = brief.with_messages(add_system(brief.messages, agent.system, first=True))
        try:
            remaining = run.remaining()
            if remaining is not None and remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                await self._models(run, call, agent, brief, stream, act)
        except TimeoutError:
            call.error_type = "DeadlineExceeded"
            call.error = "the run's deadline passed before this call finished"
        except asyncio.CancelledError:  # grace, quorum, a decided vote, or the caller
            call.error_type = "Cancelled"
            task = asyncio.current_task()
            call.error = run.reasons.pop(task, "cancelled") if task else "cancelled"
            raise
        finally:
            call.latency_s = run.elapsed() - call.started_s
            run.emit(AgentFinished(call))
        return call

    async def _models(
        self, run: Run, call: Call, agent: Agent, brief: Brief, stream: bool, act: Act | None
    ) -> None:
        """The agent's model, then each fallback, until one answers. The call's error is set
        only once every model failed: while a fallback runs, the call is still running (a
        strategy that counts finished calls must not count it)."""
        streamed: list[str] = []  # what already reached the user
        failed: BackendError | None = None
        for ref in (agent.model, *agent.fallbacks):
            call.model = redact_urls(ref)  # a base URL may carry credentials
            try:
                done = await self._attempts(run, call, ref, agent, brief, stream, streamed, act)
            except BackendError as exc:
                failed = exc
                if streamed and run.listening:  # text reached the user: no silent restart
                    call.text = "".join(streamed)
                    call.error_type = type(exc).__name__
                    call.error = f"{exc.message} (after {len(call.text)} characters were streamed)"
                    return
                streamed.clear()  # nobody saw it: the next model starts afresh
                continue
            call.text = done.text
            call.tool_calls = done.tool_calls
            call.reasoning = done.reasoning
            call.finish_reason = done.finish_reason
            call.logprob = confidence(done.logprobs)
            call.input_tokens = done.usage.input_tokens
            call.output_tokens = done.usage.output_tokens
            return
        assert failed is not None
        call.error_type, call.error = type(failed).__name__, failed.message

    def fitted(
        self, backend: Backend, model: str, agent: Agent, brief: Brief, *, ref: str
    ) -> tuple[list[Message], dict[str, Any] | None]:
        """The messages to send, the brief's references trimmed to the context window where
        one is known (whatever else the brief shows is kept whole).

        A brief that does not fit without its references raises ContextLengthError naming
        `ref` (the model reference being called)."""
        window = agent.context_window or backend.context_window(model)
        references, facts = list(brief.references), list(brief.facts)
        if not window:
            return brief.render(), None

        def count(text: str) -> int:
            counted = backend.count_tokens(model, text)
            return counted if counted is not None else estimate_tokens(text)

        reserve = agent.max_tokens or 512
        overhead = 8 * (len(brief.messages) + 1) + 4 * (len(references) + len(facts))

        def base_of(brief: Brief) -> tuple[list[Message], int]:
            base = brief.render([], []) if references or facts else brief.render()
            return base, sum(count(m.content) for m in base) + overhead

        base, base_tokens = base_of(brief)
        budget = window - reserve - base_tokens
        results = [i for i, m in enumerate(brief.messages) if m.role == "tool"]
        result_trims: list[Trim] = []
        if budget < 0 and results:  # what tools returned is cut before the call is refused
            texts = [brief.messages[i].content for i in results]
            kept, result_trims = fit(texts, sum(count(t) for t in texts) + budget, count)
            messages = list(brief.messages)
            for i, text in zip(results, kept, strict=True):
                messages[i] = replace(messages[i], content=text)
            brief = brief.with_messages(messages)
            base, base_tokens = base_of(brief)
            budget = window - reserve - base_tokens
        if budget < 0:
            raise ContextLengthError(
                f"the conversation needs about {base_tokens} tokens and {reserve} are kept for "
                f"the answer, more than the context window of {window}",
                model=ref,
            )
        kept, trims = fit([*references, *facts], budget, count) if references or facts else ([], [])
        info = None
        if trims or result_trims:
            info = {"window": window, "budget": budget, "references": _trims(trims)}
            if result_trims:  # indexes count the conversation's tool messages from 1
                info["tool_results"] = _trims(result_trims)
        if not references and not facts:
            return base, info
        return brief.render(kept[: len(references)], kept[len(references) :]), info

    async def _attempts(
        self,
        run: Run,
        call: Call,
        ref: str,
        agent: Agent,
        brief: Brief,
        stream: bool,
        streamed: list[str],
        act: Act | None = None,
    ) -> Completion:
        """One model's tries: the gate, the timeout, the retry rule and the backoff; a
        `BadAnswer` is tried once more at once, with the mistake shown."""
        policy = self.retry
        backend, model = self.resolver.resolve(ref)
        provider = self.resolver.provider_of(ref)
        ref = redact_urls(ref)  # as the trace and errors show it
        try:
            outgoing, trimmed = self.fitted(backend, model, agent, brief, ref=ref)
        except ContextLengthError as exc:  # refused here, before any request: still an attempt
            call.attempts.append(
                Attempt(model=ref, latency_s=0.0, error=exc.message, error_type=type(exc).__name__)
            )
            raise
        call.trimmed = {**trimmed, "model": ref} if trimmed else None
        settings = agent.settings()
        request_tokens = sum(estimate_tokens(m.content) for m in outgoing)
        gate = self.limits.gate(provider, self.limit_specs.get(provider))
        timeout = agent.timeout or self.timeout
        request = Request(
            model=model, messages=tuple(outgoing), settings=settings, timeout=timeout, act=act
        )
        repaired = False
        correction: str | None = None  # what the repair told the model
        for attempt_no in range(1, policy.attempts + 2):
            start = queued_from = time.monotonic()
            queued = 0.0
            try:
                async with gate.slot(request_tokens + (settings.max_tokens or 0)):
                    start = time.monotonic()
                    queued = start - queued_from
                    done = await self._one(backend, request, run, stream, streamed)
                    done = finished(done, act, ref, correction)
                    if stream and act is not None and act.held and done.text:
                        streamed.append(done.text)  # held until checked: now it may go out
                        run.emit(Token(done.text))
                # the answer's tokens beyond those booked for max_tokens
                gate.charge(done.usage.output_tokens - (settings.max_tokens or 0))
                call.attempts.append(
                    Attempt(model=ref, latency_s=time.monotonic() - start, queued_s=queued)
                )
                return done
            except BadAnswer as exc:
                error: BackendError = exc
                if not repaired and act is not None and not (streamed and run.listening):
                    repaired = True  # once, at once, showing the model its mistake
                    messages = repair(request.messages, exc, act)
                    correction = messages[-1].content
                    request = replace(request, messages=tuple(messages))
                    call.attempts.append(
                        Attempt(
                            model=ref,
                            latency_s=time.monotonic() - start,
                            error=exc.message,
                            error_type="BadAnswer",
                            queued_s=queued,
                        )
                    )
                    continue
            except BackendError as exc:
                error = exc
            except TimeoutError:
                error = BackendTimeout(
                    "the backend timed out"
                    if timeout is None
                    else f"no answer within {timeout:g}s",
                    model=ref,
                )
            except asyncio.CancelledError:  # the trace says so, then the cancellation goes on
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
            if isinstance(error, BadAnswer) or not should_retry(error):
                raise error
            if attempt_no - repaired >= policy.attempts:
                raise error
            wait = self.backoff(attempt_no, error)
            remaining = run.remaining()
            if remaining is not None and wait >= remaining:
                raise error
            attempt.wait_s = wait
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def backoff(self, attempt: int, error: BackendError) -> float:
        """Seconds before try `attempt` + 1: Retry-After (capped) where the server said, else
        exponential backoff with jitter."""
        policy = self.retry
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), policy.max_retry_after)
        wait = min(policy.backoff * 2 ** (attempt - 1), policy.max_backoff)
        return float(wait * (1 - policy.jitter * self.rng.random()))

    async def _one(
        self,
        backend: Backend,
        request: Request,
        run: Run,
        stream: bool,
        streamed: list[str],
    ) -> Completion:
        async with asyncio.timeout(request.timeout):
            if not stream:
                return await backend.complete(request)
            fold = Fold()
            held = request.act is not None and request.act.held
            thinking = ThinkSplitter()
            async for delta in backend.stream(request):
                fold.add(delta)
                thought, text = thinking.feed(delta.text) if delta.text else ("", "")
                if thought or delta.reasoning:
                    run.emit(Reasoning(delta.reasoning + thought))
                if text and not held:
                    streamed.append(text)
                    run.emit(Token(text))
            thought, text = thinking.flush()
            if thought:
                run.emit(Reasoning(thought))
            if text and not held:
                streamed.append(text)
                run.emit(Token(text))
            return fold.completion()
