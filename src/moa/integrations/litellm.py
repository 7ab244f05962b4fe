"""Recipes as LiteLLM models: a custom provider, `moa/NAME`.

    import litellm
    from moa.integrations.litellm import register

    register()                                 # or: litellm.custom_provider_map = [
                                               #   {"provider": "moa", "custom_handler": handler}]
    litellm.completion(model="moa/local", messages=[{"role": "user", "content": "Hi"}])

NAME is a built-in recipe or a recipe file of the folder `$MOA_RECIPES` names (by file name
without suffix); never a path, since a proxy's clients choose the model. Completion,
acompletion and both streams work; `temperature`, `max_tokens`, `top_p`, `seed` and `stop` go
to the aggregator. Usage is the sum of the run's calls, and so is the cost where the recipe
prices its models (`providers: {NAME: {prices: ...}}`); the run's layers are in the
response's `_hidden_params["moa"]`. The proxy takes the same handler from its config.yaml
(docs/integrations.md):

    litellm_settings:
      custom_provider_map:
        - {provider: moa, custom_handler: moa.integrations.litellm.handler}
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM, CustomLLMError
from litellm.types.llms.openai import ChatCompletionUsageBlock
from litellm.types.utils import GenericStreamingChunk, ModelResponse

from moa.backends.base import Backend
from moa.engine import MoA
from moa.errors import ConfigError, MoAError
from moa.events import Finished, Result, Token
from moa.integrations.common import find, inherited_depth, one_level, recipes_folder, summary
from moa.recipe import load_recipe
from moa.redact import redact_urls
from moa.types import to_messages

__all__ = ["MoALLM", "handler", "register"]

SETTINGS = ("temperature", "max_tokens", "top_p", "seed", "stop")
"""The request's parameters that reach the aggregator."""


def _error(exc: MoAError) -> CustomLLMError:
    status = 400 if isinstance(exc, ConfigError) else 502
    return CustomLLMError(status_code=status, message=redact_urls(str(exc)))  # type: ignore[no-untyped-call]


def _usage(result: Result) -> ChatCompletionUsageBlock:
    totals = result.trace.totals()
    return {
        "prompt_tokens": totals.input_tokens,
        "completion_tokens": totals.output_tokens,
        "total_tokens": totals.total_tokens,
    }


def _chunk(text: str, result: Result | None = None) -> GenericStreamingChunk:
    return {
        "text": text,
        "tool_use": None,
        "is_finished": result is not None,
        "finish_reason": "stop" if result is not None else "",
        "usage": _usage(result) if result is not None else None,
        "index": 0,
    }


class MoALLM(CustomLLM):
    """The handler: `recipes_dir` replaces `$MOA_RECIPES`; `backends` are given to every MoA
    (a FakeBackend in tests)."""

    def __init__(
        self, *, recipes_dir: Path | None = None, backends: Mapping[str, Backend] | None = None
    ) -> None:
        super().__init__()
        self.recipes_dir = recipes_dir
        self.backends = backends

    def _start(self, kwargs: Mapping[str, Any]) -> tuple[MoA, Any, dict[str, Any]]:
        """The MoA of the requested recipe, its messages, and the aggregator's settings."""
        name = str(kwargs["model"]).removeprefix("moa/")
        source = find(name, self.recipes_dir or recipes_folder())
        moa = MoA(load_recipe(source), backends=self.backends)
        params = kwargs.get("optional_params") or {}
        settings = {k: params[k] for k in SETTINGS if params.get(k) is not None}
        return moa, to_messages(kwargs["messages"]), settings

    def _response(self, result: Result, kwargs: Mapping[str, Any]) -> ModelResponse:
        response: ModelResponse = kwargs["model_response"]
        response.choices[0].message.content = result.text
        response.choices[0].finish_reason = "stop"
        response.model = f"moa/{result.trace.recipe}"
        response.usage = litellm.Usage(**_usage(result))  # type: ignore[attr-defined]
        cost = result.trace.totals().cost
        if cost is not None:
            response._hidden_params["response_cost"] = cost
        response._hidden_params["moa"] = summary(result.trace)
        return response

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        try:
            with one_level(inherited_depth()):
                moa, messages, settings = self._start(kwargs)
                with moa:
                    result = moa.run(messages, **settings)
        except MoAError as exc:
            raise _error(exc) from None
        return self._response(result, kwargs)

    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        try:
            with one_level(inherited_depth()):
                moa, messages, settings = self._start(kwargs)
                async with moa:
                    result = await moa.arun(messages, **settings)
        except MoAError as exc:
            raise _error(exc) from None
        return self._response(result, kwargs)

    def streaming(self, *args: Any, **kwargs: Any) -> Iterator[GenericStreamingChunk]:
        try:
            with one_level(inherited_depth()):
                moa, messages, settings = self._start(kwargs)
                with moa:
                    for event in moa.stream(messages, **settings):
                        if isinstance(event, Token):
                            yield _chunk(event.text)
                        elif isinstance(event, Finished):
                            yield _chunk("", event.result)
        except MoAError as exc:
            raise _error(exc) from None

    async def astreaming(  # type: ignore[override]  # an async generator, as litellm calls it
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        try:
            with one_level(inherited_depth()):
                moa, messages, settings = self._start(kwargs)
                events = moa.astream(messages, **settings)
                async with moa, contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, Token):
                            yield _chunk(event.text)
                        elif isinstance(event, Finished):
                            yield _chunk("", event.result)
        except MoAError as exc:
            raise _error(exc) from None


handler = MoALLM()
"""The handler the proxy's config.yaml names (`moa.integrations.litellm.handler`)."""


def register(provider: str = "moa", custom_handler: MoALLM = handler) -> None:
    """Make `litellm.completion(model="moa/NAME")` run recipes (replaces an earlier entry)."""
    entries = [e for e in litellm.custom_provider_map if e.get("provider") != provider]
    litellm.custom_provider_map = [
        *entries,
        {"provider": provider, "custom_handler": custom_handler},
    ]
