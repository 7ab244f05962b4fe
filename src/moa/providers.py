"""Model references and the providers they name, resolved in one place.

A reference is `PROVIDER:MODEL`, optionally `PROVIDER:MODEL@BASE_URL`:

    openai:gpt-4o-mini                     together:Qwen/Qwen2.5-72B-Instruct-Turbo
    groq:llama-3.3-70b-versatile           openrouter:anthropic/claude-3.5-sonnet
    ollama:llama3.2                        vllm:my-model@http://host:8000/v1
    local:qwen2.5-coder-1.5b-instruct      gguf:/path/to/model.gguf
    fake:anything                          (scripted answers, no tokens spent)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from moa.backends.registry import IN_PROCESS
from moa.errors import ModelRefError


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """An OpenAI-compatible service: where it is and which variable holds its key."""

    name: str
    base_url: str | None = None
    api_key_env: str | None = None
    key_required: bool = True
    base_url_env: str | None = None
    context_windows: Mapping[str, int] | None = None
    send_key_to_base_url: bool = False
    """Allow a built-in provider's key to go to a URL other than that provider's own."""

    def url(self, env: Mapping[str, str]) -> str | None:
        if self.base_url_env and env.get(self.base_url_env):
            return env[self.base_url_env]
        return self.base_url


PRESETS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            name="openai",
            base_url="https://api.openai.com/v1",
            api_key_env="OPENAI_API_KEY",
            base_url_env="OPENAI_BASE_URL",
        ),
        Provider(
            name="together", base_url="https://api.together.xyz/v1", api_key_env="TOGETHER_API_KEY"
        ),
        Provider(
            name="groq", base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY"
        ),
        Provider(
            name="openrouter",
            base_url="https://openrouter.ai/api/v1",
            api_key_env="OPENROUTER_API_KEY",
        ),
        Provider(
            name="fireworks",
            base_url="https://api.fireworks.ai/inference/v1",
            api_key_env="FIREWORKS_API_KEY",
        ),
        Provider(
            name="deepseek", base_url="https://api.deepseek.com/v1", api_key_env="DEEPSEEK_API_KEY"
        ),
        Provider(
            name="mistral", base_url="https://api.mistral.ai/v1", api_key_env="MISTRAL_API_KEY"
        ),
        Provider(
            name="ollama",
            base_url="http://localhost:11434/v1",
            api_key_env="OLLAMA_API_KEY",
            key_required=False,
            base_url_env="OLLAMA_BASE_URL",
        ),
        Provider(
            name="vllm",
            api_key_env="VLLM_API_KEY",
            key_required=False,
            base_url_env="VLLM_BASE_URL",
        ),
        Provider(
            name="llama-server",
            base_url="http://localhost:8080/v1",
            api_key_env="LLAMA_API_KEY",
            key_required=False,
        ),
    )
}

custom_providers: ContextVar[Mapping[str, Provider]] = ContextVar("custom_providers")
"""The providers a recipe defines itself, known while its model references are validated."""


def check_ref(ref: str) -> str:
    """`ref` if it parses (with the recipe's own providers); a ValueError for pydantic if not."""
    try:
        parse_ref(ref, custom_providers.get({}))
    except ModelRefError as exc:
        raise ValueError(str(exc)) from None
    return ref


@dataclass(frozen=True, slots=True)
class ModelRef:
    provider: str
    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        ref = f"{self.provider}:{self.model}"
        return f"{ref}@{self.base_url}" if self.base_url else ref


def known_providers(extra: Mapping[str, Provider] | None = None) -> list[str]:
    return sorted({*PRESETS, *IN_PROCESS, *(extra or {})})


def parse_ref(ref: str, providers: Mapping[str, Provider] | None = None) -> ModelRef:
    """Split a reference into provider, model and base URL, or say what is wrong with it."""
    text = ref.strip()
    provider, sep, rest = text.partition(":")
    if not sep or not provider or not rest:
        raise ModelRefError(
            f"{ref!r}: a model reference is PROVIDER:MODEL, for example "
            "'openai:gpt-4o-mini' or 'local:qwen2.5-coder-1.5b-instruct'"
        )
    provider = provider.lower()
    names = known_providers(providers)
    if provider not in names:
        hint = difflib.get_close_matches(provider, names, n=1)
        more = f"; did you mean '{hint[0]}'?" if hint else f"; known: {', '.join(names)}"
        raise ModelRefError(f"{ref!r}: unknown provider '{provider}'{more}")
    base_url = None
    if provider not in IN_PROCESS:
        for scheme in ("@http://", "@https://"):
            model, found, url = rest.rpartition(scheme)
            if found:
                rest, base_url = model, scheme[1:] + url
                break
    if not rest:
        raise ModelRefError(f"{ref!r}: the model name is empty")
    return ModelRef(provider, rest, base_url)
