"""The one helper that builds the suites' recipes (as data, so a test can change any field)."""

from __future__ import annotations

from typing import Any

from faultserver import FaultServer

ABC = [["fake:a", "fake:b", "fake:c"]]


def recipe(
    layers: Any = None,
    aggregator: Any = "fake:agg",
    *,
    server: FaultServer | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A recipe named 't': by default one layer of fake:a, fake:b and fake:c, with fake:agg
    aggregating, and one attempt a call (a failure is final).

    With `server`, the `faulty:` models are that fault server's (`provider=` adds to its
    entry), retries are quick and without jitter (`retry=` adds to them) and a call times out
    after 2 s (`timeout=`). Everything else in `extra` goes into the recipe as given.
    """
    data: dict[str, Any] = {"name": "t", "layers": ABC if layers is None else layers}
    data["aggregator"] = aggregator
    if server is None:
        data["retry"] = {"attempts": 1}
    else:
        data["providers"] = {"faulty": {"base_url": server.base_url, **extra.pop("provider", {})}}
        quick = {"backoff": 0.01, "max_backoff": 0.05, "jitter": 0}
        data["retry"] = {**quick, **extra.pop("retry", {})}
        data["timeout"] = extra.pop("timeout", 2.0)
    return {**data, **extra}
