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
from dataclasses import dataclass

from moa.errors import ModelRefError


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """An OpenAI-compatible service: where it is and which variable holds its key."""

    name: str
    base_url: str | None = None
    key_env: str | None = None
    key_required: bool = True
    base_url_env: str | None = None
    context_windows: Mapping[str, int] | None = None

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
            key_env="OPENAI_API_KEY",
            base_url_env="OPENAI_BASE_URL",
        ),
        Provider(
            name="together", base_url="https://api.together.xyz/v1", key_env="TOGETHER_API_KEY"
        ),
        Provider(name="groq", base_url="https://api.groq.com/openai/v1", key_env="GROQ_API_KEY"),
        Provider(
            name="openrouter", base_url="https://openrouter.ai/api/v1", key_env="OPENROUTER_API_KEY"
        ),
        Provider(
            name="fireworks",
            base_url="https://api.fireworks.ai/inference/v1",
            key_env="FIREWORKS_API_KEY",
        ),
        Provider(
            name="deepseek", base_url="https://api.deepseek.com/v1", key_env="DEEPSEEK_API_KEY"
        ),
        Provider(name="mistral", base_url="https://api.mistral.ai/v1", key_env="MISTRAL_API_KEY"),
        Provider(
            name="ollama",
            base_url="http://localhost:11434/v1",
            key_env="OLLAMA_API_KEY",
            key_required=False,
            base_url_env="OLLAMA_BASE_URL",
        ),
        Provider(name="vllm", key_env="VLLM_API_KEY", key_required=False),
        Provider(
            name="llama-server",
            base_url="http://localhost:8080/v1",
            key_env="LLAMA_API_KEY",
            key_required=False,
        ),
    )
}
IN_PROCESS = ("local", "gguf", "fake")


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
    if provider not in ("gguf", "local", "fake"):
        for scheme in ("@http://", "@https://"):
            model, found, url = rest.rpartition(scheme)
            if found:
                rest, base_url = model, scheme[1:] + url
                break
    if not rest:
        raise ModelRefError(f"{ref!r}: the model name is empty")
    if provider == "vllm" and base_url is None:
        raise ModelRefError(f"{ref!r}: vllm needs a base URL, as in vllm:MODEL@http://host:8000/v1")
    return ModelRef(provider, rest, base_url)
