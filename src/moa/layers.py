"""One layer's agents run concurrently, until they all answer, or the quorum is met and the
grace period is over, or the strategy says the outcome is decided, or the quorum can no
longer be met (the engine's layers, apart from the run)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from moa.call import Caller, Run, failures
from moa.errors import DeadlineExceeded, QuorumError
from moa.events import LayerFinished
from moa.plan import LayerPlan
from moa.prompts import Brief
from moa.trace import Call
from moa.types import Act

__all__ = ["run_layer"]


async def run_layer(
    caller: Caller,
    run: Run,
    layer: LayerPlan,
    brief: Brief,
    settled: Callable[[Sequence[Call]], str | None],
    *,
    act: Act | None = None,
) -> list[Call]:
    """Every agent of the layer, concurrently, until all answered, or the quorum is met and
    the grace period over, or the strategy says the outcome is decided, or the quorum can
    no longer be met. The run's deadline ends each call by itself (moa.call)."""
    number, quorum, grace = layer.number, layer.quorum, layer.grace
    remaining = run.remaining()
    late = remaining is not None and remaining <= 0  # the calls will start nothing
    calls = [
        caller.record(run, agent, "proposer", layer=number, index=i)
        for i, agent in enumerate(layer.agents)
    ]

    def launch(i: int) -> asyncio.Task[Call]:
        agent = layer.agents[i]
        return asyncio.create_task(
            caller.call(
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

    first = layer.tool_start if act is not None and act.calls_tools else layer.start
    tasks = [launch(i) for i in range(min(first or len(calls), len(calls)))]
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
