"""Every recipe as a model of simonw/llm: `llm -m moa-local "..."`.

The built-in recipes, and the recipe files of the folder `$MOA_RECIPES` names, are models
`moa-NAME`. A run streams the aggregator's answer, continues a conversation (`llm -c`), and
leaves in llm's logs.db the tokens of all its calls (`response.set_usage`) and its layers'
answers (`response_json`). Options, the llm way:

    llm -m moa-local -o show_layers 1 "..."     every agent's answer on stderr as it arrives
    llm -m moa-local -o recipe my.yaml "..."    another recipe file, logged under this model
    llm -m moa-local -o temperature 0.2 -o max_tokens 300 "..."   the aggregator's settings

Importing this module (llm does, for every command) reads no recipe and installs nothing:
recipes are loaded, and their local models pulled, when a prompt runs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import llm
from llm.parts import TextPart
from pydantic import Field

from moa.engine import MoA
from moa.errors import ConfigError, MoAError
from moa.events import AgentFinished, Event, Finished, Token
from moa.integrations.common import (
    available,
    describe,
    inherited_depth,
    one_level,
    recipes_folder,
    summary,
)
from moa.recipe import load_recipe
from moa.redact import redact_urls
from moa.types import Message

__all__ = ["AsyncMoAModel", "MoAModel", "MoAOptions", "register_models"]


class MoAOptions(llm.Options):
    """`-o NAME VALUE`: what a prompt may change about its recipe's run."""

    show_layers: bool | None = Field(
        default=None, description="Print every agent's answer to stderr as it arrives"
    )
    recipe: str | None = Field(
        default=None, description="A recipe file (or built-in name) to run instead"
    )
    temperature: float | None = Field(default=None, description="The aggregator's temperature")
    max_tokens: int | None = Field(default=None, description="The aggregator's max tokens")


def _messages(prompt: llm.Prompt) -> list[Message]:
    """The conversation so far and this turn, as text (llm gives the whole chain)."""
    out = []
    for message in prompt.messages:
        text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
        if message.role in ("system", "user", "assistant") and text:
            out.append(Message(message.role, text))  # type: ignore[arg-type]
    return out


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


class _Run:
    """One prompt's run: its MoA, messages and settings, and what its events leave behind."""

    def __init__(self, source: str, prompt: llm.Prompt, response: Any) -> None:
        options: MoAOptions = prompt.options  # type: ignore[assignment]
        self.moa = MoA(load_recipe(options.recipe or source), progress=_progress)
        self.messages = _messages(prompt)
        self.settings: dict[str, Any] = {
            k: v
            for k, v in (("temperature", options.temperature), ("max_tokens", options.max_tokens))
            if v is not None
        }
        self.show_layers = bool(options.show_layers)
        self.response = response

    def text(self, event: Event) -> str:
        """The answer's text in `event`, after showing or keeping what the event says."""
        if isinstance(event, Token):
            return event.text
        if isinstance(event, AgentFinished) and self.show_layers:
            if event.call.role != "aggregator":
                print(describe(event.call) + "\n", file=sys.stderr)
        elif isinstance(event, Finished):
            trace = event.result.trace
            totals = trace.totals()
            self.response.set_usage(
                input=totals.input_tokens,
                output=totals.output_tokens,
                details={"calls": totals.calls, "failed": totals.failed},
            )
            self.response.response_json = summary(trace)
        return ""


def _model_error(exc: MoAError) -> llm.ModelError:
    return llm.ModelError(redact_urls(str(exc)))


class MoAModel(llm.Model):
    """A recipe, run with the blocking API (the llm command)."""

    can_stream = True
    Options = MoAOptions  # type: ignore[assignment]

    def __init__(self, model_id: str, source: str) -> None:
        self.model_id = model_id
        self.source = source

    def execute(
        self,
        prompt: llm.Prompt,
        stream: bool,
        response: llm.Response,
        conversation: llm.Conversation | None,
    ) -> Iterator[str]:
        try:
            with one_level(inherited_depth()):
                run = _Run(self.source, prompt, response)
                try:
                    for event in run.moa.stream(run.messages, **run.settings):
                        if text := run.text(event):
                            yield text
                finally:
                    run.moa.close()
        except MoAError as exc:
            raise _model_error(exc) from None


class AsyncMoAModel(llm.AsyncModel):
    """The same recipe for llm's async API."""

    can_stream = True
    Options = MoAOptions  # type: ignore[assignment]

    def __init__(self, model_id: str, source: str) -> None:
        self.model_id = model_id
        self.source = source

    async def execute(
        self,
        prompt: llm.Prompt,
        stream: bool,
        response: llm.AsyncResponse,
        conversation: llm.AsyncConversation | None,
    ) -> AsyncGenerator[str, None]:
        try:
            with one_level(inherited_depth()):
                run = _Run(self.source, prompt, response)
                try:
                    events = run.moa.astream(run.messages, **run.settings)
                    async with contextlib.aclosing(events):
                        async for event in events:
                            if text := run.text(event):
                                yield text
                finally:
                    await run.moa.aclose()
        except MoAError as exc:
            raise _model_error(exc) from None


@llm.hookimpl
def register_models(register: Callable[..., None]) -> None:
    """One model per recipe, `moa-NAME`: the built-ins, then `$MOA_RECIPES`' files."""
    try:
        recipes = available(recipes_folder())
    except ConfigError as exc:  # never break every llm command: say it once, list the rest
        print(f"moa: $MOA_RECIPES: {exc}", file=sys.stderr)
        recipes = available()
    for name, source in recipes.items():
        model_id = f"moa-{name}"
        register(MoAModel(model_id, source), AsyncMoAModel(model_id, source))
