"""`llm:MODEL`: any model of simonw/llm as an agent, so a user's llm setup becomes a mixture.

    layers:
      - [llm:gpt-4o-mini, llm:claude-4-sonnet, llm:mistral-small]   # what `llm models` lists
    aggregator: llm:gpt-4o-mini

The model is llm's own, with its plugins, aliases and options, and the keys the user stored
with `llm keys set` (llm reads them; moa never sees them). A model with an async twin streams;
one without is run in a thread and answers at once. The sampling settings the llm model has
options for (temperature, max_tokens, top_p, seed, stop) are passed; the others are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from moa.backends.base import Backend
from moa.errors import BackendError, ConfigError, ModelRefError
from moa.redact import redact_urls
from moa.types import Delta, Message, Request, Settings, Usage

__all__ = ["LlmBackend", "locate"]

EXTRA = "pip install 'mixture-of-agents[llm]'"


def _llm() -> Any:
    try:
        import llm
    except ImportError:
        raise ConfigError(f"llm: models need the llm package: {EXTRA}") from None
    return llm


def _model(name: str) -> Any:
    """llm's async model called `name` if it has one, else its sync model."""
    llm = _llm()
    try:
        return llm.get_async_model(name)
    except llm.UnknownModelError:
        pass
    try:
        return llm.get_model(name)
    except llm.UnknownModelError:
        raise ModelRefError(
            f"llm:{name}: llm has no such model ('llm models' lists them)"
        ) from None


def locate(model: str) -> str:
    """`model` if llm knows it; checked once, when the recipe's models are resolved."""
    _model(model)
    return model


def _options(model: Any, settings: Settings) -> dict[str, Any]:
    fields = getattr(model.Options, "model_fields", {})
    return {k: v for k, v in settings.params().items() if k in fields}


def _messages(messages: list[Message] | tuple[Message, ...]) -> list[Any]:
    llm = _llm()
    make = {"system": llm.system, "user": llm.user, "assistant": llm.assistant}
    return [make[m.role](m.content) for m in messages]


def _usage(usage: Any) -> Usage:
    return Usage(usage.input or 0, usage.output or 0)


class LlmBackend(Backend):
    """Calls llm's models in this process."""

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        model = _model(request.model)
        llm = _llm()
        kwargs = {
            "messages": _messages(tuple(request.messages)),
            "options": _options(model, request.settings),
        }
        try:
            if isinstance(model, (llm.AsyncModel, llm.AsyncKeyModel)):
                response = model.prompt(stream=True, **kwargs)
                async for chunk in response:
                    yield Delta(text=chunk)
                usage = _usage(await response.usage())
            else:
                response = model.prompt(stream=False, **kwargs)
                yield Delta(text=await asyncio.to_thread(response.text))
                usage = _usage(response.usage())
        except llm.ModelError as exc:  # a missing key, a refusal: the same again would fail
            raise BackendError(redact_urls(str(exc)), model=f"llm:{request.model}") from None
        yield Delta(usage=usage, finish_reason="stop")
