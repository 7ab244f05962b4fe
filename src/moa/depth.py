"""How deep a run sits in a chain of MoA servers, so that a recipe that names a MoA server
(its own, say) cannot recurse.

Every request the OpenAI-compatible backend sends carries `X-MoA-Depth: d + 1`, where d is the
depth of the run making it (0 for a run that did not come from a MoA server). `moa serve`
reads the header into the run's depth (`nested`) and refuses a request deeper than
`MAX_DEPTH` with 400 before running anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["HEADER", "MAX_DEPTH", "current", "nested"]

HEADER = "x-moa-depth"
MAX_DEPTH = 1
"""A MoA server may be called by another MoA run, but not by one that was itself called so."""
_depth: ContextVar[int] = ContextVar("moa_depth", default=0)


def current() -> int:
    """The depth of the run in this context (the tasks it starts inherit it)."""
    return _depth.get()


@contextlib.contextmanager
def nested(depth: int) -> Iterator[None]:
    """Run the block (and the tasks it starts) at `depth`."""
    token = _depth.set(depth)
    try:
        yield
    finally:
        _depth.reset(token)
