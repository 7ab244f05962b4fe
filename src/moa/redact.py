"""Credentials hidden from any URL we show: user info and query strings.

    redact_url("http://user:pass@host/v1?token=abc")   -> "http://***@host/v1?***"
    redact_urls("failed to reach http://u:p@h/v1 ...")  -> "failed to reach http://***@h/v1 ..."

A base URL may carry a password (`user:pass@`) or a token (`?key=...`); wherever a URL is
shown (a repr, an error, /v1/models, progress events, traces, logs) it goes through here.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
_HIDDEN = "***"


def redact_url(url: str) -> str:
    """`url` with its user info and its query (and fragment) replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    query = len(rest)
    for mark in "?#":
        at = rest.find(mark)
        if at != -1:
            query = min(query, at)
    head, tail = rest[:query], rest[query:]
    if "@" in head:  # everything before the last @ may be a password, even with a / in it
        head = _HIDDEN + "@" + head.rpartition("@")[2]
    if tail:
        tail = tail[0] + _HIDDEN
    return f"{scheme}://{head}{tail}"


def redact_urls(text: str) -> str:
    """`text` with every URL in it redacted."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


ANSWER_KEYS = frozenset({"content", "text", "best_proposal", "arguments", "reasoning_content"})
"""Keys whose values are model answers (in traces, results and chunks): left as they are.
A tool call's `arguments` are an answer too; the trace hides URL credentials in them itself
(`moa.trace.Call.to_dict`)."""


def redact_data(data: Any, *, keep: Collection[str] = ANSWER_KEYS) -> Any:
    """JSON-like `data` with every URL in its strings redacted, except under the keys `keep`."""
    if isinstance(data, str):
        return redact_urls(data)
    if isinstance(data, dict):
        return {k: v if k in keep else redact_data(v, keep=keep) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v, keep=keep) for v in data]
    return data


__all__ = ["ANSWER_KEYS", "redact_data", "redact_url", "redact_urls"]
